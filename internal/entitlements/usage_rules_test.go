package entitlements

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

var u0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func report(seq int64, prev string, start time.Time, tokens, totalTokens int64, env string) *UsageReport {
	return &UsageReport{LicenseID: "lic_01HZY3QK8Y0000000000000001", Product: ProductRouter, InstanceID: "ins_01HZY3QK8Y0000000000000001",
		Seq: seq, Prev: prev, Start: start, End: start.Add(time.Hour), Counters: map[string]int64{"tokens": tokens},
		Totals: map[string]int64{"tokens": totalTokens}, Envelope: []byte(env), Hash: sha256.Sum256([]byte(env))}
}

// TestNextUsage: the chain rules of usage.md sections 2 and 3, without a database.
func TestNextUsage(t *testing.T) {
	r1 := report(1, "", u0, 5, 5, "one")
	head := (*UsageHead)(nil).Advance(r1)
	h1 := hex.EncodeToString(r1.Hash[:])
	other := sha256.Sum256([]byte("other"))
	for _, c := range []struct {
		name     string
		head     *UsageHead
		r        *UsageReport
		accepted *[32]byte
		want     UsageOutcome
		next     int64
	}{
		{"first report", nil, r1, nil, UsageAccept, 0},
		{"first report's totals", nil, report(1, "", u0, 5, 6, "x"), nil, UsageBad, 0},
		{"unknown chain after seq 1", nil, report(3, h1, u0, 1, 1, "x"), nil, UsageGapped, 1},
		{"next", head, report(2, h1, u0.Add(time.Hour), 3, 8, "two"), nil, UsageAccept, 0},
		{"exact duplicate", head, r1, &r1.Hash, UsageDuplicate, 0},
		{"old seq, bytes no longer kept", head, r1, nil, UsageDuplicate, 0},
		{"accepted seq, other bytes", head, r1, &other, UsageForked, 0},
		{"prev not the last", head, report(2, hex.EncodeToString(other[:]), u0.Add(time.Hour), 3, 8, "x"), nil, UsageForked, 0},
		{"gap", head, report(4, h1, u0.Add(time.Hour), 3, 8, "x"), nil, UsageGapped, 2},
		{"period does not continue", head, report(2, h1, u0.Add(2*time.Hour), 3, 8, "x"), nil, UsageBad, 0},
		{"totals not running sums", head, report(2, h1, u0.Add(time.Hour), 3, 9, "x"), nil, UsageBad, 0},
	} {
		got := NextUsage(c.head, c.r, c.accepted)
		if got.Outcome != c.want || got.NextSeq != c.next {
			t.Errorf("%s: %+v, want outcome %d next %d", c.name, got, c.want, c.next)
		}
	}
}

func TestCheckUsageReport(t *testing.T) {
	l := &UsageLicense{ID: "lic_x", Product: ProductRouter}
	ok := report(1, "", u0, 1, 1, "x")
	if err := CheckUsageReport(ok, l, u0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	bound := &UsageLicense{ID: "lic_x", Product: ProductRouter, Fingerprint: "node-1"}
	for name, c := range map[string]struct {
		r *UsageReport
		l *UsageLicense
	}{
		"future":          {report(1, "", u0.Add(10*time.Minute+time.Hour), 1, 1, "x"), l},
		"product":         {func() *UsageReport { r := report(1, "", u0, 1, 1, "x"); r.Product = ProductCoreSDK; return r }(), l},
		"unbound host":    {ok, bound},
		"control chars":   {func() *UsageReport { r := report(1, "", u0, 1, 1, "x"); r.Reporter = "a\nb"; return r }(), l},
		"over 2^53 value": {report(1, "", u0, MaxLimitValue+1, MaxLimitValue+1, "x"), l},
	} {
		if CheckUsageReport(c.r, c.l, u0.Add(time.Hour)) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A report ending within the skew is fine (period_end ≤ now + 300 s).
	if err := CheckUsageReport(report(1, "", u0.Add(4*time.Minute-time.Hour), 1, 1, "x"), l, u0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
}

func TestUsageThresholdsAndDays(t *testing.T) {
	for _, c := range []struct {
		used, budget int64
		want         int
	}{{799, 1000, 0}, {800, 1000, 1}, {999, 1000, 1}, {1000, 1000, 2}, {5, 0, 0}, {MaxLimitValue, MaxLimitValue, 2}} {
		if got := UsageCrossed(c.used, c.budget); len(got) != c.want {
			t.Errorf("%d of %d: %v", c.used, c.budget, got)
		}
	}
	if d := UsageDayOf(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)); !d.Equal(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("a period ending at midnight is the day before's: %v", d)
	}
	// Periods: regular hourly reports set it, a short shutdown report and a 24-hour
	// catch-up don't.
	p := NextPeriod(0, u0, u0.Add(time.Hour))
	p = NextPeriod(p, u0.Add(time.Hour), u0.Add(time.Hour+7*time.Minute))
	p = NextPeriod(p, u0.Add(2*time.Hour), u0.Add(26*time.Hour))
	p = NextPeriod(p, u0.Add(26*time.Hour), u0.Add(26*time.Hour+time.Second))
	if p != 3600 {
		t.Errorf("period %d, want 3600", p)
	}
	if UsagePermille(850, 1000) != 850 || UsagePermille(1, 0) != 0 || UsagePermille(100_000, 1000) != 10_000 {
		t.Error("permille")
	}
}
