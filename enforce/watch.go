package enforce

import (
	"context"
	"time"
)

// Run keeps the verdict current until ctx is done: it checks again every
// RecheckInterval, when a deadline passes (the license's or lease's expiry, the end of
// grace, a not_before), on SIGHUP (unless NoSIGHUP), and when a file source changes.
// It returns nil when ctx is done.
//
// Files are watched by polling their stat every WatchInterval, not with inotify: a
// poll sees a file replaced by rename (verifier install, a Kubernetes secret's
// symlink swap), a deleted one, and one on a network filesystem alike, where an
// inotify watch on the file is lost at the first rename; and a few stats a second
// cost nothing next to a check. A change is checked at once, so a writer that is not
// atomic may be seen half-written (license-invalid, which grace covers) until its
// next write, which is checked in turn: install with `verifier install`.
func (e *Enforcer) Run(ctx context.Context) error {
	poll := time.NewTicker(e.o.WatchInterval)
	defer poll.Stop()
	timer := time.NewTimer(e.untilNext())
	defer timer.Stop()
	for {
		why := ""
		select {
		case <-ctx.Done():
			return nil
		case <-e.hup: // nil with NoSIGHUP: never
			why = "sighup"
		case <-poll.C:
			// Against what the last check saw, not what Run saw when it started: a
			// file replaced between New and Run is a change too.
			if !sameStamps(e.lastSeen(), e.stamps()) {
				why = "file changed"
			}
		case <-timer.C:
			why = "recheck"
		}
		if why == "" {
			continue
		}
		if why == "sighup" {
			e.Reload()
		} else {
			e.check(why)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(e.untilNext())
	}
}

// untilNext is the time to the next check: the recheck interval, or sooner a
// deadline (a second after it, so the check sees it passed).
func (e *Enforcer) untilNext() time.Duration {
	d := e.o.RecheckInterval
	if dl := e.snap.Load().deadline; !dl.IsZero() {
		if until := dl.Sub(e.now()) + time.Second; until < d {
			d = max(until, time.Millisecond)
		}
	}
	return d
}

func (e *Enforcer) lastSeen() []stamp {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen
}

func (e *Enforcer) stamps() []stamp {
	var out []stamp
	for _, s := range []Source{e.o.License, e.o.Bundle, e.o.Lease} {
		if st, ok := s.stamp(); ok {
			out = append(out, st)
		}
	}
	return out
}

func sameStamps(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].same(b[i]) {
			return false
		}
	}
	return true
}
