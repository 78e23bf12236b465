package entitlements

import (
	"testing"
	"time"
)

// TestCanOpenSuccessor: which of renew, replace and top up a license may have, by
// the one status truth (the console offers exactly these; the service refuses the
// rest).
func TestCanOpenSuccessor(t *testing.T) {
	var zero time.Time
	expired := lic("a", "x", LicenseActive, zero, "", "")
	expired.ExpiresAt = t0
	notYet := lic("a", "x", LicenseActive, zero, "", "")
	notYet.NotBefore = t0.Add(time.Hour)
	for _, c := range []struct {
		name                  string
		l                     *License
		renew, replace, topUp bool
	}{
		{"active", lic("a", "x", LicenseActive, zero, "", ""), true, true, true},
		{"not yet valid", notYet, true, true, true},
		{"expired: renew only", expired, true, false, false},
		{"in changeover", lic("a", "x", LicenseSuperseded, t0.Add(time.Hour), "", "b"), false, false, false},
		{"superseded", lic("a", "x", LicenseSuperseded, t0.Add(-time.Hour), "", "b"), false, false, false},
		{"suspended", lic("a", "x", LicenseSuspended, t0.Add(-time.Hour), "", ""), false, false, false},
		{"revocation ahead", lic("a", "x", LicenseRevoked, t0.Add(time.Hour), "", ""), false, false, false},
		{"revoked", lic("a", "x", LicenseRevoked, t0, "", ""), false, false, false},
	} {
		for kind, want := range map[string]bool{KindRenewal: c.renew, KindReplacement: c.replace, KindTopUp: c.topUp} {
			err := c.l.CanOpenSuccessor(kind, t0)
			if (err == nil) != want || (err != nil && ErrorCode(err) != ECONFLICT) {
				t.Errorf("%s, %s: %v, want allowed=%v", c.name, kind, err, want)
			}
		}
	}
	if err := lic("a", "x", LicenseActive, zero, "", "").CanOpenSuccessor("upgrade", t0); ErrorCode(err) != EINVALID {
		t.Fatalf("an unknown kind: %v", err)
	}
}
