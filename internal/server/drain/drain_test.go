package drain

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// start serves h on a real loopback listener through a drain Server; cancel is the
// SIGTERM.
func start(t *testing.T, h http.Handler, o Options) (url string, d *Server, cancel context.CancelFunc, done chan Report) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d = New(&http.Server{Handler: h}, o)
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan Report, 1)
	go func() {
		rep, err := d.Serve(ctx, l)
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		done <- rep
	}()
	return "http://" + l.Addr().String(), d, cancel, done
}

func waitReport(t *testing.T, done chan Report) Report {
	t.Helper()
	select {
	case rep := <-done:
		return rep
	case <-time.After(20 * time.Second):
		t.Fatal("the drain did not end")
		return Report{}
	}
}

// TestDrainCutsOnlyWhatOutlivesTheTimeout: a request in flight that finishes within
// the timeout gets its whole answer, with Connection: close; one that would take
// longer is cut at the timeout and counted; Serve returns nil either way.
func TestDrainCutsOnlyWhatOutlivesTheTimeout(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		if r.URL.Path == "/slow" {
			<-r.Context().Done() // until cut
			return
		}
		<-release
		io.WriteString(w, "done")
	})
	url, d, cancel, done := start(t, h, Options{Delay: 100 * time.Millisecond, Timeout: 1500 * time.Millisecond})
	type answer struct {
		resp *http.Response
		body string
		err  error
	}
	get := func(path string) chan answer {
		ch := make(chan answer, 1)
		go func() {
			resp, err := http.Get(url + path)
			if err != nil {
				ch <- answer{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			ch <- answer{resp, string(b), err}
		}()
		return ch
	}
	finishing, slow := get("/finishing"), get("/slow")
	for started.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	for !d.closing.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	a := <-finishing
	if a.err != nil || a.body != "done" || !a.resp.Close {
		t.Fatalf("the request that finished within the bound: %+v", a)
	}
	if a := <-slow; a.err == nil {
		t.Fatalf("the request that outlived the timeout was answered: %+v", a)
	}
	rep := waitReport(t, done)
	if rep.Forced != 1 || rep.Closed != 1 || rep.Served != 0 {
		t.Fatalf("report %+v, want one connection forced closed and one closed after its response", rep)
	}
}

// TestDrainClosesQuietIdleConnections: a kept-alive connection nobody uses is closed
// once it has been quiet for IdleQuiet, without waiting for the timeout; /readyz's
// Draining is true from the cancel on, while requests are still served.
func TestDrainClosesQuietIdleConnections(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	url, d, cancel, done := start(t, h, Options{Delay: 300 * time.Millisecond, Timeout: 10 * time.Second, IdleQuiet: 200 * time.Millisecond})
	cl := &http.Client{Transport: &http.Transport{}}
	resp, err := cl.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cancel()
	for !d.Draining() {
		time.Sleep(5 * time.Millisecond)
	}
	// Still served during the delay, on the kept-alive connection.
	if resp, err = cl.Get(url + "/"); err != nil || resp.Close {
		t.Fatalf("during the delay: %v %+v", err, resp)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	rep := waitReport(t, done)
	if rep.IdleClosed != 1 || rep.Forced != 0 || rep.Served != 1 {
		t.Fatalf("report %+v, want the idle connection closed and nothing forced", rep)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the drain waited %s for an idle connection (its timeout is 10s, IdleQuiet 200ms)", took)
	}
}
