package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// issueLeaseLicense issues a lease-required pilot with max_instances seats through
// the CLI and returns its ID and lease token.
func (c *cli) issueLeaseLicense(t *testing.T, seats int) (string, string) {
	t.Helper()
	var cust, ent struct {
		ID string `json:"id"`
	}
	c.json(&cust, "customer", "create", "--name", "Fleet Co")
	c.json(&ent, "entitlement", "create", "--customer", cust.ID, "--template", "pilot-30d", "--limit", fmt.Sprintf("max_instances=%d", seats))
	c.run("entitlement", "approve", "--id", ent.ID, "--as", "checker@m.test")
	var lic struct {
		ID         string `json:"id"`
		LeaseToken string `json:"lease_token"`
	}
	c.json(&lic, "license", "issue", "--entitlement", ent.ID)
	if lic.LeaseToken == "" {
		t.Fatalf("no lease token for %s", lic.ID)
	}
	return lic.ID, lic.LeaseToken
}

// TestServeDrainsOnSIGTERM runs the real `issuer serve`, drives lease renewals from
// router hosts on kept-alive connections, and sends it SIGTERM: /readyz answers 503
// at once while the renewals go on being answered for the drain delay; then each
// connection ends after a response that says `Connection: close`, and a host's next
// attempt finds the listener closed (refused: nothing sent, safe to retry
// elsewhere). No POST gets EOF or a reset, and the process exits 0 saying it cut
// nothing.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	c := newCLI(t)
	c.bootstrap("license", "revocation", "lease")
	lic, token := c.issueLeaseLicense(t, 64)
	p := c.startServe(t, "server:\n  drain_delay: 1500ms\n  shutdown_timeout: 5s\nleases:\n  rate_per_license: 0\n")

	const hosts = 8
	var (
		mu         sync.Mutex
		bad        []string // anything but a 200 or a refused dial
		ok         [hosts]atomic.Int64
		sawClose   atomic.Int64 // responses that said Connection: close
		after503   atomic.Int64 // renewals answered 200 after /readyz first said 503
		first503   atomic.Bool
		readyAfter atomic.Int64 // /readyz 200s after its first 503
		wg         sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		bad = append(bad, fmt.Sprintf(format, args...))
	}
	for h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One kept-alive connection per host, as a router holds it.
			cl := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
			body, _ := json.Marshal(map[string]string{"license_id": lic, "instance_fingerprint": fmt.Sprintf("drain-host-%d", h)})
			for {
				req, _ := http.NewRequest("POST", p.url+"/v1/leases", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := cl.Do(req)
				if err != nil {
					if !errors.Is(err, syscall.ECONNREFUSED) {
						fail("host %d: POST failed after %d renewals: %v", h, ok[h].Load(), err)
					}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					fail("host %d: %d %v %.200s", h, resp.StatusCode, err, b)
					return
				}
				ok[h].Add(1)
				if resp.Close {
					sawClose.Add(1)
				}
				if first503.Load() {
					after503.Add(1)
				}
			}
		}()
	}
	waitFor(t, 20*time.Second, "every host renewing", func() bool {
		for h := range hosts {
			if ok[h].Load() < 3 {
				return false
			}
		}
		return true
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		cl := &http.Client{Transport: &http.Transport{}}
		for {
			resp, err := cl.Get(p.url + "/readyz")
			if err != nil {
				return // the listener closed
			}
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusServiceUnavailable:
				first503.Store(true)
			case first503.Load():
				readyAfter.Add(1)
			}
			time.Sleep(20 * time.Millisecond) // a load balancer's probe interval, not a wait for a condition
		}
	}()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := p.wait(t, 30*time.Second)
	wg.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) || err != nil {
		t.Errorf("issuer serve exited with %v after SIGTERM, want 0\n%s", err, p.stderr)
	}
	for _, b := range bad {
		t.Error(b)
	}
	if !first503.Load() || readyAfter.Load() > 0 {
		t.Errorf("/readyz: 503 seen %v, 200 after it %d times", first503.Load(), readyAfter.Load())
	}
	if after503.Load() == 0 {
		t.Error("no renewal was answered after /readyz went 503: serving did not go on during the drain delay")
	}
	if sawClose.Load() == 0 {
		t.Error("no response said Connection: close")
	}
	log := p.stderr.String()
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "msg=drain") {
			t.Log(l)
		}
	}
	if !strings.Contains(log, "msg=drained") || !strings.Contains(log, "forced_closed=0") {
		t.Errorf("the drain's report is missing or cut connections:\n%s", log)
	}
	t.Logf("renewals per host %v; after /readyz 503: %d; Connection: close answers: %d", func() (n []int64) {
		for h := range hosts {
			n = append(n, ok[h].Load())
		}
		return
	}(), after503.Load(), sawClose.Load())
}
