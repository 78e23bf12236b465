package server_test

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/leases"
	"github.com/metrum/licensing/internal/ratelimit"
	"github.com/metrum/licensing/verify"
)

func (e *leaseEnv) release(t *testing.T, token, leaseID string) leaseResp {
	t.Helper()
	req, _ := http.NewRequest("DELETE", e.ts.URL+"/v1/leases/"+leaseID, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return do(t, req)
}

func (e *leaseEnv) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

const occupiedSQL = `SELECT count(*) FROM leases WHERE license_id = $1 AND expires_at > now() AND (released_at IS NULL OR NOT freed_early)`
const holdersSQL = `SELECT count(*) FROM leases WHERE license_id = $1 AND expires_at > now()`

// TestLeaseReleaseBudgetHole3 is hole 3 of issue 10: a pilot with max_instances = 3,
// ten hosts each take a lease and release it at once. Under v1 all ten held a valid
// signed lease; under v1.1 the first three releases free their slot (the budget is
// max_instances), the next ones keep it occupied, so six hosts get a lease and four
// get 409, and every release is still a 204.
func TestLeaseReleaseBudgetHole3(t *testing.T) {
	e := mustLeaseServer(t, 0, 0)
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{Overrides: entitlements.Overrides{Limits: map[string]int64{"max_instances": 3}}})
	held := map[string]time.Time{}
	var refused int
	for i := range 10 {
		fp := fmt.Sprintf("host-%d", i)
		r := e.grant(t, tok, lic.ID, fp)
		if r.status == 409 {
			wantProblem(t, r, 409, verify.ReasonLimitExceeded)
			refused++
			continue
		}
		l := e.lease(t, r)
		held[fp] = l.ExpiresAt
		if rr := e.release(t, tok, l.LeaseID); rr.status != 204 {
			t.Fatalf("release %s: %d %s", fp, rr.status, rr.body)
		}
	}
	if len(held) != 6 || refused != 4 {
		t.Fatalf("%d hosts hold a signed lease, %d refused; want 6 (max_instances 3 + release budget 3) and 4", len(held), refused)
	}
	if n := e.count(t, occupiedSQL, lic.ID); n != 3 {
		t.Fatalf("%d occupied slots, want 3", n)
	}
	if n := e.count(t, `SELECT count(*) FROM lease_events WHERE license_id = $1 AND outcome = 'released' AND reason = $2`, lic.ID, entitlements.ReleaseHeld); n != 3 {
		t.Fatalf("%d releases recorded as held, want 3", n)
	}
	// A released lease is never renewed: its host asks again as a new fingerprint and
	// is refused while the slots are occupied.
	wantProblem(t, e.grant(t, tok, lic.ID, "host-0"), 409, verify.ReasonLimitExceeded)
}

// TestLeaseReleaseBudgetLimit: a license's release_budget limit, when present, is the
// budget; 0 means a release never frees a slot early.
func TestLeaseReleaseBudgetLimit(t *testing.T) {
	e := mustLeaseServer(t, 0, 0)
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{Overrides: entitlements.Overrides{Limits: map[string]int64{"max_instances": 2}}})
	// The budget is read from the license row (as issued with a release_budget limit).
	if _, err := e.store.Pool().Exec(context.Background(), `UPDATE licenses SET limits = limits || '{"release_budget": 0}' WHERE id = $1`, lic.ID); err != nil {
		t.Fatal(err)
	}
	a := e.lease(t, e.grant(t, tok, lic.ID, "a"))
	e.lease(t, e.grant(t, tok, lic.ID, "b"))
	if r := e.release(t, tok, a.LeaseID); r.status != 204 {
		t.Fatalf("release: %d", r.status)
	}
	wantProblem(t, e.grant(t, tok, lic.ID, "c"), 409, verify.ReasonLimitExceeded)
	// The held lease keeps its expiry: the row says what the host still holds.
	if n := e.count(t, `SELECT count(*) FROM leases WHERE lease_id = $1 AND expires_at = $2 AND NOT freed_early`, a.LeaseID, a.ExpiresAt); n != 1 {
		t.Fatal("the release shortened or freed the held lease")
	}
}

