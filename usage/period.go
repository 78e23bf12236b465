package usage

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/metrum/licensing/verify"
)

// SetLicense makes l the license counted against. A new license ID closes the open
// period of the one before (its report is written now) and starts counting for l; a
// license not seen before starts its own chain and its own budget at zero (a top-up is
// a new license-wide budget), while one seen before continues where it stopped, so
// switching licenses back and forth never refills a budget. The same ID again is a
// no-op.
func (r *Recorder) SetLicense(l License) error {
	if !isID("lic_", l.ID) || l.Product == "" {
		return errors.New("usage: a license needs an ID (lic_ + ULID) and a product")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("usage: recorder closed")
	}
	if p := r.cur.Load(); p != nil && p.license == l.ID {
		return nil
	}
	now := r.now()
	lic := r.st.licenses[l.ID]
	if lic == nil {
		c, err := r.newChain(l.ID)
		if err != nil {
			return err
		}
		lic = &licenseWire{LicenseID: l.ID, Product: l.Product, Fingerprint: l.InstanceFingerprint, Supersedes: l.Supersedes,
			ExpiresAt: verify.FormatTime(l.ExpiresAt), Chain: c.InstanceID, OpenStart: verify.FormatTime(now)}
		r.st.licenses[l.ID] = lic
	}
	lic.setBudget(l.TokenBudget, l.Window)
	np, err := r.newPeriod(lic, nil)
	if err != nil {
		return err
	}
	// The old license's period closes and the new one opens in one step, so that no
	// request falls between them.
	if err := r.closeOpen(now, true, np); err != nil {
		return err
	}
	r.st.active = l.ID
	return r.saveLocked()
}

// resume restarts counting for the active license after Open, with the checkpoint's
// counts when the checkpoint is of the state's open period (and only then: one of a
// period already closed is stale and would count it twice).
func (r *Recorder) resume(lic *licenseWire) error {
	cp, err := readCheckpoint(r.o.Dir)
	if err != nil {
		return err
	}
	if cp != nil && (cp.LicenseID != lic.LicenseID || cp.PeriodStart != lic.OpenStart) {
		cp = nil
	}
	p, err := r.newPeriod(lic, cp)
	if err != nil {
		return err
	}
	r.cur.Store(p)
	return nil
}

// newPeriod is the license's open period from its OpenStart, with used computed from
// what the state holds, and the checkpoint's counts if given.
func (r *Recorder) newPeriod(lic *licenseWire, cp *checkpointWire) (*period, error) {
	start, err := verify.ParseTime("open_start", lic.OpenStart)
	if err != nil {
		return nil, err
	}
	budget, window := lic.budget()
	p := &period{license: lic.LicenseID, start: start, budget: budget, window: window}
	p.used.Store(r.closedUsed(lic, window, r.now()))
	if cp != nil {
		for k, v := range cp.Counters {
			switch k {
			case Tokens:
				p.tokens.Store(v)
				p.used.Add(v)
			case Requests:
				p.requests.Store(v)
			default:
				c := new(atomic.Int64)
				c.Store(v)
				p.named.Store(k, c)
			}
		}
	}
	return p, nil
}

// closedUsed is the closed periods' tokens that count against the budget now: the
// term's, or those of periods that end inside the window. A period partly inside the
// window counts whole, so the local check errs on the side of the budget.
func (r *Recorder) closedUsed(lic *licenseWire, window time.Duration, now time.Time) int64 {
	if window <= 0 {
		return lic.Tokens
	}
	var n int64
	for _, w := range lic.Window {
		if end, err := verify.ParseTime("end", w.End); err == nil && end.After(now.Add(-window)) {
			n += w.Tokens
		}
	}
	return n
}

