package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// issuerBin is the real `issuer` binary, built once per test binary (without the
// race detector: it is the program under test, not the test).
var issuerBin struct {
	once sync.Once
	path string
	out  []byte
	err  error
}

func buildIssuer(t testing.TB) string {
	t.Helper()
	issuerBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "issuer-bin-")
		if err != nil {
			issuerBin.err = err
			return
		}
		issuerBin.path = filepath.Join(dir, "issuer")
		issuerBin.out, issuerBin.err = exec.Command("go", "build", "-o", issuerBin.path, ".").CombinedOutput()
	})
	if issuerBin.err != nil {
		t.Fatalf("build issuer: %v\n%s", issuerBin.err, issuerBin.out)
	}
	return issuerBin.path
}

// syncBuffer is a bytes.Buffer a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveProc is a running `issuer serve`: the real binary, over the test's database
// and keys.
type serveProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	done   chan struct{}
	err    error // cmd.Wait's, once done is closed
}

// startServe runs `issuer serve` on a free loopback port with the CLI's database,
// data folder and KEK, and the YAML config given; it returns once /readyz answers
// 200. The process is killed at the end of the test if it is still running.
func (c *cli) startServe(t *testing.T, config string, env ...string) *serveProc {
	t.Helper()
	bin := buildIssuer(t)
	cfg := filepath.Join(t.TempDir(), "issuer.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p := &serveProc{url: "http://" + addr, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "ISSUER_CONFIG=" + cfg, "ISSUER_ADDR=" + addr,
		"DATABASE_URL=" + c.env["DATABASE_URL"], "ISSUER_DATA_DIR=" + c.env["ISSUER_DATA_DIR"], "METRUM_KEK=" + c.env["METRUM_KEK"],
		"ISSUER_LEASE_RENEW_URL=" + c.env["ISSUER_LEASE_RENEW_URL"]}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("issuer serve exited before it was ready: %v\n%s", p.err, p.stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("issuer serve not ready after 30s:\n%s", p.stderr)
		}
	}
}

// wait waits for the process to exit, failing the test after timeout.
func (p *serveProc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("issuer serve still running %s later:\n%s", timeout, p.stderr)
		return nil
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
