// Package drain runs an http.Server until its context ends (SIGTERM), then takes it
// down without losing what clients sent (docs/operations.md, "Drain"):
//
//  1. Readiness first: Draining reports true at once (/readyz answers 503) while
//     everything is served as before for Options.Delay, so the load balancer takes
//     the replica out of rotation before anything closes.
//  2. Then the listener closes (a new connection is refused, which a client may
//     retry anywhere: nothing was sent) and every response carries `Connection:
//     close`, so each kept-alive connection ends right after the response to its
//     next request, when the client knows not to reuse it. A connection that stays
//     idle for Options.IdleQuiet is closed: its client is not in the middle of
//     sending on it.
//  3. What is still open after Options.Timeout is cut, and counted in the report.
//
// Why not http.Server.Shutdown, or SetKeepAlivesEnabled(false), at step 2: both
// close idle connections at once, and a connection is "idle" between sending one
// response and reading the next request, which on a busy kept-alive connection is
// exactly when the client writes its next request. That request then meets a closed
// socket and gets EOF or a reset, and clients don't retry a POST. Closing only
// connections that have been idle for a while, and ending busy ones with `Connection:
// close`, leaves no such window for a client that keeps its connection busy.
package drain

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a drain.
type Options struct {
	// Delay: how long /readyz answers 503 while serving goes on (0: none).
	Delay time.Duration
	// Timeout bounds the rest: connections closing, requests in flight finishing.
	Timeout time.Duration
	// IdleQuiet: a connection idle this long during the drain is closed (default 1s).
	IdleQuiet time.Duration
	// Log gets the drain's start and its report (nil: nothing is logged).
	Log *slog.Logger
}

// Server drains one http.Server.
type Server struct {
	hs       *http.Server
	o        Options
	draining atomic.Bool
	closing  atomic.Bool
	served   atomic.Int64 // requests started after the drain began

	mu     sync.Mutex
	conns  map[net.Conn]*connInfo
	closed int // connections that ended during step 2 (after Connection: close, or by the client)
}

type connInfo struct {
	state http.ConnState
	since time.Time
}

// Report says how a drain went.
type Report struct {
	Served     int64 // requests that arrived after SIGTERM and were served
	Closed     int   // connections that ended after their last response
	IdleClosed int   // idle connections closed (quiet for IdleQuiet, or at the timeout)
	Forced     int   // connections closed at the timeout with a request in flight: requests cut
	Took       time.Duration
}

// New wraps hs: its handler (to mark responses `Connection: close` while closing)
// and its ConnState hook (to know which connections are idle, and since when).
func New(hs *http.Server, o Options) *Server {
	if o.IdleQuiet <= 0 {
		o.IdleQuiet = time.Second
	}
	s := &Server{hs: hs, o: o, conns: map[net.Conn]*connInfo{}}
	next := hs.Handler
	hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			s.served.Add(1)
		}
		next.ServeHTTP(&closeWriter{ResponseWriter: w, s: s}, r)
	})
	prev := hs.ConnState
	hs.ConnState = func(c net.Conn, st http.ConnState) {
		s.track(c, st)
		if prev != nil {
			prev(c, st)
		}
	}
	return s
}

// Draining reports whether the drain has begun (readiness answers 503).
func (s *Server) Draining() bool { return s.draining.Load() }

func (s *Server) track(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		if _, ok := s.conns[c]; ok && s.closing.Load() {
			s.closed++
		}
		delete(s.conns, c)
	default:
		s.conns[c] = &connInfo{state: st, since: time.Now()}
	}
}

// Serve serves l until ctx ends, then drains. It returns nil after a drain, however
// much it had to cut (the report says), and the server's error if serving failed.
func (s *Server) Serve(ctx context.Context, l net.Listener) (Report, error) {
	errc := make(chan error, 1)
	go func() { errc <- s.hs.Serve(l) }()
	select {
	case err := <-errc:
		return Report{}, err
	case <-ctx.Done():
	}
	start := time.Now()
	s.draining.Store(true)
	s.logf("draining: /readyz answers 503; serving on", "drain_delay", s.o.Delay.String(), "shutdown_timeout", s.o.Timeout.String())
	if s.o.Delay > 0 {
		t := time.NewTimer(s.o.Delay)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return Report{}, err
		}
	}
	// The listener first, then Connection: close: a client told to close finds no
	// listener when it dials again, and goes elsewhere with nothing sent.
	_ = l.Close()
	s.closing.Store(true)
	s.logf("draining: listener closed; connections close after their next response")
	rep := s.closeConnections(time.Now().Add(s.o.Timeout))
	_ = s.hs.Close() // every connection is gone or cut; this ends Serve and its bookkeeping
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		s.logf("draining: serve ended", "err", err)
	}
	rep.Served, rep.Took = s.served.Load(), time.Since(start)
	s.logf("drained", "served_after_sigterm", rep.Served, "closed_after_response", rep.Closed,
		"idle_closed", rep.IdleClosed, "forced_closed", rep.Forced, "took", rep.Took.Round(time.Millisecond).String())
	return rep, nil
}

// closeConnections waits for the connections to end, closing those idle for
// IdleQuiet, until none is left or the deadline, when the rest are closed.
func (s *Server) closeConnections(deadline time.Time) Report {
	var rep Report
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		now := time.Now()
		last := !now.Before(deadline)
		s.mu.Lock()
		for c, ci := range s.conns {
			idle := ci.state == http.StateIdle || ci.state == http.StateNew
			switch {
			case idle && (last || now.Sub(ci.since) >= s.o.IdleQuiet):
				rep.IdleClosed++
			case last:
				rep.Forced++
			default:
				continue
			}
			_ = c.Close()
			delete(s.conns, c)
		}
		left := len(s.conns)
		rep.Closed = s.closed
		s.mu.Unlock()
		if left == 0 || last {
			return rep
		}
		<-tick.C
	}
}

// closeWriter marks a response `Connection: close` when its header is written during
// the closing step, also for a request that arrived before it (net/http then closes
// the connection after the response).
type closeWriter struct {
	http.ResponseWriter
	s       *Server
	written bool
}

func (w *closeWriter) mark() {
	if !w.written {
		w.written = true
		if w.s.closing.Load() {
			w.Header().Set("Connection", "close")
		}
	}
}

// WriteHeader marks the response, then writes its header.
func (w *closeWriter) WriteHeader(code int) { w.mark(); w.ResponseWriter.WriteHeader(code) }

// Write marks the response (when nothing was written yet), then writes.
func (w *closeWriter) Write(b []byte) (int, error) { w.mark(); return w.ResponseWriter.Write(b) }

// FlushError marks the response, then flushes it (http.ResponseController).
func (w *closeWriter) FlushError() error {
	w.mark()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the connection's own writer (deadlines,
// hijacking).
func (w *closeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) logf(msg string, args ...any) {
	if s.o.Log != nil {
		s.o.Log.Info(msg, args...)
	}
}
