package portal

import (
	"testing"

	"github.com/metrum/licensing/internal/entitlements"
)

// FuzzCursor: a page cursor from anyone decodes to a valid license ID or is refused as
// invalid input; one the API made decodes to what it encoded.
func FuzzCursor(f *testing.F) {
	f.Add("MTIzfmxpY18wMUhaWTNRSzhZMDAwMDAwMDAwMDAwMDAwMQ")
	f.Add("!!")
	f.Add("")
	f.Fuzz(func(t *testing.T, c string) {
		at, id, err := decodeCursor(c)
		if err != nil {
			if entitlements.ErrorCode(err) != entitlements.EINVALID {
				t.Fatalf("%q: %v", c, err)
			}
			return
		}
		if !entitlements.ValidID(entitlements.PrefixLicense, id) {
			t.Fatalf("%q decoded to %q", c, id)
		}
		l := &entitlements.License{ID: id, IssuedAt: at}
		at2, id2, err := decodeCursor(encodeCursor(l))
		if err != nil || id2 != id || !at2.Equal(at) {
			t.Fatalf("round trip of %q: %v %v %v", c, at2, id2, err)
		}
	})
}
