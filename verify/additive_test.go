package verify_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/verify"
)

// DaysUntil counts calendar days in UTC, so the date printed and the count agree.
func TestDaysUntil(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		now, exp string
		want     int
	}{
		{"2026-03-19T12:00:00Z", "2027-03-19T12:00:00Z", 365},
		{"2026-03-19T12:00:00.001Z", "2027-03-19T12:00:00Z", 365}, // truncation said 364
		{"2026-03-19T23:59:59Z", "2027-03-19T00:00:01Z", 365},
		{"2026-03-19T00:00:00Z", "2026-03-19T23:00:00Z", 0}, // later today
		{"2026-03-19T10:00:00Z", "2026-03-20T09:00:00Z", 1},
		{"2026-03-22T10:00:00Z", "2026-03-19T12:00:00Z", -3},     // expired three days ago
		{"2028-02-28T12:00:00Z", "2028-03-01T12:00:00Z", 2},      // a leap day
		{"2026-03-19T23:30:00-02:00", "2026-03-21T00:30:00Z", 1}, // now is 2026-03-20 in UTC
	} {
		if got := verify.DaysUntil(at(c.now), at(c.exp)); got != c.want {
			t.Errorf("DaysUntil(%s, %s) = %d, want %d", c.now, c.exp, got, c.want)
		}
	}
}

// Options.License verifies bytes given in memory (a token from the command line or the
// environment) exactly as a file; a path, when given, wins.
func TestOptionsLicenseBytes(t *testing.T) {
	f := newFixture(t)
	data := f.sign(f.lic, verify.FormatLicense, marshal(t, payload()))
	o := f.opts("")
	o.License = data
	if r := verify.Verify(o); r.Status != verify.StatusValid || r.LicenseID != licID {
		t.Fatalf("from bytes: %s %s", r.Status, r.Reason)
	}
	o.LicensePath = f.dir + "/absent.json"
	if r := verify.Verify(o); r.Reason != verify.ReasonMissing {
		t.Fatalf("path given and absent: %s %s, want license-missing", r.Status, r.Reason)
	}
	o.LicensePath, o.License = "", nil
	if r := verify.Verify(o); r.Reason != verify.ReasonMissing {
		t.Fatalf("neither: %s", r.Reason)
	}
}

func TestReadCapped(t *testing.T) {
	b, err := verify.ReadCapped(strings.NewReader(""), 10)
	if err != nil || b == nil || len(b) != 0 {
		t.Fatalf("empty: %v %v", b, err)
	}
	b, _ = verify.ReadCapped(bytes.NewReader(make([]byte, 100)), 10)
	if len(b) != 11 {
		t.Fatalf("over the cap: %d bytes, want 11", len(b))
	}
	// An over-cap license read this way is license-invalid, as from a file.
	f := newFixture(t)
	big, _ := verify.ReadCapped(bytes.NewReader(make([]byte, verify.MaxLicenseSize+5)), verify.MaxLicenseSize)
	if r, _ := verify.Check(verify.Input{License: big, KeySet: f.ks, Now: t0}); r.Reason != verify.ReasonInvalid {
		t.Fatalf("over-cap license: %s", r.Reason)
	}
}

// The accepted bundle's times come with its sequence; a requested limit the license
// does not have is said, since a misspelt name would otherwise pass in silence.
func TestBundleTimesAndUnknownLimitWarning(t *testing.T) {
	f := newFixture(t)
	o := f.opts(f.license(payload()))
	o.BundlePath = f.write("b.json", f.bundle(4, "2026-07-01T00:00:00Z"))
	o.Limits = map[string]int64{"max_instances": 5, "max_instancs": 9}
	r := verify.Verify(o)
	if r.Status != verify.StatusValid || r.BundleSequence == nil || *r.BundleSequence != 4 {
		t.Fatalf("%s %s %v", r.Status, r.Reason, r.BundleSequence)
	}
	if !r.BundleIssuedAt.Equal(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)) || !r.BundleExpiresAt.Equal(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("bundle times %v %v", r.BundleIssuedAt, r.BundleExpiresAt)
	}
	if w := strings.Join(r.Warnings, ";"); !strings.Contains(w, `limit "max_instancs" is not in the license`) || strings.Contains(w, `"max_instances"`) {
		t.Fatalf("warnings: %v", r.Warnings)
	}
	os.Remove(o.BundlePath)
	o.BundlePath = ""
	if r := verify.Verify(o); r.BundleSequence != nil || !r.BundleIssuedAt.IsZero() {
		t.Fatal("bundle times without a bundle")
	}
}
