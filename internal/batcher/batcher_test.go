package batcher

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

var errLate, errUnknown = errors.New("too late"), errors.New("outcome unknown")

func unavailable(err error) error { return errors.Join(errors.New("unavailable"), err) }

func newB(o Options[int], decide func(context.Context, []*Job[int, int])) *Batcher[int, int] {
	o.TooLate, o.OutcomeUnknown, o.Unavailable = errLate, errUnknown, unavailable
	if o.Deadline == 0 {
		o.Deadline = 2 * time.Second
	}
	return New(o, decide)
}

// Every request is answered by its own batch's decision, batches keep MaxBatch and
// MaxWeight, and each batch runs under its earliest deadline less AnswerReserve.
func TestBatchesAnswerEachRequest(t *testing.T) {
	var mu sync.Mutex
	var sizes, weights []int
	var slack []time.Duration
	b := newB(Options[int]{MaxBatch: 8, Workers: 2, Weight: func(n int) int { return n % 3 }, MaxWeight: 6},
		func(ctx context.Context, batch []*Job[int, int]) {
			d, _ := ctx.Deadline()
			w := 0
			for _, j := range batch {
				w += j.Req % 3
			}
			mu.Lock()
			sizes, weights, slack = append(sizes, len(batch)), append(weights, w), append(slack, time.Until(d))
			mu.Unlock()
			time.Sleep(time.Millisecond)
			for _, j := range batch {
				j.Answer(j.Req*10, nil)
			}
		})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			got, err := b.Submit(context.Background(), i)
			if err != nil || got != i*10 {
				t.Errorf("request %d: %d %v", i, got, err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for i := range sizes {
		// A batch ends at MaxBatch, or once its weight reaches MaxWeight (the request
		// that crossed it included: at most MaxWeight+2 with weights up to 2).
		if sizes[i] > 8 || weights[i] > 6+2 {
			t.Fatalf("batch %d: %d requests weighing %d", i, sizes[i], weights[i])
		}
		if slack[i] > 2*time.Second-AnswerReserve {
			t.Fatalf("batch %d's deadline is %s away: not the request's less the reserve", i, slack[i])
		}
	}
}

// A request too close to its deadline is answered TooLate without reaching decide; a
// requester that gives up while queued is dropped (its context's error, as the
// service's unavailability), and no batch decides it.
func TestTooLateAndGivenUp(t *testing.T) {
	decided := make(chan int, 10)
	b := newB(Options[int]{MaxBatch: 4, Workers: 1}, func(_ context.Context, batch []*Job[int, int]) {
		for _, j := range batch {
			decided <- j.Req
			j.Answer(j.Req, nil)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), MinBatch/2+AnswerReserve)
	defer cancel()
	go func() { time.Sleep(10 * time.Millisecond); b.Run(context.Background()) }()
	if _, err := b.Submit(ctx, 1); !errors.Is(err, errLate) {
		t.Fatalf("a request with less than MinBatch left: %v, want TooLate", err)
	}
	// No worker runs on this one: the requester gives up while queued.
	idle := newB(Options[int]{MaxBatch: 4, Workers: 1}, func(context.Context, []*Job[int, int]) { t.Error("decided") })
	gone, stop := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer stop()
	if _, err := idle.Submit(gone, 2); !errors.Is(err, context.DeadlineExceeded) || err.Error() == context.DeadlineExceeded.Error() {
		t.Fatalf("given up while queued: %v, want the service's unavailability", err)
	}
	go idle.Run(context.Background()) // the dropped job is skipped, never decided
	time.Sleep(20 * time.Millisecond)
	select {
	case n := <-decided:
		t.Fatalf("request %d was decided", n)
	default:
	}
}

// A request whose batch took it but answers past the request's deadline waits up to
// AnswerGrace, then says the outcome is unknown (never "nothing was done").
func TestTakenButLateIsOutcomeUnknown(t *testing.T) {
	release := make(chan struct{})
	b := newB(Options[int]{MaxBatch: 4, Workers: 1}, func(_ context.Context, batch []*Job[int, int]) {
		<-release
		for _, j := range batch {
			j.Answer(j.Req, nil)
		}
	})
	go b.Run(context.Background())
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), MinBatch+AnswerReserve+50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := b.Submit(ctx, 3); !errors.Is(err, errUnknown) {
		t.Fatalf("taken, answered too late: %v, want OutcomeUnknown", err)
	}
	if waited := time.Since(start); waited < MinBatch+AnswerReserve+AnswerGrace {
		t.Fatalf("gave up after %s, before its grace", waited)
	}
}
