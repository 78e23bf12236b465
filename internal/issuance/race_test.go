package issuance_test

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

// race runs f n times at once, released together, and returns the errors.
func race(n int, f func(i int) error) []error {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = f(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// TestConcurrentPublishesKeepEachProductsSequenceIncreasing: many publishes at once,
// for both products, give each product distinct sequences (formats.md v1.2: per
// product), each inside its own signed file naming its product, whose issued_at never
// goes backwards as the sequence goes up, and none above the millisecond it was
// published in (what makes sequences safe across a restore).
func TestConcurrentPublishesKeepEachProductsSequenceIncreasing(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	const n = 24
	bundles := make([]*entitlements.Bundle, n)
	errs := race(n, func(i int) error {
		product := []string{"genai-smart-router", "coresdk"}[i%2]
		b, err := e.svc.PublishBundle(ctx, product, approver)
		bundles[i] = b
		return err
	})
	after := time.Now()
	ks, _ := e.mustKeySet(t)
	byProduct := map[string][]*verify.Bundle{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		parsed, err := verify.ParseBundleFile(bundles[i].File, ks)
		if err != nil {
			t.Fatalf("bundle %d does not verify: %v", bundles[i].Sequence, err)
		}
		if parsed.Sequence != bundles[i].Sequence {
			t.Fatalf("row %s #%d, signed #%d", bundles[i].Product, bundles[i].Sequence, parsed.Sequence)
		}
		if parsed.Sequence > after.UnixMilli() {
			t.Fatalf("sequence %d is above the time it was published (%d ms)", parsed.Sequence, after.UnixMilli())
		}
		byProduct[bundles[i].Product] = append(byProduct[bundles[i].Product], parsed)
	}
	for product, list := range byProduct {
		if len(list) != n/2 {
			t.Fatalf("%s: %d bundles, want %d", product, len(list), n/2)
		}
		slices.SortFunc(list, func(a, b *verify.Bundle) int { return cmp.Compare(a.Sequence, b.Sequence) })
		for i := 1; i < len(list); i++ {
			if list[i].Sequence == list[i-1].Sequence {
				t.Fatalf("%s: sequence %d published twice", product, list[i].Sequence)
			}
			if list[i].IssuedAt.Before(list[i-1].IssuedAt) {
				t.Fatalf("%s: #%d issued at %s, before #%d at %s", product, list[i].Sequence, list[i].IssuedAt, list[i-1].Sequence, list[i-1].IssuedAt)
			}
		}
		if got := count(t, e, `SELECT last_sequence FROM bundle_sequences WHERE product = '`+product+`'`); int64(got) != list[len(list)-1].Sequence {
			t.Fatalf("%s: counter at %d, last published %d", product, got, list[len(list)-1].Sequence)
		}
	}
}

// TestConcurrentTopUpsIssueExactlyOneSuccessor: many top-ups of one license opened at
// once leave one open; many issuers of it at once produce one license; the old
// license ends with exactly one successor.
func TestConcurrentTopUpsIssueExactlyOneSuccessor(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	l := e.mustIssued(t, "enterprise-annual")
	const n = 16
	ents := make([]*entitlements.Entitlement, n)
	errs := race(n, func(i int) error {
		pack := []string{"credit-pack-5m", "credit-pack-25m"}[i%2]
		ent, err := e.svc.CreateSuccessor(ctx, entitlements.SuccessorInput{Kind: entitlements.KindTopUp, LicenseID: l.ID, Template: pack}, maker)
		ents[i] = ent
		return err
	})
	var opened *entitlements.Entitlement
	for i, err := range errs {
		switch {
		case err == nil && opened == nil:
			opened = ents[i]
		case err == nil:
			t.Fatalf("two top-ups opened: %s and %s", opened.ID, ents[i].ID)
		case entitlements.ErrorCode(err) != entitlements.ECONFLICT:
			t.Fatalf("top-up %d: %v", i, err)
		}
	}
	if opened == nil {
		t.Fatal("no top-up opened")
	}
	if _, err := e.svc.Approve(ctx, opened.ID, approver); err != nil {
		t.Fatal(err)
	}
	licenses := make([]*entitlements.License, n)
	errs = race(n, func(i int) error {
		lic, err := e.svc.Issue(ctx, opened.ID, maker)
		licenses[i] = lic
		return err
	})
	issued := 0
	for i, err := range errs {
		if err == nil {
			issued++
			continue
		}
		if entitlements.ErrorCode(err) != entitlements.ECONFLICT {
			t.Fatalf("issue %d: %v", i, err)
		}
	}
	if issued != 1 {
		t.Fatalf("%d licenses issued from one top-up", issued)
	}
	if got := count(t, e, `SELECT count(*) FROM licenses WHERE supersedes = $1`, l.ID); got != 1 {
		t.Fatalf("%d successors of %s", got, l.ID)
	}
	if got := count(t, e, `SELECT count(*) FROM audit_events WHERE action = 'license.issue' AND details->>'supersedes' = $1`, l.ID); got != 1 {
		t.Fatalf("%d issue events for successors", got)
	}
}

// TestSequenceIsNeverReusedAfterARestore: a database that went back in time (its
// counter and bundles as they were before the last publishes) still publishes above
// every sequence published, without being told what it lost.
func TestSequenceIsNeverReusedAfterARestore(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	first, err := e.svc.PublishBundle(ctx, "genai-smart-router", approver)
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for range 3 {
		b, err := e.svc.PublishBundle(ctx, "genai-smart-router", approver)
		if err != nil {
			t.Fatal(err)
		}
		last = b.Sequence
	}
	// The "restore": back to the state right after the first publish.
	pool := e.store.Pool()
	if _, err := pool.Exec(ctx, `DELETE FROM revocation_bundles WHERE product = 'genai-smart-router' AND sequence > $1`, first.Sequence); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE bundle_sequences SET last_sequence = $1, last_issued_at = $2 WHERE product = 'genai-smart-router'`,
		first.Sequence, first.IssuedAt); err != nil {
		t.Fatal(err)
	}
	b, err := e.svc.PublishBundle(ctx, "genai-smart-router", approver)
	if err != nil {
		t.Fatal(err)
	}
	if b.Sequence <= last {
		t.Fatalf("after the restore: #%d, but #%d was published before it", b.Sequence, last)
	}
}
