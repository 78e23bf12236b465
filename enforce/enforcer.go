// Package enforce is what a router embeds to enforce its Metrum license, on top of the
// pure check in package verify: an Enforcer loads the license, the revocation bundle,
// the lease and the state at start, rechecks on an interval, on SIGHUP and when a
// watched file changes, and keeps the verdict in memory, so that the per-request calls
// (Allow, Limit, Status) are one atomic load, never file I/O. Grace is formats.md
// v1.2's (the license last observed valid is served, its features and limits and
// nothing more) with the operator's own grace_period_on_validation_error as a cap.
// It also gives the license-* errors as RFC 9457 problems and net/http middleware
// (usable from echo), the CoreSDK plan checks (max_tenants, max_rps as a token
// bucket, feature gates) with CoreSDK's plan-limit problem, Prometheus collectors
// with the names the product documents use, and, with a usage.Recorder, the
// license-wide token budget.
//
// See docs/host.md for the options, the status fields, the metrics and the
// air-gapped usage export.
package enforce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/metrum/licensing/usage"
	"github.com/metrum/licensing/verify"
)

// Options configure an Enforcer. None of them can turn a check off by being left
// out: a bundle source means revocation is checked, an empty Product is refused
// unless AnyProduct says so, and a key set that trusts nothing is refused.
type Options struct {
	// License is the license file (license.json, or a CoreSDK token). Required.
	License Source
	// Product is the product this router is (genai-smart-router, coresdk). Required
	// unless AnyProduct is set: without it any trusted product's license would do.
	Product    string
	AnyProduct bool
	// KeySet is the trusted key set (keys.ReleaseKeySet parsed, in a release build).
	// Required, with at least one key trusted for a product.
	KeySet *verify.KeySet
	// Bundle is the revocation bundle; set, revocation is checked (formats.md v1.2).
	Bundle                  Source
	RequireCurrentBundle    bool
	FailClosedOnBundleError bool
	// Lease is the lease file, for a license that requires one.
	Lease Source
	// StatePath is the state file (clock-rollback, grace and revocation memory). ""
	// keeps that memory only as long as the process runs.
	StatePath           string
	InstanceFingerprint string
	// RecheckInterval is how often the license is checked again (default 1 h). It
	// is also checked when a deadline passes (expiry, a lease's expiry, grace's end).
	RecheckInterval time.Duration
	// WatchInterval is how often Run polls the file sources for changes (default 2 s).
	WatchInterval time.Duration
	// GraceOnValidationError is the operator's cap on grace (the router document's
	// grace_period_on_validation_error): grace ends when either it or the license's
	// own grace period has passed since the last valid observation. Zero: the
	// license's grace period alone.
	GraceOnValidationError time.Duration
	// Usage, when set, is told the license each check serves, so that it counts
	// against that license's budget (a new license ID starts its own at zero).
	Usage *usage.Recorder
	// NoSIGHUP: do not listen for SIGHUP (the caller calls Reload). Otherwise New
	// takes SIGHUP (from then on it no longer ends the process) and Run reloads on it.
	NoSIGHUP bool
	Logger   *slog.Logger
	Now      func() time.Time
}

// Enforcer keeps a license's verdict current and answers per-request gates from it.
type Enforcer struct {
	o    Options
	snap atomic.Pointer[snapshot]

	mu       sync.Mutex    // serialises checks
	state    *verify.State // the memory; nil while the state file can't be trusted
	stateErr error         // ReadState's error: every check is license-clock-rollback
	metered  string        // the license ID Usage was last given
	seen     []stamp       // the file sources as the last check found them

	metrics *counters
	plan    *Plan
	hup     chan os.Signal // nil with NoSIGHUP
}

// snapshot is one check's verdict, immutable once stored.
type snapshot struct {
	status   Status
	features map[string]bool
	serving  bool
	license  *verify.License // the license served (in grace: the kept one)
	deadline time.Time       // when the verdict changes by itself; zero: never
}

// ErrNoKeys is New's error for a key set that trusts nothing.
var ErrNoKeys = errors.New("enforce: the key set trusts no keys: build with the release key set (scripts/release-verifier), or give one")

