// Package batcher decides queued requests in batches, one transaction each, under
// deadlines that keep a 503's promise (docs/operations.md, "Deadlines"): the lease
// API's grants and the usage API's uploads both go through it.
//
//   - every request has a deadline (its context's, or the default from now);
//   - a request whose deadline is too close when a batch would take it is dropped
//     from the batch and answered Options.TooLate (nothing was done for it);
//   - a batch runs under the earliest deadline of its requests less AnswerReserve;
//     storage passes that deadline to the server and sends no COMMIT once too little
//     is left, so a batch that fails before its COMMIT changed nothing;
//   - a request that gives up while queued drops itself (Options.Unavailable of its
//     context's error); one that its batch has already taken waits for its batch
//     (which ends first) for up to AnswerGrace, then answers OutcomeUnknown.
package batcher

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// AnswerReserve is the part of a request's deadline kept for its answer after
	// the batch: signing, writing the response, and a worker late by a scheduling
	// hiccup on a loaded machine.
	AnswerReserve = 150 * time.Millisecond
	// MinBatch: a request with less than this left before its batch's deadline is
	// dropped (storage needs its commit margin and a round trip or two).
	MinBatch = 200 * time.Millisecond
	// AnswerGrace: how long a request past its own deadline still waits for the
	// batch that took it (which should have ended AnswerReserve before).
	AnswerGrace = 250 * time.Millisecond
)

const (
	queued int32 = iota
	taken
	dropped
)

// Job is one queued request; its batch answers it exactly once with Answer.
type Job[Req, Res any] struct {
	Req      Req
	deadline time.Time
	// state: queued until a batch takes it, or its requester gives up first.
	state atomic.Int32
	done  chan answer[Res]
}

type answer[Res any] struct {
	res Res
	err error
}

// Answer gives the job its outcome (once).
func (j *Job[Req, Res]) Answer(res Res, err error) { j.done <- answer[Res]{res, err} }

// Options configure a Batcher.
type Options[Req any] struct {
	// MaxBatch caps the requests of one batch; Workers is how many batches may be
	// in flight at once.
	MaxBatch, Workers int
	// Deadline is the deadline of a request whose context has none.
	Deadline time.Duration
	// Weight and MaxWeight, when set, also end a batch once its requests weigh
	// MaxWeight (an upload of many reports weighs more than one).
	Weight    func(Req) int
	MaxWeight int
	// TooLate answers a request dropped before its batch started; OutcomeUnknown
	// one whose batch did not report in time; Unavailable says a requester's
	// context error as the service's.
	TooLate, OutcomeUnknown error
	Unavailable             func(error) error
}

// Batcher queues requests for Run's workers, which hand each batch to decide.
type Batcher[Req, Res any] struct {
	o      Options[Req]
	queue  chan *Job[Req, Res]
	decide func(ctx context.Context, batch []*Job[Req, Res])
}

// New makes a batcher; decide must answer every job of its batch, and ctx (its
// batch's deadline) bounds everything it asks the database.
func New[Req, Res any](o Options[Req], decide func(ctx context.Context, batch []*Job[Req, Res])) *Batcher[Req, Res] {
	return &Batcher[Req, Res]{o: o, queue: make(chan *Job[Req, Res], 4*o.MaxBatch), decide: decide}
}

// Submit queues req and waits for its batch's answer (see the package's rules).
func (b *Batcher[Req, Res]) Submit(ctx context.Context, req Req) (Res, error) {
	var zero Res
	j := &Job[Req, Res]{Req: req, deadline: time.Now().Add(b.o.Deadline), done: make(chan answer[Res], 1)}
	if d, ok := ctx.Deadline(); ok {
		j.deadline = d
	}
	select {
	case b.queue <- j:
	case <-ctx.Done():
		return zero, b.o.Unavailable(ctx.Err())
	}
	select {
	case a := <-j.done:
		return a.res, a.err
	case <-ctx.Done():
	}
	if j.state.CompareAndSwap(queued, dropped) {
		return zero, b.o.Unavailable(ctx.Err()) // no batch took it: nothing was done
	}
	t := time.NewTimer(AnswerGrace)
	defer t.Stop()
	select {
	case a := <-j.done:
		return a.res, a.err
	case <-t.C:
		return zero, b.o.OutcomeUnknown
	}
}

// Run decides queued requests in batches with Options.Workers workers until ctx ends.
func (b *Batcher[Req, Res]) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range b.o.Workers {
		wg.Go(func() { b.work(ctx) })
	}
	wg.Wait()
}

func (b *Batcher[Req, Res]) work(ctx context.Context) {
	batch := make([]*Job[Req, Res], 0, b.o.MaxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-b.queue:
			batch = append(batch[:0], j)
		}
		w := b.weight(batch[0])
	drain:
		for len(batch) < b.o.MaxBatch && (b.o.MaxWeight == 0 || w < b.o.MaxWeight) {
			select {
			case j := <-b.queue:
				batch = append(batch, j)
				w += b.weight(j)
			default:
				break drain
			}
		}
		if admitted, by := b.admit(batch); len(admitted) > 0 {
			bctx, cancel := context.WithDeadline(ctx, by)
			b.decide(bctx, admitted)
			cancel()
		}
	}
}

func (b *Batcher[Req, Res]) weight(j *Job[Req, Res]) int {
	if b.o.Weight == nil {
		return 1
	}
	return b.o.Weight(j.Req)
}

// admit takes the queued requests into a batch: those whose requester gave up are
// skipped, those too close to their deadline are answered TooLate at once. It returns
// the batch and its deadline.
func (b *Batcher[Req, Res]) admit(queue []*Job[Req, Res]) ([]*Job[Req, Res], time.Time) {
	now := time.Now()
	batch := queue[:0]
	var by time.Time
	for _, j := range queue {
		if !j.state.CompareAndSwap(queued, taken) {
			continue // its requester gave up while it was queued, and answered
		}
		d := j.deadline.Add(-AnswerReserve)
		if d.Sub(now) < MinBatch {
			var zero Res
			j.Answer(zero, b.o.TooLate)
			continue
		}
		if by.IsZero() || d.Before(by) {
			by = d
		}
		batch = append(batch, j)
	}
	return batch, by
}
