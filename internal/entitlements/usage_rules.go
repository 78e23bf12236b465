package entitlements

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"time"
)

// The chain rules of usage.md sections 2 and 3, as pure functions over what the
// issuer keeps of a chain (its head). Envelope parsing and the signature are the
// usage package's (usage.Parse, the same code the host writes with); internal/metering
// runs both.

// UsageOutcome is what becomes of one report.
type UsageOutcome int

// Outcomes of NextUsage.
const (
	UsageAccept    UsageOutcome = iota // continues its chain: kept and counted
	UsageDuplicate                     // exactly an accepted report: nothing changes
	UsageForked                        // usage-fork
	UsageGapped                        // usage-gap
	UsageBad                           // usage-invalid
)

// UsageStep is NextUsage's decision: the outcome, the seq a gap needs, and why.
type UsageStep struct {
	Outcome UsageOutcome
	NextSeq int64
	Why     string
}

// NextUsage decides a verified report against its chain's head (nil: the issuer has
// no report of that chain). accepted is the hash of the report the issuer accepted
// with r's seq when r.Seq ≤ head.Seq; nil when it is no longer kept (raw reports past
// usage.retention): a report its chain's key signed with an old seq then counts as a
// duplicate, since its period was counted once already and nothing of it can be
// compared any more (docs/usage.md, "Duplicates past the retention").
//
//   - seq ≤ the last accepted: the same bytes are a duplicate, other bytes a fork;
//   - seq = last + 1: prev must be the last accepted report's hash (else a fork), its
//     period must start where the last one ended and its totals be the last totals
//     plus its counters (else invalid);
//   - seq > last + 1 (or > 1 for an unknown chain): a gap, which needs last + 1.
func NextUsage(head *UsageHead, r *UsageReport, accepted *[32]byte) UsageStep {
	if head == nil {
		if r.Seq != 1 {
			return UsageStep{Outcome: UsageGapped, NextSeq: 1, Why: fmt.Sprintf("the issuer has no report of chain %s yet: it needs seq 1, not %d", r.InstanceID, r.Seq)}
		}
		if err := checkTotals(nil, r.Counters, r.Totals); err != nil {
			return UsageStep{Outcome: UsageBad, Why: err.Error()}
		}
		return UsageStep{Outcome: UsageAccept}
	}
	switch {
	case r.Product != head.Product:
		return UsageStep{Outcome: UsageBad, Why: "the report's product is not its chain's"}
	case r.Seq <= head.Seq:
		if accepted == nil || *accepted == r.Hash {
			return UsageStep{Outcome: UsageDuplicate}
		}
		return UsageStep{Outcome: UsageForked, Why: fmt.Sprintf("seq %d of chain %s was accepted with other bytes", r.Seq, r.InstanceID)}
	case r.Seq > head.Seq+1:
		return UsageStep{Outcome: UsageGapped, NextSeq: head.Seq + 1,
			Why: fmt.Sprintf("seq %d of chain %s follows %d: the issuer needs %d next", r.Seq, r.InstanceID, head.Seq, head.Seq+1)}
	case r.Prev != hex.EncodeToString(head.Hash[:]):
		return UsageStep{Outcome: UsageForked, Why: fmt.Sprintf("prev of seq %d is not the accepted report %d of chain %s", r.Seq, head.Seq, r.InstanceID)}
	case !r.Start.Equal(head.PeriodEnd):
		return UsageStep{Outcome: UsageBad, Why: fmt.Sprintf("period_start of seq %d is not the period_end of seq %d", r.Seq, head.Seq)}
	}
	if err := checkTotals(head.Totals, r.Counters, r.Totals); err != nil {
		return UsageStep{Outcome: UsageBad, Why: fmt.Sprintf("seq %d: %v", r.Seq, err)}
	}
	return UsageStep{Outcome: UsageAccept}
}

// checkTotals: totals = prev + counters, name by name (an absent name is 0).
func checkTotals(prev, counters, totals map[string]int64) error {
	for _, m := range []map[string]int64{prev, counters, totals} {
		for k := range m {
			if s := prev[k] + counters[k]; s < prev[k] || totals[k] != s {
				return fmt.Errorf("totals.%s is not the running sum of counters.%s", k, k)
			}
		}
	}
	return nil
}

