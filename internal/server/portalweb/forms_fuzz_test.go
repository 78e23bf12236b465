package portalweb

import (
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// FuzzTokenForm: the API token form decodes to a lifetime of 1 to 3650 days, the
// 90-day default, or never by explicit choice; or says why not.
func FuzzTokenForm(f *testing.F) {
	f.Add("nightly", "30", false)
	f.Add("", "-1", false)
	f.Add("x", "99999999999999999999", true)
	f.Fuzz(func(t *testing.T, name, days string, never bool) {
		tf := tokenForm{Name: name, Days: days, Never: never}
		errs := tf.Validate()
		if len(errs) > 0 {
			return
		}
		switch {
		case never:
			if tf.validFor != entitlements.TokenNeverExpires {
				t.Fatalf("never gave %s", tf.validFor)
			}
		case tf.validFor < 24*time.Hour || tf.validFor > 3650*24*time.Hour:
			t.Fatalf("days %q gave %s", days, tf.validFor)
		}
		if tf.Name == "" || len(tf.Name) > 100 {
			t.Fatalf("name %q accepted", tf.Name)
		}
	})
}
