package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metrum/licensing/verify"
)

// Options configure a Recorder.
type Options struct {
	// Dir holds the state, the open period's checkpoint and the host keys (0700, files
	// 0600). One recorder per folder: a second one on the same folder is refused.
	Dir string
	// Period is how often a period closes (default 1 h, at most 24 h, at least 1 s).
	// Periods end on multiples of Period (time.Time.Truncate), which for a period that
	// divides a day is on the hour, the minute…: hourly reports line up with the
	// issuer's daily rollups.
	Period time.Duration
	// CheckpointEvery is how often Run writes the open period's counts (default 10 s):
	// a crash loses at most that much of an open period, never a closed one.
	CheckpointEvery time.Duration
	// Reporter is the reports' `reporter` member (display only).
	Reporter string
	// Uploader sends reports to the issuer; nil keeps them for Export (air-gapped).
	Uploader Uploader
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Uploader sends one upload body (spec/usage.md section 3) and returns the answer.
// Package usage/usagehttp has the HTTP one.
type Uploader interface {
	Upload(ctx context.Context, body []byte) (*Response, error)
}

// License is what the recorder needs to know of the license it counts against.
type License struct {
	ID                  string
	Product             string
	InstanceFingerprint string // the license's, when it is instance-bound
	Supersedes          string
	ExpiresAt           time.Time
	// TokenBudget is the license's token_budget; negative: none, unlimited.
	TokenBudget int64
	// Window is its usage_window_seconds: the budget applies to the tokens of that
	// rolling window. Zero: to the license's whole term.
	Window time.Duration
}

// LicenseOf reads a verified license's budget and window from its limits.
func LicenseOf(l *verify.License) License {
	out := License{ID: l.LicenseID, Product: l.Product, InstanceFingerprint: l.InstanceFingerprint,
		Supersedes: l.Supersedes, ExpiresAt: l.ExpiresAt, TokenBudget: -1}
	if b, ok := l.Limits["token_budget"]; ok {
		out.TokenBudget = b
	}
	if w, ok := l.Limits["usage_window_seconds"]; ok && w > 0 {
		out.Window = time.Duration(w) * time.Second
	}
	return out
}

// ErrNoLicense: nothing is being counted yet (SetLicense was not called).
var ErrNoLicense = errors.New("usage: no license is being metered")

// LimitError is a request the license's token budget can't take.
type LimitError struct {
	LicenseID string
	Budget    int64
	Used      int64 // tokens counted against the budget so far
	Requested int64
	// Window is the rolling window the budget covers; zero: the license's term.
	Window time.Duration
	// RetryAfter, for a window, is when enough of the window's tokens will have aged
	// out; zero for a term budget, which only a new license (a top-up) refills.
	RetryAfter time.Duration
}

// Error says how much of the budget is used, for logs (callers get a problem).
func (e *LimitError) Error() string {
	if e.Window > 0 {
		return fmt.Sprintf("usage: %d of the license's %d tokens per %s are used; %d more do not fit", e.Used, e.Budget, e.Window, e.Requested)
	}
	return fmt.Sprintf("usage: %d of the license's token budget of %d are used; %d more do not fit", e.Used, e.Budget, e.Requested)
}

// Recorder counts usage and writes, keeps and uploads signed reports. Consume and Add
// are lock-free and safe for any number of goroutines; the rest serialise on a mutex
// that no per-request call takes.
type Recorder struct {
	o    Options
	lock *os.File
	cur  atomic.Pointer[period]

	mu     sync.Mutex // guards everything below and every file write
	st     *state
	dirty  bool              // the state in memory is ahead of the file: retry the save
	stuck  map[string]string // chains the issuer refused as usage-invalid, and why
	closed bool
	up     uploadStatus

	upMu sync.Mutex // one upload at a time
}

// Open loads the recorder's folder (creating it), refusing a state whose reports
// don't verify. Call SetLicense before counting.
func Open(o Options) (*Recorder, error) {
	if o.Dir == "" {
		return nil, errors.New("usage: Options.Dir is required")
	}
	if o.Period == 0 {
		o.Period = time.Hour
	}
	if o.Period < time.Second || o.Period > MaxPeriod {
		return nil, errors.New("usage: Period must be between 1 s and 24 h")
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 10 * time.Second
	}
	if o.Reporter == "" {
		o.Reporter = "metrum-licensing-usage/1"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	lock, err := lockDir(o.Dir)
	if err != nil {
		return nil, err
	}
	removeTemps(o.Dir)
	st, err := load(o.Dir, true)
	if err != nil {
		lock.Close()
		return nil, err
	}
	r := &Recorder{o: o, lock: lock, st: st, stuck: map[string]string{}}
	if st.active != "" {
		if err := r.resume(st.licenses[st.active]); err != nil {
			lock.Close()
			return nil, err
		}
	}
	return r, nil
}

func (r *Recorder) now() time.Time { return r.o.Now().UTC().Truncate(time.Second) }

// period is the open period of the active license: the counters requests add to.
// A period is sealed when it closes; a request that finds it sealed takes the next.
type period struct {
	license string
	start   time.Time
	budget  int64 // negative: none
	window  time.Duration
	// used is the tokens counted against the budget: the closed periods' (over the
	// term, or those still in the window) plus this period's.
	used     atomic.Int64
	tokens   atomic.Int64
	requests atomic.Int64
	named    sync.Map // name → *atomic.Int64
	inflight atomic.Int64
	sealed   atomic.Bool
}

// enter returns the open period with this request counted as in flight in it, or nil.
func (r *Recorder) enter() *period {
	for {
		p := r.cur.Load()
		if p == nil {
			return nil
		}
		p.inflight.Add(1)
		if !p.sealed.Load() {
			return p
		}
		// Closing: the next period is microseconds away.
		p.inflight.Add(-1)
		runtime.Gosched()
	}
}

// Consume counts one request of n tokens against the license's budget, or refuses it
// whole (*LimitError) when the budget can't take n more. It never lets concurrent
// requests together pass the budget.
func (r *Recorder) Consume(n int64) error {
	if n < 0 {
		return errors.New("usage: a negative token count")
	}
	p := r.enter()
	if p == nil {
		return ErrNoLicense
	}
	for p.budget >= 0 {
		u := p.used.Load()
		if n > p.budget-u {
			// Leave the period before taking the mutex for RetryAfter: a close holds
			// the mutex while it waits for the requests in flight.
			p.inflight.Add(-1)
			return &LimitError{LicenseID: p.license, Budget: p.budget, Used: u, Requested: n, Window: p.window, RetryAfter: r.retryAfter(p, u+n-p.budget)}
		}
		if p.used.CompareAndSwap(u, u+n) {
			break
		}
	}
	if p.budget < 0 {
		p.used.Add(n)
	}
	p.tokens.Add(n)
	p.requests.Add(1)
	p.inflight.Add(-1)
	return nil
}

// License is the ID of the license being counted against, or "" (none yet, or
// closed). One atomic load.
func (r *Recorder) License() string {
	if p := r.cur.Load(); p != nil {
		return p.license
	}
	return ""
}

// Add counts n of a named counter (`[a-z0-9_]+`), outside the budget; "tokens" added
// this way count against the budget without being refused.
func (r *Recorder) Add(name string, n int64) error {
	if n < 0 {
		return errors.New("usage: a negative count")
	}
	p := r.enter()
	if p == nil {
		return ErrNoLicense
	}
	defer p.inflight.Add(-1)
	switch name {
	case Tokens:
		p.used.Add(n)
		p.tokens.Add(n)
	case Requests:
		p.requests.Add(n)
	default:
		c, ok := p.named.Load(name)
		if !ok {
			if !counterName.MatchString(name) {
				return fmt.Errorf("usage: counter name %q is not [a-z0-9_]+", name)
			}
			c, _ = p.named.LoadOrStore(name, new(atomic.Int64))
		}
		c.(*atomic.Int64).Add(n)
	}
	return nil
}

// seal closes p to requests and waits for those in flight, so its counts are final.
func seal(p *period) map[string]int64 {
	p.sealed.Store(true)
	for p.inflight.Load() != 0 {
		runtime.Gosched()
	}
	out := map[string]int64{Tokens: p.tokens.Load(), Requests: p.requests.Load()}
	p.named.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// Status is what the recorder reports about itself, for status pages and metrics.
type Status struct {
	LicenseID string
	// Used is the tokens counted against the budget (in the window, or over the term).
	Used        int64
	TokenBudget int64 // negative: none
	Window      time.Duration
	// Pending is the number of reports the issuer has not accepted yet.
	Pending    int
	Seq        int64 // the active chain's last report
	InstanceID string
	LastUpload time.Time // the last upload the issuer answered 200
	LastError  string    // the last upload's failure, or ""
}

// Status reports the active license's consumption and the reports waiting.
func (r *Recorder) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Status{TokenBudget: -1, LastUpload: r.up.lastOK, LastError: r.up.lastErr}
	for _, c := range r.st.chains {
		s.Pending += len(c.pending)
	}
	if p := r.cur.Load(); p != nil {
		s.LicenseID, s.Used, s.TokenBudget, s.Window = p.license, p.used.Load(), p.budget, p.window
		if c := r.st.chains[r.st.licenses[p.license].Chain]; c != nil {
			s.Seq, s.InstanceID = c.Seq, c.InstanceID
		}
	}
	return s
}

// Shutdown is Close with one last upload: it closes the open period (a shorter one,
// ending now), sends what is pending when an Uploader is set (bounded by ctx; what is
// not accepted stays for the next start or for Export), and releases the folder.
func (r *Recorder) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	err := r.closeOpen(r.now(), true, stop)
	r.mu.Unlock()
	if r.o.Uploader != nil {
		if uerr := r.Upload(ctx); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}
	return errors.Join(err, r.Close())
}

// Close closes the open period (a shorter one, ending now), checkpoints and releases
// the folder; it sends nothing. Counting after Close fails with ErrNoLicense.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.closeOpen(r.now(), true, stop)
	return errors.Join(err, r.lock.Close())
}
