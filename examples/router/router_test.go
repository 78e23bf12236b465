package main_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

var routerBin, verifierBin string

// TestMain builds the router and the verifier once: the tests run them as processes,
// since what they test (SIGHUP, a replaced file, a shutdown's last report) is about
// processes.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "router-test-")
	if err != nil {
		panic(err)
	}
	routerBin, verifierBin = filepath.Join(dir, "router"), filepath.Join(dir, "verifier")
	for bin, pkg := range map[string]string{routerBin: ".", verifierBin: "../../cmd/verifier"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	product = "genai-smart-router"
	licA    = "lic_01HZY3QK8Y0000000000000001"
	licB    = "lic_01HZY3QK8Y0000000000000002"
	licX    = "lic_01HZY3QK8Y0000000000000009"
	cust    = "cus_01HZY3QK8Y0000000000000003"
	admin   = "admin-secret-1"
)

// kit signs licenses and bundles with keys made now and writes them where the router
// reads them.
type kit struct {
	t        *testing.T
	dir      string
	lic, rev *signing.FileKey
	keyset   string
	now      time.Time
}

func newKit(t *testing.T) *kit {
	k := &kit{t: t, dir: t.TempDir(), now: time.Now().UTC().Truncate(time.Second)}
	var err error
	if k.lic, err = signing.GenerateKey(verify.AlgEdDSA, []verify.Purpose{verify.PurposeLicense}); err != nil {
		t.Fatal(err)
	}
	if k.rev, err = signing.GenerateKey(verify.AlgEdDSA, []verify.Purpose{verify.PurposeRevocation}); err != nil {
		t.Fatal(err)
	}
	var jwks []signing.PublicJWK
	for _, key := range []*signing.FileKey{k.lic, k.rev} {
		j, err := signing.JWKOf(key.Public(), key.Algorithm(), key.Purposes(), product)
		if err != nil {
			t.Fatal(err)
		}
		jwks = append(jwks, j)
	}
	ks, _ := signing.KeySetJSON(jwks)
	k.keyset = k.put("keyset.json", ks)
	return k
}

func (k *kit) path(name string) string { return filepath.Join(k.dir, name) }

// put writes atomically, as verifier install does.
func (k *kit) put(name string, data []byte) string {
	k.t.Helper()
	if err := verify.WriteFileAtomic(k.path(name), data, 0o644); err != nil {
		k.t.Fatal(err)
	}
	return k.path(name)
}

func (k *kit) sign(key *signing.FileKey, format string, v any) []byte {
	k.t.Helper()
	raw, _ := json.Marshal(v, json.Deterministic(true))
	b, err := signing.SignEnvelope(key, format, raw)
	if err != nil {
		k.t.Fatal(err)
	}
	return b
}

func (k *kit) license(id, supersedes string, limits map[string]int64) []byte {
	return k.sign(k.lic, verify.FormatLicense, verify.LicensePayload{Schema: 1, LicenseID: id, Product: product, Issuer: "metrum",
		CustomerID: cust, CustomerName: "Acme", SKU: "credit-pack-5m", TemplateVersion: 1,
		IssuedAt: verify.FormatTime(k.now.Add(-time.Hour)), NotBefore: verify.FormatTime(k.now.Add(-time.Hour)),
		ExpiresAt: verify.FormatTime(k.now.Add(90 * 24 * time.Hour)), Features: []string{"routing", "usage_export"},
		Limits: limits, GracePeriodSeconds: 86400, Supersedes: supersedes})
}

// bundle lists one license as revoked; two bundles of one sequence length and one
// listed ID length are the same size.
func (k *kit) bundle(seq int64, revoked string) []byte {
	return k.sign(k.rev, verify.FormatRevocation, verify.BundlePayload{Schema: verify.BundleSchema, Issuer: "metrum", Product: product,
		Sequence: seq, IssuedAt: verify.FormatTime(k.now.Add(-time.Hour)), ExpiresAt: verify.FormatTime(k.now.Add(7 * 24 * time.Hour)),
		Entries: []verify.BundleEntry{{LicenseID: revoked, Status: "revoked", Reason: "refund", EffectiveAt: verify.FormatTime(k.now.Add(-time.Minute))}}})
}

// proc is a running router.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan error
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

type lockedWriter struct{ p *proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

// start runs the router and waits (with a deadline) for it to say where it listens.
func start(t *testing.T, k *kit, args ...string) *proc {
	t.Helper()
	args = append([]string{"--addr", "127.0.0.1:0", "--product", product, "--keyset", k.keyset, "--admin-token", admin}, args...)
	p := &proc{t: t, cmd: exec.Command(routerBin, args...), exited: make(chan error, 1)}
	p.cmd.Stderr = lockedWriter{p}
	out, _ := p.cmd.StdoutPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "router: listening on "); ok {
				lines <- addr
			}
		}
	}()
	go func() { p.exited <- p.cmd.Wait() }()
	select {
	case p.base = <-lines:
	case err := <-p.exited:
		t.Fatalf("router exited: %v\n%s", err, p.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("router did not start\n%s", p.logs())
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("router log:\n%s", p.logs())
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			p.t.Fatalf("router exit: %v\n%s", err, p.logs())
		}
	case <-time.After(30 * time.Second):
		p.t.Fatal("router did not stop")
	}
}

func (p *proc) do(method, path, token, body string) (int, map[string]any, http.Header) {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.base+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(data, &m, json.RejectUnknownMembers(false))
	return resp.StatusCode, m, resp.Header
}

func (p *proc) status() map[string]any {
	code, m, _ := p.do("GET", "/admin/license/status", admin, "")
	if code != 200 {
		p.t.Fatalf("status: %d", code)
	}
	return m
}

func (p *proc) chat(tokens int) (int, map[string]any) {
	code, m, _ := p.do("POST", "/v1/chat", "", fmt.Sprintf(`{"tokens": %d}`, tokens))
	return code, m
}

func (p *proc) metrics() string {
	req, _ := http.NewRequest("GET", p.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// eventually waits for a condition with a deadline; never a fixed sleep.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