// TestLeaseInvariantsUnderRace interleaves takes, renewals and releases of one license
// from many hosts and samples both invariants of lease-api.md v1.1 while they run:
// occupied slots ≤ max_instances (in the database), and distinct fingerprints holding
// an unexpired signed lease ≤ max_instances + release_budget (both as the database
// records them and as the hosts themselves hold them).
func TestLeaseInvariantsUnderRace(t *testing.T) {
	e := mustLeaseServer(t, 0, 0)
	const maxInst, budget = 3, 3
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{Overrides: entitlements.Overrides{Limits: map[string]int64{"max_instances": maxInst}}})
	var mu sync.Mutex
	holding := map[string]time.Time{} // fingerprint → latest expiry of a lease it received
	holders := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, exp := range holding {
			if exp.After(time.Now()) {
				n++
			}
		}
		return n
	}
	stop := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	var grants, releases atomic.Int64
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for time.Now().Before(stop) {
				fp := fmt.Sprintf("host-%d", rng.IntN(30))
				r := e.grant(t, tok, lic.ID, fp)
				switch r.status {
				case 409:
					continue
				case 200:
				default:
					t.Errorf("grant: %d %s", r.status, r.body)
					return
				}
				l := e.lease(t, r)
				grants.Add(1)
				mu.Lock()
				if l.ExpiresAt.After(holding[fp]) {
					holding[fp] = l.ExpiresAt
				}
				mu.Unlock()
				switch rng.IntN(3) {
				case 0: // release at once
					if rr := e.release(t, tok, l.LeaseID); rr.status != 204 {
						t.Errorf("release: %d", rr.status)
						return
					}
					releases.Add(1)
				case 1: // renew once
					e.grant(t, tok, lic.ID, fp)
				}
			}
		}()
	}
	samples := 0
	for time.Now().Before(stop) {
		if n := e.count(t, occupiedSQL, lic.ID); n > maxInst {
			t.Fatalf("%d occupied slots > max_instances %d", n, maxInst)
		}
		if n := e.count(t, holdersSQL, lic.ID); n > maxInst+budget {
			t.Fatalf("%d fingerprints hold an unexpired lease in the database > %d", n, maxInst+budget)
		}
		if n := holders(); n > maxInst+budget {
			t.Fatalf("%d hosts hold an unexpired signed lease > %d", n, maxInst+budget)
		}
		samples++
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	if n := holders(); n > maxInst+budget {
		t.Fatalf("at the end %d hosts hold an unexpired signed lease > %d", n, maxInst+budget)
	}
	if samples < 20 || grants.Load() < 10 || releases.Load() < 3 {
		t.Fatalf("the race did too little to prove anything: %d samples, %d grants, %d releases", samples, grants.Load(), releases.Load())
	}
	t.Logf("%d samples, %d grants, %d releases, %d holders at the end", samples, grants.Load(), releases.Load(), holders())
}

// TestLeaseUnauthenticatedLeavesNoRow: a bad or missing token, a malformed or oversized
// body leave no lease_events row, even naming a real license; and unverified token
// values never make a rate-limit bucket.
func TestLeaseUnauthenticatedLeavesNoRow(t *testing.T) {
	e := mustLeaseServer(t, 100, 100)
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{})
	for range 200 {
		b := make([]byte, 32)
		crand.Read(b)
		wantProblem(t, e.grant(t, base64.RawURLEncoding.EncodeToString(b), lic.ID, "h"), 401, "unauthorized")
	}
	wantProblem(t, e.grant(t, "", lic.ID, "h"), 401, "unauthorized")
	wantProblem(t, e.release(t, "wrong", "lea_01HZY3QK8Y0000000000000009"), 401, "unauthorized")
	wantProblem(t, e.post(t, "wrong", `{"license_id":"`+lic.ID+`"}`), 400, "invalid")
	if n := e.count(t, `SELECT count(*) FROM lease_events WHERE license_id = $1`, lic.ID); n != 0 {
		t.Fatalf("%d rows from unauthenticated requests", n)
	}
	if n := e.limiter.Len(); n != 0 {
		t.Fatalf("%d rate-limit buckets from unverified tokens", n)
	}
	// The owner's requests do leave rows, and make the license's one bucket.
	e.lease(t, e.grant(t, tok, lic.ID, "h"))
	wantProblem(t, e.grant(t, tok, lic.ID, "lic-bound-nowhere but bad"), 400, "invalid")
	if n := e.count(t, `SELECT count(*) FROM lease_events WHERE license_id = $1`, lic.ID); n != 1 {
		t.Fatalf("%d rows for one authenticated grant", n)
	}
	if n := e.limiter.Len(); n != 1 {
		t.Fatalf("%d buckets for one authenticated license", n)
	}
}

