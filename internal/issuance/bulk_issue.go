package issuance

import (
	"context"
	"sync"

	"github.com/metrum/licensing/internal/entitlements"
)

// bulkWorkers issue in parallel: each issue is its own transaction (a failure stays
// with its item), and Postgres commits them in groups.
const bulkWorkers = 8

// IssueProgress reports one entitlement of a bulk issue: the license and, for a
// lease-required one, its lease token (shown once), or the error.
type IssueProgress struct {
	N, Of         int
	EntitlementID string
	License       *entitlements.License
	LeaseToken    string
	Err           error
}

// IssueAllApproved issues every approved entitlement (of one customer when set; at
// most limit when > 0), in parallel, calling progress after each (from one goroutine
// at a time). It returns how many issued of how many; it stops taking new work when
// ctx ends.
func (s *Service) IssueAllApproved(ctx context.Context, customerID string, limit int, by *entitlements.Staff, progress func(IssueProgress)) (issued, of int, err error) {
	if err := entitlements.Require(by, entitlements.NeedIssue, "issuing licenses"); err != nil {
		return 0, 0, err
	}
	var list []*entitlements.Entitlement
	before := ""
	for limit <= 0 || len(list) < limit {
		page, err := s.store.ListEntitlements(ctx, entitlements.EntitlementFilter{State: entitlements.StateApproved, CustomerID: customerID,
			BeforeID: before, Limit: 500})
		if err != nil {
			return 0, 0, err
		}
		list = append(list, page...)
		if len(page) < 500 {
			break
		}
		before = page[len(page)-1].ID
	}
	if limit > 0 && len(list) > limit {
		list = list[:limit]
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done, ok := 0, 0
	for range bulkWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				l, tok, err := s.IssueWithToken(ctx, list[i].ID, by)
				mu.Lock()
				done++
				if err == nil {
					ok++
				}
				if progress != nil {
					progress(IssueProgress{N: done, Of: len(list), EntitlementID: list[i].ID, License: l, LeaseToken: tok, Err: err})
				}
				mu.Unlock()
			}
		}()
	}
	for i := range list {
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return ok, len(list), ctx.Err()
}