// retryAfter is how long until need tokens of the window have aged out.
func (r *Recorder) retryAfter(p *period, need int64) time.Duration {
	if p.window <= 0 {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	var freed int64
	for _, w := range r.st.licenses[p.license].Window {
		end, err := verify.ParseTime("end", w.End)
		if err != nil || !end.After(now.Add(-p.window)) {
			continue
		}
		if freed += w.Tokens; freed >= need {
			return end.Add(p.window).Sub(now)
		}
	}
	// The open period's own tokens age out a window after it closes.
	return r.nextBoundary(p.start).Add(p.window).Sub(now)
}

// nextBoundary is the first period end after t.
func (r *Recorder) nextBoundary(t time.Time) time.Time {
	return t.Truncate(r.o.Period).Add(r.o.Period)
}

// stop, as closeOpen's next, leaves no period open (a shutdown).
var stop = new(period)

// closeOpen closes the open period at the last period boundary (force: at now, the
// shorter period of a license switch or a shutdown), and opens next in its place (nil:
// the same license's next period; stop: none). It seals the period, writes its
// counts as a checkpoint first (so that a crash before the state is saved loses
// nothing), appends the report or reports to the license's chain (a span over 24 h is
// cut into 24 h reports, the counts in the last, where they lie later in time and so
// stay longer in a rolling window), saves the state, and checkpoints the next period.
func (r *Recorder) closeOpen(now time.Time, force bool, next *period) error {
	p := r.cur.Load()
	if p == nil {
		if next != nil && next != stop {
			r.cur.Store(next)
		}
		return nil
	}
	if r.dirty {
		// The last close is not on disk: finish it before anything else is written.
		if err := r.saveLocked(); err != nil {
			return err
		}
	}
	end := now.Truncate(r.o.Period)
	if force {
		end = now
	}
	lic := r.st.licenses[p.license]
	var counts map[string]int64
	if !end.After(p.start) {
		if !force {
			return nil
		}
		// A shutdown or switch within the period's first second: a report needs
		// start < end, so it ends a second later (the spec allows an end up to
		// 300 s past the issuer's clock).
		end = p.start.Add(time.Second)
	}
	np := next
	if next == nil {
		np = &period{license: p.license, start: end, budget: p.budget, window: p.window}
	}
	// Sealing waits out the requests in p; then, at once, the next period takes them.
	counts = seal(p)
	if next == nil {
		np.used.Store(p.used.Load())
	}
	if np == stop {
		r.cur.Store(nil)
	} else {
		r.cur.Store(np)
	}
	if err := writeCheckpoint(r.o.Dir, &checkpointWire{LicenseID: p.license, PeriodStart: lic.OpenStart, Counters: counts}); err != nil {
		// A safety net only: the report below is the record. Go on.
		r.o.Logger.Error("usage checkpoint not written", "err", err)
	}
	if err := r.appendReports(lic, p.start, end, counts); err != nil {
		return err
	}
	if next == nil {
		// Requests counted in np meanwhile are in np.used too: move the base, keep them.
		np.used.Add(r.closedUsed(lic, p.window, now) - p.used.Load())
	}
	if err := r.saveLocked(); err != nil {
		return err
	}
	return writeCheckpoint(r.o.Dir, &checkpointWire{LicenseID: p.license, PeriodStart: lic.OpenStart, Counters: map[string]int64{}})
}

// appendReports signs the reports of [start, end] into the license's chain (in
// memory; the caller saves).
func (r *Recorder) appendReports(lic *licenseWire, start, end time.Time, counts map[string]int64) error {
	c := r.st.chains[lic.Chain]
	for s := start; s.Before(end); {
		e, cs := end, counts
		if end.Sub(s) > MaxPeriod {
			e, cs = s.Add(MaxPeriod), map[string]int64{Tokens: 0, Requests: 0}
		}
		if err := r.appendReport(c, lic, s, e, cs); err != nil {
			return err
		}
		s = e
	}
	lic.Tokens += counts[Tokens]
	lic.OpenStart = verify.FormatTime(end)
	if _, window := lic.budget(); window > 0 {
		lic.Window = append(lic.Window, windowWire{End: verify.FormatTime(end), Tokens: counts[Tokens]})
		r.ageWindow(lic, window, r.now(), nil)
	}
	return nil
}

// appendReport signs one report as the chain's next.
func (r *Recorder) appendReport(c *chain, lic *licenseWire, start, end time.Time, counts map[string]int64) error {
	totals := maps.Clone(c.Totals)
	if totals == nil {
		totals = map[string]int64{}
	}
	for k, v := range counts {
		totals[k] += v
	}
	p := &Payload{Schema: 1, LicenseID: lic.LicenseID, Product: lic.Product, InstanceID: c.InstanceID,
		InstanceFingerprint: lic.Fingerprint, Seq: c.Seq + 1, Prev: c.Last, PeriodStart: verify.FormatTime(start),
		PeriodEnd: verify.FormatTime(end), Counters: counts, Totals: totals, Reporter: r.o.Reporter}
	if p.Seq == 1 {
		p.HostKey = PublicJWK(c.key.Public().(ed25519.PublicKey))
	}
	env, err := Sign(c.key, p)
	if err != nil {
		return err
	}
	rep, err := Parse(env, c.key.Public().(ed25519.PublicKey))
	if err != nil {
		return fmt.Errorf("usage: a report this recorder signed does not verify: %w", err)
	}
	c.pending = append(c.pending, rep)
	c.Seq, c.Last, c.LastEnd, c.Totals = rep.Seq, rep.Hash(), rep.Payload.PeriodEnd, totals
	return nil
}

// ageWindow drops the window's periods that ended before the window, taking their
// tokens off p's count when p is given.
func (r *Recorder) ageWindow(lic *licenseWire, window time.Duration, now time.Time, p *period) {
	keep := lic.Window[:0]
	for _, w := range lic.Window {
		end, err := verify.ParseTime("end", w.End)
		if err == nil && !end.After(now.Add(-window)) {
			if p != nil {
				p.used.Add(-w.Tokens)
			}
			continue
		}
		keep = append(keep, w)
	}
	lic.Window = keep
}

// newChain starts a chain for a license: a new instance ID and a new host key, the
// key written before any report it signs.
func (r *Recorder) newChain(licenseID string) (*chain, error) {
	key, kid, err := newKey(r.o.Dir)
	if err != nil {
		return nil, fmt.Errorf("usage: host key: %w", err)
	}
	c := &chain{chainWire: chainWire{LicenseID: licenseID, InstanceID: "ins_" + ulid.Make().String(), KeyID: kid, Totals: map[string]int64{}}, key: key}
	r.st.chains[c.InstanceID] = c
	return c, nil
}

func (r *Recorder) saveLocked() error {
	if err := save(r.o.Dir, r.st); err != nil {
		r.dirty = true
		r.o.Logger.Error("usage state not saved; retrying at the next tick", "err", err)
		return fmt.Errorf("usage: state: %w", err)
	}
	r.dirty = false
	return nil
}

// Tick closes the period when a boundary has passed, ages the rolling window, and
// retries a save that failed. Run calls it; tests with their own clock call it too.
func (r *Recorder) Tick() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	now := r.now()
	if r.dirty {
		if err := r.saveLocked(); err != nil {
			return err
		}
	}
	if err := r.closeOpen(now, false, nil); err != nil {
		return err
	}
	if p := r.cur.Load(); p != nil && p.window > 0 {
		r.ageWindow(r.st.licenses[p.license], p.window, now, p)
	}
	return nil
}

// Checkpoint writes the open period's counts, so a crash after it loses none of them.
func (r *Recorder) Checkpoint() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.cur.Load()
	if p == nil || r.dirty || r.closed {
		// While the state file is behind, its checkpoint is the one that counts.
		return nil
	}
	counts := map[string]int64{Tokens: p.tokens.Load(), Requests: p.requests.Load()}
	p.named.Range(func(k, v any) bool {
		counts[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return writeCheckpoint(r.o.Dir, &checkpointWire{LicenseID: p.license, PeriodStart: verify.FormatTime(p.start), Counters: counts})
}