// TestLeaseRateLimitKeysOnLicense: the bucket is the license's, whatever token value
// is presented; a rotated token shares it; over the limit, no row.
func TestLeaseRateLimitKeysOnLicense(t *testing.T) {
	e := mustLeaseServer(t, 0.001, 2)
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{})
	e.lease(t, e.grant(t, tok, lic.ID, "h1"))
	next, err := e.svc.RotateLeaseToken(context.Background(), lic.ID, lMaker)
	if err != nil {
		t.Fatal(err)
	}
	e.lease(t, e.grant(t, next, lic.ID, "h1"))
	wantProblem(t, e.grant(t, next, lic.ID, "h1"), 429, "rate-limited")
	wantProblem(t, e.release(t, next, "lea_01HZY3QK8Y0000000000000009"), 429, "rate-limited")
	if n := e.count(t, `SELECT count(*) FROM lease_events WHERE license_id = $1`, lic.ID); n != 2 {
		t.Fatalf("%d rows, want the 2 grants only", n)
	}
}

// TestLimiterBounded: the limiter never holds more buckets than its cap.
func TestLimiterBounded(t *testing.T) {
	l := ratelimit.New(1, 1, 50)
	for i := range 1000 {
		l.Wait(fmt.Sprintf("lic_%d", i))
	}
	if l.Len() > 50 {
		t.Fatalf("%d buckets, cap 50", l.Len())
	}
}

// TestLeaseKeyPastNotAfterStopsAtOnce: once the lease key's not_after has passed, the
// very next request is refused (503) and nothing is signed, although the service
// holds the signer in its cache; a new key then serves at once.
func TestLeaseKeyPastNotAfterStopsAtOnce(t *testing.T) {
	e := mustLeaseServer(t, 0, 0)
	ctx := context.Background()
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{})
	first := e.lease(t, e.grant(t, tok, lic.ID, "h1")) // the signer is now cached
	if err := e.svc.SetKeyNotAfter(ctx, first.KeyID, time.Now().Add(-time.Second), lAdmin); err != nil {
		t.Fatal(err)
	}
	before := e.count(t, `SELECT count(*) FROM lease_events WHERE license_id = $1`, lic.ID)
	wantProblem(t, e.grant(t, tok, lic.ID, "h1"), 503, "unavailable")
	if n := e.count(t, `SELECT count(*) FROM lease_events WHERE license_id = $1`, lic.ID); n != before {
		t.Fatal("a request refused for want of a key left a row")
	}
	next, err := e.svc.GenerateKey(ctx, entitlements.KeyInput{Product: "genai-smart-router", Alg: verify.AlgEdDSA, Purposes: []verify.Purpose{verify.PurposeLease}}, true, lAdmin)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := e.svc.PublicKeySet(ctx)
	if e.keyset, err = verify.ParseKeySet(set); err != nil {
		t.Fatal(err)
	}
	if l := e.lease(t, e.grant(t, tok, lic.ID, "h1")); l.KeyID != next.KID {
		t.Fatalf("signed by %s, want the new key %s", l.KeyID, next.KID)
	}
}

// TestRenewalNeverExtendsAReleasedLease: a release that lands between a batch's read
// and its write (here forced past the locks, straight into the row) makes the batch
// roll back: the released row is not extended and no lease is handed out.
func TestRenewalNeverExtendsAReleasedLease(t *testing.T) {
	e := mustLeaseServer(t, 0, 0)
	ctx := context.Background()
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{})
	l := e.lease(t, e.grant(t, tok, lic.ID, "h1"))
	var hash []byte
	if err := e.store.Pool().QueryRow(ctx, `SELECT token_hash FROM lease_tokens WHERE license_id = $1`, lic.ID).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	var expBefore time.Time
	e.store.Pool().QueryRow(ctx, `SELECT expires_at FROM leases WHERE lease_id = $1`, l.LeaseID).Scan(&expBefore)
	time.Sleep(1100 * time.Millisecond) // a renewal would move expires_at by at least a second
	reqs := []entitlements.LeaseRequest{{TokenHash: hash, LicenseID: lic.ID, Fingerprint: "h1", NewLeaseID: entitlements.NewID(entitlements.PrefixLease)}}
	_, err := e.store.GrantLeases(ctx, reqs, leases.Rules{}, func(ds []entitlements.LeaseDecision) error {
		if ds[0].Outcome != leases.OutcomeRenewed {
			return fmt.Errorf("expected a renewal, got %s", ds[0].Outcome)
		}
		_, err := e.store.Pool().Exec(ctx, `UPDATE leases SET released_at = now() WHERE lease_id = $1`, l.LeaseID)
		return err
	})
	if err == nil {
		t.Fatal("the batch renewed a lease released under it")
	}
	var expAfter time.Time
	e.store.Pool().QueryRow(ctx, `SELECT expires_at FROM leases WHERE lease_id = $1`, l.LeaseID).Scan(&expAfter)
	if !expAfter.Equal(expBefore) {
		t.Fatalf("released lease extended from %s to %s", expBefore, expAfter)
	}
}
