package entitlements

import (
	"testing"
	"time"
)

// TestKeyStates: the lifecycle names of keys/README.md from the key records.
func TestKeyStates(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(d int) time.Time { return now.AddDate(0, 0, d) }
	past, future := at(-1), at(10)
	keys := []*KeyRecord{
		{KID: "old", Product: "p", Purposes: []string{"license"}, Status: KeyPublished, CreatedAt: at(-300)},
		{KID: "act", Product: "p", Purposes: []string{"license"}, Status: KeyPublished, CreatedAt: at(-100), Active: []string{"p/license"}},
		{KID: "new", Product: "p", Purposes: []string{"license"}, Status: KeyPublished, CreatedAt: at(-5)},
		{KID: "gone", Product: "p", Purposes: []string{"license"}, Status: KeyRetired, CreatedAt: at(-400)},
		{KID: "stopping", Product: "q", Purposes: []string{"lease"}, Status: KeyPublished, CreatedAt: at(-50), Active: []string{"q/lease"}, NotAfter: &future},
		{KID: "stopped", Product: "q", Purposes: []string{"revocation"}, Status: KeyPublished, CreatedAt: at(-50), Active: []string{"q/revocation"}, NotAfter: &past},
		{KID: "lone", Product: "r", Purposes: []string{"license"}, Status: KeyPublished, CreatedAt: at(-1)},
	}
	want := map[string]string{"old": KeyRetiring, "act": KeyActive, "new": KeyStandby, "gone": KeyRetired,
		"stopping": KeyActive, "stopped": KeyRetiring, "lone": KeyStandby}
	got := KeyStates(keys, now)
	for kid, w := range want {
		if got[kid] != w {
			t.Errorf("%s: %s, want %s", kid, got[kid], w)
		}
	}
}
