package server_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/metrum/licensing/usage"
)

// TestRouterUploadsToIssuer: the reference router (examples/router, built and run as
// a process) serving a license the real issuer issued, with the lease the issuer
// granted, uploads its usage with --report-url and --lease-token to the real
// POST /v1/usage: what it counted is what the issuer holds, and nothing is left
// pending on the host.
func TestRouterUploadsToIssuer(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	dir := t.TempDir()
	bin := filepath.Join(dir, "router")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/metrum/licensing/examples/router").CombinedOutput(); err != nil {
		t.Fatalf("build the router: %v\n%s", err, out)
	}
	keyset, err := e.svc.PublicKeySet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The pilot needs a lease: the host takes one with the lease token.
	r := e.postLease(t, a.leaseTok, a.pilot.ID, "router-e2e")
	files := map[string][]byte{"keyset.json": keyset, "license.json": a.pilot.File, "lease.json": r.body}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	usageDir := filepath.Join(dir, "usage")
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--product", "genai-smart-router", "--keyset", filepath.Join(dir, "keyset.json"),
		"--license", filepath.Join(dir, "license.json"), "--lease", filepath.Join(dir, "lease.json"), "--instance-fingerprint", "router-e2e",
		"--usage-dir", usageDir, "--report-url", e.ts.URL+"/v1/usage", "--lease-token", a.leaseTok)
	var logs strings.Builder
	var logMu sync.Mutex
	cmd.Stderr = lockedWriter{&logMu, &logs}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	base := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "router: listening on "); ok {
				base <- addr
			}
		}
	}()
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			logMu.Lock()
			t.Logf("router log:\n%s", logs.String())
			logMu.Unlock()
		}
	})
	var url string
	select {
	case url = <-base:
	case err := <-exited:
		t.Fatalf("router exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("router did not start")
	}
	for _, tokens := range []string{"33", "9"} {
		resp, err := http.Post(url+"/v1/chat", "application/json", strings.NewReader(`{"tokens":`+tokens+`}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("chat: %d (the router does not serve the license)", resp.StatusCode)
		}
	}
	// SIGTERM: the router closes its period and sends the report before it exits.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("router exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("router did not stop")
	}
	if n := e.tokensOf(t, a.pilot.ID); n != 42 {
		t.Fatalf("the issuer holds %d tokens of the pilot, the router counted 42", n)
	}
	o, err := e.usage.LicenseUsage(ctx, a.pilot.ID, 0, e.maker)
	if err != nil || len(o.Chains) != 1 || o.Chains[0].Reporter != "metrum-reference-router/1" || o.Totals.Requests != 2 {
		t.Fatalf("usage %+v, %v", o, err)
	}
	if bodies, n, err := usage.Export(usageDir, 0); err != nil || n != 0 || len(bodies) != 0 {
		t.Fatalf("%d reports still pending on the host (%v)", n, err)
	}
}

// postLease asks POST /v1/leases for a lease of a host.
func (e *portalEnv) postLease(t *testing.T, token, licenseID, fp string) leaseResp {
	t.Helper()
	req, _ := http.NewRequest("POST", e.ts.URL+"/v1/leases", strings.NewReader(`{"license_id":"`+licenseID+`","instance_fingerprint":"`+fp+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	r := do(t, req)
	if r.status != 200 {
		t.Fatalf("lease: %d %s", r.status, r.body)
	}
	return r
}