// CheckUsageReport applies the rules between a verified report and the license it
// names that the envelope's own checks can't: the license's product, its instance
// binding, the period's end against the issuer's clock, and the bounds the issuer
// keeps on what it stores (docs/usage.md).
func CheckUsageReport(r *UsageReport, l *UsageLicense, now time.Time) error {
	switch {
	case r.Product != l.Product:
		return fmt.Errorf("product %q is not the license's (%s)", r.Product, l.Product)
	case l.Fingerprint != "" && r.Fingerprint != l.Fingerprint:
		return fmt.Errorf("the license is bound to an instance: instance_fingerprint must be that instance's")
	case len(r.Fingerprint) > 200 || !OneLine(r.Fingerprint):
		return fmt.Errorf("instance_fingerprint is one line of at most 200 characters")
	case len(r.Reporter) > MaxUsageReporter || !OneLine(r.Reporter):
		return fmt.Errorf("reporter is one line of at most %d characters", MaxUsageReporter)
	case r.End.After(now.Add(UsageClockSkew)):
		return fmt.Errorf("period_end %s is later than the issuer's clock plus %s", r.End.UTC().Format(time.RFC3339), UsageClockSkew)
	case len(r.Counters) > MaxUsageCounters || len(r.Totals) > MaxUsageCounters:
		return fmt.Errorf("a report carries at most %d counters", MaxUsageCounters)
	}
	for _, m := range []map[string]int64{r.Counters, r.Totals} {
		for k, v := range m {
			if len(k) > MaxUsageCounterName || v > MaxLimitValue {
				return fmt.Errorf("counter %q: names are at most %d characters and values at most 2^53-1", k[:min(len(k), 40)], MaxUsageCounterName)
			}
		}
	}
	return nil
}

// Advance is the head after r was accepted.
func (h *UsageHead) Advance(r *UsageReport) *UsageHead {
	n := &UsageHead{UsageChainKey: UsageChainKey{r.LicenseID, r.InstanceID}, Product: r.Product, KeyID: r.KeyID, Key: r.Key,
		Seq: r.Seq, Hash: r.Hash, PeriodEnd: r.End, Totals: r.Totals, FirstStart: r.Start, Fingerprint: r.Fingerprint, Reporter: r.Reporter, New: true}
	if h != nil {
		n.New, n.FirstStart, n.PeriodSeconds = h.New, h.FirstStart, h.PeriodSeconds
	}
	n.PeriodSeconds = NextPeriod(n.PeriodSeconds, r.Start, r.End)
	return n
}

// SameKey reports whether a report was verified with the head's bound key.
func (h *UsageHead) SameKey(key []byte) bool { return bytes.Equal(h.Key, key) }

// NextPeriod is a chain's report period after a report from start to end: the first
// report's length, then the length of each regular report, one of a minute or more
// that divides a day and starts and ends on multiples of its own length, which is
// what a reporter's periods do (they close on multiples of the period: on the hour by
// default). The shorter reports of a shutdown or a license switch (usage.Recorder
// closes one of at least a second), and the longer ones of a host catching up after
// a day down, don't change it, so "stale" (three periods of silence) means the same
// thing for every chain.
func NextPeriod(cur int64, start, end time.Time) int64 {
	l := int64(end.Sub(start) / time.Second)
	if l <= 0 {
		return max(cur, 1)
	}
	if cur <= 0 || (l >= 60 && 86400%l == 0 && start.Unix()%l == 0 && end.Unix()%l == 0) {
		return l
	}
	return cur
}

// UsageDayOf is the day a report's counts go to: the UTC day holding the last second
// of its period (an hourly report 23:00–00:00 is the day before's).
func UsageDayOf(end time.Time) time.Time {
	return end.Add(-time.Second).UTC().Truncate(24 * time.Hour)
}

// UsageWindowFrom is the first day a rolling window of that length counts at now: the
// UTC day the window starts in, counted whole (docs/usage.md, "Consumption": it errs
// towards the budget by at most a day, as the host's own count errs by a period).
func UsageWindowFrom(now time.Time, window time.Duration) time.Time {
	return now.Add(-window).UTC().Truncate(24 * time.Hour)
}

// UsageCrossed lists the thresholds (percent) that used has reached of budget.
func UsageCrossed(used, budget int64) []int {
	if budget <= 0 {
		return nil
	}
	var out []int
	for _, t := range UsageThresholds {
		// used/budget ≥ t/100; below the budget used*100 can't overflow (budgets are
		// at most 2^53-1).
		if used >= budget || used*100 >= int64(t)*budget {
			out = append(out, t)
		}
	}
	return out
}
