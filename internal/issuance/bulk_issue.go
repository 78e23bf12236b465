package issuance

import (
	"context"
	"sync"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// bulkWorkers issue in parallel: each issue is its own transaction (a failure stays
// with its item), and Postgres commits them in groups.
const bulkWorkers = 8

// jobRetention: bulk jobs are kept this long, then pruned by the scheduler.
const jobRetention = 90 * 24 * time.Hour

// IssueProgress reports a bulk issue: first the job (Job set, before any item), then
// one entitlement at a time, with its license and, for a lease-required one, its
// lease token (shown once), or the error.
type IssueProgress struct {
	N, Of         int
	Job           *entitlements.BulkJob
	EntitlementID string
	License       *entitlements.License
	LeaseToken    string
	Err           error
}

// BulkOptions tune a bulk run.
type BulkOptions struct {
	CustomerID string
	Limit      int // at most this many (0: all)
	// ItemDeadline bounds each item (0: none). The run itself takes as long as its
	// items do.
	ItemDeadline time.Duration
}

// IssueAllApproved issues every approved entitlement (of one customer when set; at
// most Limit), in parallel, as a bulk job (docs/operations.md, "Bulk jobs"): the job
// and its entitlements are recorded before any work, and each item's outcome after
// it is reported. progress is called from one goroutine at a time: first with the
// job, then after each item; it returns whether the report reached the stream (for a
// lease token: whether it was delivered as far as the issuer can tell). It returns how
// many issued of how many. When ctx ends (the client went away) no new item starts;
// those under way finish, within their deadline, and are recorded.
func (s *Service) IssueAllApproved(ctx context.Context, o BulkOptions, by *entitlements.Staff, progress func(IssueProgress) bool) (issued, of int, err error) {
	if err := entitlements.Require(by, entitlements.NeedIssue, "issuing licenses"); err != nil {
		return 0, 0, err
	}
	var list []*entitlements.Entitlement
	before := ""
	for o.Limit <= 0 || len(list) < o.Limit {
		page, err := s.store.ListEntitlements(ctx, entitlements.EntitlementFilter{State: entitlements.StateApproved, CustomerID: o.CustomerID,
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
	if o.Limit > 0 && len(list) > o.Limit {
		list = list[:o.Limit]
	}
	ids := make([]string, len(list))
	for i, e := range list {
		ids[i] = e.ID
	}
	job := &entitlements.BulkJob{ID: entitlements.NewID(entitlements.PrefixJob), Kind: entitlements.JobIssueAllApproved,
		Actor: by.Email, StartedAt: s.now().Truncate(time.Second)}
	if err := s.store.CreateJob(ctx, job, ids); err != nil {
		return 0, 0, err
	}
	report := func(p IssueProgress) bool {
		if progress == nil {
			return false
		}
		return progress(p)
	}
	report(IssueProgress{Of: len(list), Job: job})
	// Items run, and are recorded, on a context the client's going away does not
	// cancel: what was started finishes and is written down.
	work := context.WithoutCancel(ctx)
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done, ok := 0, 0
	for range bulkWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				l, tok, err := s.issueItem(work, o.ItemDeadline, list[i].ID, by)
				mu.Lock()
				done++
				if err == nil {
					ok++
				}
				written := report(IssueProgress{N: done, Of: len(list), EntitlementID: list[i].ID, License: l, LeaseToken: tok, Err: err})
				mu.Unlock()
				s.recordItem(work, job.ID, i+1, l, err, tok != "" && written)
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
	if err := s.store.FinishJob(work, job.ID); err != nil {
		s.logc(ctx, "bulk job not marked finished", "job_id", job.ID, "err", err)
	}
	return ok, len(list), ctx.Err()
}

func (s *Service) issueItem(ctx context.Context, deadline time.Duration, entitlementID string, by *entitlements.Staff) (*entitlements.License, string, error) {
	if deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, deadline)
		defer cancel()
	}
	return s.IssueWithToken(ctx, entitlementID, by)
}

// recordItem writes an item's outcome. If that fails, reading the job finds the
// license through its entitlement and counts its token as not delivered.
func (s *Service) recordItem(ctx context.Context, jobID string, n int, l *entitlements.License, err error, tokenWritten bool) {
	var lic, msg string
	if l != nil {
		lic = l.ID
	}
	if err != nil {
		msg = entitlements.ErrorMessage(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if rerr := s.store.RecordJobItem(rctx, jobID, n, lic, msg, tokenWritten); rerr != nil {
		s.logc(ctx, "bulk job item not recorded", "job_id", jobID, "n", n, "license_id", lic, "err", rerr)
	}
}

// Job returns a bulk job and what became of each of its items (lease tokens are not
// stored: NeedsRotation says which licenses need a new one).
func (s *Service) Job(ctx context.Context, id string, by *entitlements.Staff) (*entitlements.BulkJob, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading a bulk job"); err != nil {
		return nil, err
	}
	if !entitlements.ValidID(entitlements.PrefixJob, id) {
		return nil, entitlements.NotFound("job", id)
	}
	return s.store.GetJob(ctx, id)
}