// New checks the options, loads the state and runs the first check, so the Enforcer
// answers from the start; a blocked license is a verdict, not an error. Call Run to
// keep it current.
func New(o Options) (*Enforcer, error) {
	switch {
	case o.License.IsZero():
		return nil, errors.New("enforce: Options.License is required")
	case o.Product == "" && !o.AnyProduct:
		return nil, errors.New("enforce: Options.Product is required (set AnyProduct to accept any trusted product's license)")
	case o.KeySet == nil:
		return nil, errors.New("enforce: Options.KeySet is required")
	case o.RecheckInterval < 0 || o.WatchInterval < 0 || o.GraceOnValidationError < 0:
		return nil, errors.New("enforce: intervals and the grace cap must not be negative")
	}
	if !trustsAny(o.KeySet) {
		return nil, ErrNoKeys
	}
	if o.RecheckInterval == 0 {
		o.RecheckInterval = time.Hour
	}
	if o.WatchInterval == 0 {
		o.WatchInterval = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	e := &Enforcer{o: o, metrics: newCounters()}
	e.plan = &Plan{e: e}
	if !o.NoSIGHUP {
		// Taken here, not in Run, so a SIGHUP sent once New has returned is never the
		// default action (the end of the process), whenever Run starts.
		e.hup = make(chan os.Signal, 1)
		signal.Notify(e.hup, syscall.SIGHUP)
	}
	if o.StatePath == "" {
		e.state = &verify.State{}
		o.Logger.Warn("license: no state file: clock-rollback, grace and revocation memory last only while the process runs")
	} else if e.loadState() != nil {
		o.Logger.Error("license: the state file can't be trusted; restore a trusted backup, then reload", "path", o.StatePath, "err", e.stateErr)
	}
	e.check("start")
	return e, nil
}

func trustsAny(ks *verify.KeySet) bool {
	for _, k := range ks.Keys() {
		if len(k.Products) > 0 {
			return true
		}
	}
	return false
}

// loadState reads the state file. Once loaded, the memory is the truth and the file
// only its copy: re-reading it at each check would let an older copy put back under
// the process roll back what it has seen (revocations, the clock, sequences).
func (e *Enforcer) loadState() error {
	st, _, err := verify.ReadState(e.o.StatePath)
	e.state, e.stateErr = st, err
	return err
}

func (e *Enforcer) now() time.Time { return e.o.Now() }

// Close stops listening for SIGHUP. Run must have returned.
func (e *Enforcer) Close() {
	if e.hup != nil {
		signal.Stop(e.hup)
	}
}

// Reload checks the license now (reading every source again) and returns the verdict;
// SIGHUP and a changed file do this in Run. A state file that could not be trusted
// is read again, for the operator who restored a backup.
func (e *Enforcer) Reload() Status {
	e.check("reload")
	return e.Status()
}

// check runs one verification and stores its verdict.
func (e *Enforcer) check(why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.o
	if e.stateErr != nil && why == "reload" {
		e.loadState()
	}
	now := e.now()
	// Stat before reading: a change after this is a change Run will see.
	e.seen = e.stamps()
	in := verify.Input{Product: o.Product, InstanceFingerprint: o.InstanceFingerprint, KeySet: o.KeySet, Now: now,
		RequireCurrent: o.RequireCurrentBundle, FailClosed: o.FailClosedOnBundleError, State: e.state, StateErr: e.stateErr}
	in.License, _ = o.License.read(verify.MaxLicenseSize) // unreadable is license-missing, as verify says
	if !o.Bundle.IsZero() {
		in.Revocation = true
		in.Bundle, in.BundleErr = o.Bundle.read(verify.MaxBundleSize)
	}
	if !o.Lease.IsZero() {
		in.Lease, in.LeaseErr = o.Lease.read(verify.MaxLeaseSize)
	}
	prev := e.state
	r, next := verify.Check(in)
	graceEnd := e.capGrace(r, prev, now)
	if next != nil {
		e.state = next
		if o.StatePath != "" {
			if err := verify.WriteState(o.StatePath, next); err != nil {
				r.Warnings = append(r.Warnings, "state file not written: "+verify.SafeError(err))
			}
		}
	}
	s := newSnapshot(r, now, graceEnd)
	e.meter(s)
	old := e.snap.Swap(s)
	e.log(why, old, s)
}

// capGrace applies the operator's cap to a grace result (blocking it once the cap has
// passed since the last valid observation) and returns when grace ends.
func (e *Enforcer) capGrace(r *verify.Result, prev *verify.State, now time.Time) time.Time {
	if r.Status != verify.StatusGrace || prev == nil {
		return time.Time{}
	}
	end := prev.LastValidAt.Add(prev.LastValidGrace)
	if c := e.o.GraceOnValidationError; c > 0 && prev.LastValidAt.Add(c).Before(end) {
		end = prev.LastValidAt.Add(c)
	}
	for _, t := range []time.Time{prev.LastValidExpiresAt, licenseExpiry(r)} {
		if !t.IsZero() && t.Before(end) {
			end = t
		}
	}
	if !now.Before(end) {
		r.Status, r.GraceActive = verify.StatusBlocked, false
		r.Features, r.Limits = []string{}, map[string]int64{}
		r.Warnings = append(r.Warnings, fmt.Sprintf("grace ended: the operator's grace_period_on_validation_error (%s) has passed since the license was last observed valid", e.o.GraceOnValidationError))
		return time.Time{}
	}
	return end
}

func licenseExpiry(r *verify.Result) time.Time {
	if r.License == nil {
		return time.Time{}
	}
	return r.License.ExpiresAt
}

func newSnapshot(r *verify.Result, now, graceEnd time.Time) *snapshot {
	s := &snapshot{serving: r.OK(), license: r.License}
	st := Status{State: State(r.Status), Reason: Reason(r.Reason), LicenseID: r.LicenseID, CustomerID: r.CustomerID,
		Product: r.Product, SKU: r.SKU, KeyID: r.KeyID, GraceActive: r.GraceActive, GraceEndsAt: graceEnd,
		BundleSequence: r.BundleSequence, BundleIssuedAt: r.BundleIssuedAt, CheckedAt: now,
		Detail: r.Detail, Warnings: slices.Clone(r.Warnings)}
	if l := r.License; l != nil {
		st.Plan, st.NotBefore, st.ExpiresAt = l.Plan, l.NotBefore, l.ExpiresAt
	}
	if r.LeaseExpiresAt != nil {
		st.LeaseExpiresAt, _ = time.Parse(time.RFC3339, *r.LeaseExpiresAt)
	}
	if s.serving {
		// Only a serving verdict carries features and limits: blocked gates nothing in.
		st.Features, st.Limits = slices.Clone(r.Features), r.Limits
		s.features = make(map[string]bool, len(r.Features))
		for _, f := range r.Features {
			s.features[f] = true
		}
	} else {
		st.Features, st.Limits = []string{}, map[string]int64{}
	}
	s.status = st
	// The verdict changes by itself at the first of these: check again then.
	for _, t := range []time.Time{st.ExpiresAt, st.LeaseExpiresAt, graceEnd} {
		if !t.IsZero() && t.After(now) && (s.deadline.IsZero() || t.Before(s.deadline)) {
			s.deadline = t
		}
	}
	if st.Reason == ReasonNotYetValid && st.NotBefore.After(now) {
		s.deadline = st.NotBefore
	}
	return s
}

// meter tells the usage recorder which license is served, before the verdict is
// stored, so that requests that see a new license count against it.
func (e *Enforcer) meter(s *snapshot) {
	if e.o.Usage == nil || !s.serving || s.license == nil || s.license.LicenseID == e.metered {
		return
	}
	if err := e.o.Usage.SetLicense(usage.LicenseOf(s.license)); err != nil {
		e.o.Logger.Error("license: usage recorder not switched to the license", "license_id", s.license.LicenseID, "err", err)
		return
	}
	e.metered = s.license.LicenseID
}

func (e *Enforcer) log(why string, old, s *snapshot) {
	st := s.status
	if old != nil && old.status.State == st.State && old.status.Reason == st.Reason && old.status.LicenseID == st.LicenseID {
		return
	}
	level := slog.LevelInfo
	if !s.serving {
		level = slog.LevelError
	} else if st.GraceActive {
		level = slog.LevelWarn
	}
	e.o.Logger.Log(context.Background(), level, "license checked", "trigger", why, "status", st.State, "reason", st.Reason, "license_id", st.LicenseID,
		"customer_id", st.CustomerID, "sku", st.SKU, "key_id", st.KeyID, "expires_at", st.ExpiresAt, "grace_active", st.GraceActive,
		"detail", st.Detail)
}

// Allow reports whether feature may be used now: the license serves (valid or grace)
// and lists it. One atomic load and a map lookup; no lock, no I/O.
func (e *Enforcer) Allow(feature string) bool {
	s := e.snap.Load()
	return s.serving && s.features[feature]
}

// Limit returns the licensed value of a limit and whether there is one (absent in
// the license: unlimited, false). While the license does not serve, every limit is
// 0 and limited, so a caller that checks only limits stops too.
func (e *Enforcer) Limit(name string) (value int64, limited bool) {
	s := e.snap.Load()
	if !s.serving {
		return 0, true
	}
	v, ok := s.status.Limits[name]
	return v, ok
}

// Serving reports whether requests may be served (valid or grace).
func (e *Enforcer) Serving() bool { return e.snap.Load().serving }

// Status returns the verdict with the safe fields, its day count as of now. The lists
// are the caller's own.
func (e *Enforcer) Status() Status {
	st := e.snap.Load().status.clone()
	if !st.ExpiresAt.IsZero() {
		st.DaysUntilExpiry = verify.DaysUntil(e.now(), st.ExpiresAt)
	}
	return st
}

// License returns the license the verdict serves (in grace: the kept one), or nil.
func (e *Enforcer) License() *verify.License { return e.snap.Load().license }
