package leases

import (
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

// Lease outcomes, as lease_events records them.
const (
	OutcomeGranted  = "granted"
	OutcomeRenewed  = "renewed"
	OutcomeRefused  = "refused"
	OutcomeReleased = "released"
	// OutcomeRetry: the request needs a new slot but its batch held the license's
	// shared lock; it is decided again under the exclusive one. Never recorded.
	OutcomeRetry = "retry"
	// OutcomeLimited: authenticated, but over its license's rate limit: 429, never
	// recorded (lease-api.md v1.1: counters only).
	OutcomeLimited = "limited"
	// OutcomeNoKey: the product has no lease key that may sign now (none active, or
	// past its not_after): 503, never recorded, nothing written.
	OutcomeNoKey = "no-key"
)

// reasonUnauthorized is the refusal for a bad token or a license without leases.
const reasonUnauthorized = "unauthorized"

// Rules are the lease decisions of lease-api.md, applied to a batch read under the
// licenses' locks. storage reads and writes, Rules decide; the only state they consult
// is Admit, the rate limit of the authenticated license (nil: no limit).
type Rules struct {
	Admit func(licenseID string, now time.Time) time.Duration
}

var _ entitlements.LeaseRules = Rules{}

// refusalOf returns why a request can't have a lease at all, or "": a bad token first
// (one answer for every credential problem), then in the order of formats.md section
// 6 (lease-api.md v1.1): not yet valid, instance mismatch, revoked / suspended /
// superseded, expired.
func refusalOf(now time.Time, r *entitlements.LeaseRequest, st *entitlements.LeaseState) string {
	switch {
	case !st.Known || !st.TokenOK:
		return reasonUnauthorized
	case now.Before(st.NotBefore):
		return verify.ReasonNotYetValid
	case st.BoundFingerprint != "" && st.BoundFingerprint != r.Fingerprint:
		return verify.ReasonInstanceMismatch
	case st.Status != "active" && !st.StatusEffectiveAt.After(now):
		return "license-" + st.Status
	case !now.Before(st.ExpiresAt):
		return verify.ReasonExpired
	}
	return ""
}

// holdsSlot reports whether the host's own slot is live: a request then renews it.
func holdsSlot(now time.Time, st *entitlements.LeaseState) bool {
	return st.SlotLeaseID != "" && !st.SlotReleased && st.SlotExpiresAt.After(now)
}

// NeedsCount implements entitlements.LeaseRules: only a request that may take a new slot
// under an instance limit, with the license's exclusive lock held, needs the
// license's live slots counted.
func (Rules) NeedsCount(now time.Time, r *entitlements.LeaseRequest, st *entitlements.LeaseState) bool {
	return st.Exclusive && refusalOf(now, r, st) == "" && !holdsSlot(now, st) && st.MaxInstances != nil
}

// Decide implements entitlements.LeaseRules. Requests are taken in arrival order: a host
// holding a live slot renews it (keeping its lease ID); a new host takes a slot while
// fewer than max_instances are live, counting the slots this batch has already taken,
// but only under the license's exclusive lock (under the shared one it must retry);
// a host that asks twice in one batch renews what its first request got. A lease
// never outlives its license.
func (rules Rules) Decide(now time.Time, reqs []entitlements.LeaseRequest, states []entitlements.LeaseState) []entitlements.LeaseDecision {
	type slot struct{ lic, fp string }
	out := make([]entitlements.LeaseDecision, len(reqs))
	live := map[string]int64{}
	held := map[slot]string{}
	for i := range reqs {
		r, st, d := &reqs[i], &states[i], &out[i]
		d.Product, d.IssuedAt, d.KeyID = st.Product, now, st.LeaseKeyID
		why := refusalOf(now, r, st)
		if why == reasonUnauthorized {
			d.Outcome, d.Reason = OutcomeRefused, why
			continue
		}
		// Authenticated: the license's rate limit, before any other answer, so a host
		// over its rate leaves no row whatever it asked.
		if rules.Admit != nil {
			if wait := rules.Admit(r.LicenseID, now); wait > 0 {
				d.Outcome, d.RetryAfter = OutcomeLimited, wait
				continue
			}
		}
		if why != "" {
			d.Outcome, d.Reason = OutcomeRefused, why
			continue
		}
		if st.LeaseKeyID == "" {
			d.Outcome = OutcomeNoKey
			continue
		}
		d.ExpiresAt = now.Add(time.Duration(st.TTLSeconds) * time.Second)
		if d.ExpiresAt.After(st.ExpiresAt) {
			d.ExpiresAt = st.ExpiresAt
		}
		key := slot{r.LicenseID, r.Fingerprint}
		if id, ok := held[key]; ok {
			d.Outcome, d.LeaseID = OutcomeRenewed, id
			continue
		}
		if holdsSlot(now, st) {
			d.Outcome, d.LeaseID = OutcomeRenewed, st.SlotLeaseID
			held[key] = d.LeaseID
			continue
		}
		if !st.Exclusive {
			d.Outcome, d.ExpiresAt = OutcomeRetry, time.Time{}
			continue
		}
		if st.MaxInstances != nil && now.Before(st.QuarantineUntil) {
			// After a restore every slot counts as taken until leases this database
			// forgot have all expired (docs/operations.md, "Restore").
			d.Outcome, d.Reason, d.ExpiresAt = OutcomeRefused, verify.ReasonLimitExceeded, time.Time{}
			continue
		}
		if st.MaxInstances != nil {
			used, ok := live[r.LicenseID]
			if !ok {
				used = st.LiveSlots
			}
			if used >= *st.MaxInstances {
				d.Outcome, d.Reason, d.ExpiresAt = OutcomeRefused, verify.ReasonLimitExceeded, time.Time{}
				continue
			}
			live[r.LicenseID] = used + 1
		}
		d.Outcome, d.LeaseID = OutcomeGranted, r.NewLeaseID
		held[key] = d.LeaseID
	}
	return out
}
