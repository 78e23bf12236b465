package server_test

import (
	"context"
	"testing"
)

// TestLeaseRollup: closed hours are rolled up once (idempotent), the open hour is
// counted live, and the plot's query sums both without counting anything twice.
func TestLeaseRollup(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	st := e.store
	_, err := st.Pool().Exec(ctx, `INSERT INTO lease_events (at, license_id, instance_fingerprint, outcome, reason)
		SELECT date_trunc('hour', now()) - interval '3 hours' + (i || ' seconds')::interval, 'lic_x', 'h', CASE WHEN i % 4 = 0 THEN 'refused' ELSE 'renewed' END, ''
		FROM generate_series(1, 100) i
		UNION ALL SELECT now() - interval '1 second', 'lic_x', 'h', 'granted', '' FROM generate_series(1, 5)`)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := st.RollupLeaseHours(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var rolled int
	st.Pool().QueryRow(ctx, `SELECT coalesce(sum(count), 0) FROM lease_hourly`).Scan(&rolled)
	if rolled != 100 {
		t.Fatalf("rolled up %d events, want the 100 of the closed hour", rolled)
	}
	grants, refusals, err := st.LeaseOutcomesPerHour(ctx, 168)
	if err != nil {
		t.Fatal(err)
	}
	var g, r int64
	for _, b := range grants {
		g += b.Count
	}
	for _, b := range refusals {
		r += b.Count
	}
	if g != 80 || r != 25 {
		t.Fatalf("plot counts %d grants, %d refusals; want 80 (75 closed + 5 live) and 25", g, r)
	}
}

// TestTimeIndexesAutosummarize: the BRIN indexes behind the time-range reads summarize
// each range as it fills; without it, every range since the last VACUUM matches
// every query and the lease plot rechecks the whole tail of lease_events.
func TestTimeIndexesAutosummarize(t *testing.T) {
	e := mustPortal(t, 0, 0)
	for _, idx := range []string{"lease_events_at_brin", "audit_events_at_brin"} {
		var on bool
		err := e.store.Pool().QueryRow(context.Background(),
			`SELECT coalesce('autosummarize=on' = ANY(reloptions), false) FROM pg_class WHERE relname = $1 AND relkind = 'i'`, idx).Scan(&on)
		if err != nil || !on {
			t.Errorf("%s: autosummarize not on (%v)", idx, err)
		}
	}
}
