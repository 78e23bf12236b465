package leases

import (
	"context"
	"errors"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// Deadlines (docs/operations.md, "Deadlines"): every lease request has one (its
// context's, or Options.Deadline), and a 503 means nothing changed, so a request is
// answered 503 only when its batch is known not to have committed:
//
//   - a request whose deadline is too close when a batch would take it is dropped
//     from the batch (answered 503: nothing was done for it);
//   - a batch runs under the earliest deadline of its requests less answerReserve;
//     storage passes that deadline to the server and sends no COMMIT once too little
//     is left, so a batch that fails before its COMMIT changed nothing;
//   - a batch whose COMMIT was sent but not answered reports EOUTCOMEUNKNOWN, a 503
//     of its own problem type; the server's commit guard rolls such a batch back if
//     it reaches the COMMIT after its deadline, so it can only have committed if the
//     server was inside the commit at that time;
//   - a request that gives up while queued drops itself; one that its batch has
//     already taken waits for its batch (which ends first) for up to answerGrace.
const (
	// answerReserve is the part of a request's deadline kept for its answer after
	// the batch: signing, writing the response, and a worker late by a scheduling
	// hiccup on a loaded machine.
	answerReserve = 150 * time.Millisecond
	// minBatch: a request with less than this left before its batch's deadline is
	// dropped (storage needs its commit margin and a round trip or two).
	minBatch = 200 * time.Millisecond
	// answerGrace: how long a request past its own deadline still waits for the
	// batch that took it (which should have ended answerReserve before).
	answerGrace = 250 * time.Millisecond
)

const (
	queued int32 = iota
	taken
	dropped
)

// errTooLate answers a request dropped before its batch started.
var errTooLate = &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "the lease service is busy or the database is unreachable: retry",
	Err: errors.New("leases: the request's deadline passed before its batch started")}

// errOutcomeUnknown answers a request whose batch did not report in time.
var errOutcomeUnknown = &entitlements.Error{Code: entitlements.EOUTCOMEUNKNOWN,
	Message: "the database did not confirm this lease in time: it may have been recorded (a retry renews it), but no lease was handed out",
	Err:     errors.New("leases: the request's batch did not report before its deadline")}

// deadlineOf is the request's deadline: its context's, else def from now.
func deadlineOf(ctx context.Context, def time.Duration) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(def)
}

// admit takes the queued requests into a batch: those whose requester gave up are
// skipped, those too close to their deadline are answered 503 at once. It returns
// the batch and its deadline.
func admit(queue []*pending) ([]*pending, time.Time) {
	now := time.Now()
	batch := queue[:0]
	var by time.Time
	for _, p := range queue {
		if !p.state.CompareAndSwap(queued, taken) {
			continue // its requester gave up while it was queued, and answered
		}
		d := p.deadline.Add(-answerReserve)
		if d.Sub(now) < minBatch {
			p.done <- result{err: errTooLate}
			continue
		}
		if by.IsZero() || d.Before(by) {
			by = d
		}
		batch = append(batch, p)
	}
	return batch, by
}

// decideOne queues one request and waits for its batch (see the rules above).
func (s *Service) decideOne(ctx context.Context, req entitlements.LeaseRequest) (result, error) {
	p := &pending{req: req, deadline: deadlineOf(ctx, s.opts.Deadline), done: make(chan result, 1)}
	select {
	case s.queue <- p:
	case <-ctx.Done():
		return result{}, unavailable(ctx.Err())
	}
	select {
	case r := <-p.done:
		return r, r.err
	case <-ctx.Done():
	}
	if p.state.CompareAndSwap(queued, dropped) {
		return result{}, unavailable(ctx.Err()) // no batch took it: nothing was done
	}
	t := time.NewTimer(answerGrace)
	defer t.Stop()
	select {
	case r := <-p.done:
		return r, r.err
	case <-t.C:
		return result{}, errOutcomeUnknown
	}
}
