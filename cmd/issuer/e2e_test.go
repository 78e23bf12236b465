package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/leases"
	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/internal/storage"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type cli struct {
	t      testing.TB
	env    map[string]string
	url    string // the running issuer's
	issuer *app   // the issuer process's side (keys and database)
	ts     *httptest.Server
}

func newCLI(t *testing.T) *cli { return newCLIFor(t) }

// newCLIFor is newCLI for a test or a benchmark.
func newCLIFor(t testing.TB) *cli {
	dir := t.TempDir()
	return &cli{t: t, env: map[string]string{
		"DATABASE_URL": pgtest.NewDatabase(t), "ISSUER_DATA_DIR": dir,
		"METRUM_KEK": randomKEK(t), // serve refuses a KEK that can't be random

		"ISSUER_STAFF_PASSWORD":  "a long enough password",
		"ISSUER_LEASE_RENEW_URL": "https://licensing.metrum.test/v1/leases",
	}}
}

// randomKEK is a fresh key-encryption key (base64 of 32 random bytes).
func randomKEK(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// bootstrap migrates, creates root@m.test (admin, the first account, made by the
// operator's bootstrap), starts the issuer (the real HTTP handler over the same
// database and keys), and through its staff API creates maker@m.test (issuer) and
// checker@m.test (approver) and an active router key for each purpose given. Each
// account's token is written where `--as` / ISSUER_AS find dev tokens, and root acts.
func (c *cli) bootstrap(purposes ...string) {
	c.t.Helper()
	c.run("migrate")
	c.run("staff", "create", "--email", "root@m.test", "--role", "admin", "--bootstrap")
	c.startIssuer()
	c.devToken("root@m.test")
	c.env["ISSUER_AS"] = "root@m.test"
	c.run("staff", "create", "--email", "maker@m.test", "--role", "issuer")
	c.run("staff", "create", "--email", "checker@m.test", "--role", "approver")
	c.devToken("maker@m.test")
	c.devToken("checker@m.test")
	for _, p := range purposes {
		c.run("keys", "generate", "--product", "genai-smart-router", "--purpose", p, "--activate")
	}
}

// startIssuer runs the issuer as `issuer serve` would, on an httptest server: it alone
// opens the database and the keys.
func (c *cli) startIssuer() {
	c.t.Helper()
	a := &app{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return c.env[k] }}
	c.t.Cleanup(a.close)
	svc, err := a.open(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	ls := leases.New(a.store, svc, leases.Options{Products: []string{"genai-smart-router", "coresdk"}})
	lctx, stop := context.WithCancel(context.Background())
	go ls.Run(lctx)
	c.t.Cleanup(stop)
	srv := &server.Server{Svc: svc, Leases: ls, Portal: a.portalService(true), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ts := httptest.NewServer(srv.Handler())
	c.t.Cleanup(ts.Close)
	c.url, c.issuer, c.ts = ts.URL, a, ts
}

// devToken gives an account a token where --as finds it (as `issuer dev` does).
func (c *cli) devToken(email string) {
	c.t.Helper()
	if err := c.issuer.writeDevTokens(context.Background(), c.url, email); err != nil {
		c.t.Fatal(err)
	}
}

// run runs one issuer command in-process and returns stdout; it fails the test on error.
func (c *cli) run(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.try(args...)
	if err != nil {
		c.t.Fatalf("issuer %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func (c *cli) try(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut, func(k string) string { return c.env[k] })
	return out.String(), errOut.String(), err
}

func (c *cli) json(v any, args ...string) {
	c.t.Helper()
	if err := json.Unmarshal([]byte(c.run(append(args, "--json")...)), v); err != nil {
		c.t.Fatalf("issuer %v: output is not JSON: %v", args, err)
	}
}

// buildVerifier compiles the real verifier binary once per test.
func buildVerifier(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "verifier")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/metrum/licensing/cmd/verifier").CombinedOutput()
	if err != nil {
		t.Fatalf("build verifier: %v\n%s", err, out)
	}
	return bin
}

func TestCLIRecordToVerifiedFile(t *testing.T) {
	c := newCLI(t)
	dir := c.env["ISSUER_DATA_DIR"]
	c.bootstrap("license")

	var cust struct {
		ID string `json:"id"`
	}
	c.env["ISSUER_AS"] = "maker@m.test"
	c.json(&cust, "customer", "create", "--name", "Hooli")
	var ent struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	c.json(&ent, "entitlement", "create", "--customer", cust.ID, "--template", "enterprise-annual",
		"--limit", "max_instances=3", "--instance-fingerprint", "node-7")
	if ent.State != "draft" {
		t.Fatalf("new entitlement state %q", ent.State)
	}
	if _, errOut, err := c.try("entitlement", "approve", "--id", ent.ID); err == nil || !strings.Contains(describe(err), "approver role") {
		t.Fatalf("self-approval allowed: %v %s", err, errOut)
	}
	c.run("entitlement", "approve", "--id", ent.ID, "--as", "checker@m.test")
	var lic struct {
		ID string `json:"id"`
	}
	c.json(&lic, "license", "issue", "--entitlement", ent.ID)
	file := filepath.Join(dir, "license.json")
	c.run("license", "download", "--id", lic.ID, "--out", file)
	// The delivery is on the customer's record, as staff see it.
	var delivered []map[string]any
	c.json(&delivered, "customer", "downloads", "--id", cust.ID)
	if len(delivered) != 1 || delivered[0]["license_id"] != lic.ID || delivered[0]["what"] != "file" || delivered[0]["actor"] != "maker@m.test" {
		t.Fatalf("customer downloads: %+v", delivered)
	}
	keyset := filepath.Join(dir, "keyset.json")
	c.run("keys", "export-keyset", "--out", keyset)
	var list []struct {
		ID string `json:"id"`
	}
	c.json(&list, "license", "list")
	if len(list) != 1 || list[0].ID != lic.ID {
		t.Fatalf("license list: %+v", list)
	}

	verifier := buildVerifier(t)
	verifyArgs := []string{"verify", "--license", file, "--keyset", keyset, "--product", "genai-smart-router",
		"--instance-fingerprint", "node-7", "--limit", "max_instances=3", "--json"}
	out, err := exec.Command(verifier, verifyArgs...).Output()
	if err != nil {
		t.Fatalf("verifier: %v\n%s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got["status"] != "valid" || got["license_id"] != lic.ID || got["customer_id"] != cust.ID {
		t.Fatalf("verdict: %s", out)
	}

	// Tampered copies that still decode: a byte of the signed payload changed (a limit
	// raised), and a byte of the signature changed. Each is exit 1, license-invalid,
	// and it is the signature check that says so (not base64 or JSON).
	b, _ := os.ReadFile(file)
	var env map[string]string
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(env["payload"])
	if err != nil || !bytes.Contains(payload, []byte(`"max_instances":3`)) {
		t.Fatalf("payload: %v %s", err, payload)
	}
	sig, err := base64.RawURLEncoding.DecodeString(env["signature"])
	if err != nil {
		t.Fatal(err)
	}
	sig[10] ^= 0x01
	for name, edit := range map[string]map[string]string{
		"payload":   {"payload": base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"max_instances":3`), []byte(`"max_instances":9`), 1))},
		"signature": {"signature": base64.RawURLEncoding.EncodeToString(sig)},
	} {
		copied := maps.Clone(env)
		maps.Copy(copied, edit)
		tb, _ := json.Marshal(copied)
		tampered := filepath.Join(dir, "tampered-"+name+".json")
		os.WriteFile(tampered, tb, 0o644)
		cmd := exec.Command(verifier, "verify", "--license", tampered, "--keyset", keyset, "--json")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err = cmd.Output()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !bytes.Contains(out, []byte(`"license-invalid"`)) ||
			!strings.Contains(stderr.String(), "bad signature") {
			t.Fatalf("tampered %s: %v %s %s", name, err, out, stderr.String())
		}
	}
	// Over the licensed limit: exit 1.
	cmd := exec.Command(verifier, "verify", "--license", file, "--keyset", keyset, "--instance-fingerprint", "node-7", "--limit", "max_instances=4", "--json")
	out, _ = cmd.Output()
	if cmd.ProcessState.ExitCode() != 1 || !bytes.Contains(out, []byte(`"license-limit-exceeded"`)) {
		t.Fatalf("limit: %s", out)
	}
	// A usage error: exit 2.
	cmd = exec.Command(verifier, "verify", "--keyset", keyset)
	_ = cmd.Run()
	if cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("usage error exit %d", cmd.ProcessState.ExitCode())
	}
}

func TestCLIErrorsAreClearAndChangeNothing(t *testing.T) {
	c := newCLI(t)
	c.bootstrap()
	var cust struct {
		ID string `json:"id"`
	}
	c.json(&cust, "customer", "create", "--name", "Hooli")
	_, _, err := c.try("entitlement", "create", "--customer", cust.ID, "--template", "eval-72h", "--limit", "max_instances=9")
	if err == nil || !strings.Contains(describe(err), "can't be overridden") {
		t.Fatalf("override not allowed by the template: %v", err)
	}
	var own struct {
		ID string `json:"id"`
	}
	c.json(&own, "entitlement", "create", "--customer", cust.ID, "--template", "enterprise-annual")
	if _, _, err := c.try("entitlement", "approve", "--id", own.ID); err == nil || !strings.Contains(describe(err), "maker-checker") {
		t.Fatalf("an admin approved their own entitlement: %v", err)
	}
	_, _, err = c.try("entitlement", "create", "--customer", cust.ID, "--template", "no-such")
	if err == nil || !strings.Contains(describe(err), "unknown template") {
		t.Fatalf("unknown template: %v", err)
	}
	_, _, err = c.try("license", "issue", "--entitlement", "ent_01HZY3QK8Y0000000000000001")
	if err == nil || !strings.Contains(describe(err), "not found") {
		t.Fatalf("unknown entitlement: %v", err)
	}
	var ents []any
	c.json(&ents, "entitlement", "list")
	if len(ents) != 1 {
		t.Fatalf("failed creates left entitlements: %d, want only the one draft", len(ents))
	}
	if _, _, err := c.try("customer", "create"); err == nil {
		t.Fatal("customer without a name accepted")
	}
	if _, _, err := c.try("license", "issue", "--all-approved", "--out", "x.json"); !errors.Is(err, errUsage) {
		t.Fatalf("--all-approved with --out: %v", err)
	}
	out := c.run("license", "--help")
	if !strings.Contains(out, "issue") {
		t.Fatalf("help: %s", out)
	}
}

// TestCLIKeyRotation walks keys/README.md: a standby key is published, released (the
// exported set carries it), rotated in; licenses signed before and after both verify
// against the set, and the old key can only be retired once it no longer signs.
func TestCLIKeyRotation(t *testing.T) {
	c := newCLI(t)
	dir := c.env["ISSUER_DATA_DIR"]
	c.bootstrap()
	var first, standby struct {
		KID       string   `json:"kid"`
		ActiveFor []string `json:"active_for"`
	}
	c.json(&first, "keys", "generate", "--product", "genai-smart-router", "--purpose", "license", "--activate")
	if len(first.ActiveFor) != 1 {
		t.Fatalf("first key not active: %+v", first)
	}
	issue := func(name string) (string, string) {
		var cust, ent, lic struct {
			ID string `json:"id"`
		}
		c.json(&cust, "customer", "create", "--name", name)
		c.json(&ent, "entitlement", "create", "--customer", cust.ID, "--template", "enterprise-annual")
		c.run("entitlement", "approve", "--id", ent.ID, "--as", "checker@m.test")
		c.json(&lic, "license", "issue", "--entitlement", ent.ID)
		file := filepath.Join(dir, lic.ID+".json")
		c.run("license", "download", "--id", lic.ID, "--out", file)
		return lic.ID, file
	}
	_, oldFile := issue("Before Rotation Inc")

	// Rotating with no standby is refused and changes nothing.
	if _, _, err := c.try("keys", "rotate", "--product", "genai-smart-router", "--purpose", "license"); err == nil || !strings.Contains(describe(err), "no standby key") {
		t.Fatalf("rotate without a standby: %v", err)
	}
	c.json(&standby, "keys", "generate", "--product", "genai-smart-router", "--purpose", "license")
	if len(standby.ActiveFor) != 0 {
		t.Fatalf("a generated key became active without --activate: %+v", standby)
	}
	keyset := filepath.Join(dir, "keyset.json")
	c.run("keys", "export-keyset", "--out", keyset)
	var rot struct {
		KID      string `json:"kid"`
		Previous string `json:"previous"`
	}
	c.json(&rot, "keys", "rotate", "--product", "genai-smart-router", "--purpose", "license")
	if rot.KID != standby.KID || rot.Previous != first.KID {
		t.Fatalf("rotation: %+v, want %s after %s", rot, standby.KID, first.KID)
	}
	_, newFile := issue("After Rotation Inc")

	verifier := buildVerifier(t)
	kidOf := map[string]string{oldFile: first.KID, newFile: standby.KID}
	for file, kid := range kidOf {
		out, err := exec.Command(verifier, "verify", "--license", file, "--keyset", keyset, "--json").Output()
		if err != nil || !bytes.Contains(out, []byte(`"status": "valid"`)) || !bytes.Contains(out, []byte(kid)) {
			t.Fatalf("%s after rotation: %v %s", filepath.Base(file), err, out)
		}
	}
	if _, _, err := c.try("keys", "retire", "--kid", standby.KID, "--reason", "test"); err == nil || !strings.Contains(describe(err), "active signer") {
		t.Fatalf("retired the active signer: %v", err)
	}
	c.run("keys", "retire", "--kid", first.KID, "--reason", "rotated out")
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	c.json(&set, "keys", "export-keyset")
	if len(set.Keys) != 1 || set.Keys[0].Kid != standby.KID {
		t.Fatalf("key set after retiring the old key: %+v", set)
	}
}

// TestCLILifecycle: top-up, a revocation that must be confirmed, a published bundle
// the real verifier enforces, the checklist and summary, batch renewal with progress,
// and an intact audit chain, all through the command line.
func TestCLILifecycle(t *testing.T) {
	c := newCLI(t)
	dir := c.env["ISSUER_DATA_DIR"]
	c.bootstrap("license", "revocation")
	c.env["ISSUER_AS"] = "maker@m.test"
	var cust, ent, lic, up struct {
		ID string `json:"id"`
	}
	c.json(&cust, "customer", "create", "--name", "Hooli")
	c.json(&ent, "entitlement", "create", "--customer", cust.ID, "--template", "enterprise-annual")
	c.run("entitlement", "approve", "--id", ent.ID, "--as", "checker@m.test")
	c.json(&lic, "license", "issue", "--entitlement", ent.ID)

	c.json(&ent, "license", "top-up", "--id", lic.ID, "--template", "credit-pack-5m")
	c.run("entitlement", "approve", "--all-drafts", "--kind", "top-up", "--as", "checker@m.test")
	var issued []map[string]any
	for _, l := range c.ndjson("license", "issue", "--all-approved", "--json") {
		if l["id"] != nil {
			issued = append(issued, l)
		}
	}
	if len(issued) != 1 || issued[0]["supersedes"] != lic.ID {
		t.Fatalf("issued top-ups: %+v", issued)
	}
	up.ID = issued[0]["id"].(string)

	// Revocation asks for the license ID; a wrong answer changes nothing.
	c.env["ISSUER_AS"] = "checker@m.test"
	stdin = strings.NewReader("lic_wrong\n")
	if _, _, err := c.try("license", "revoke", "--id", up.ID, "--reason", "chargeback"); err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Fatalf("unconfirmed revocation: %v", err)
	}
	var shown struct {
		Status string `json:"status"`
	}
	c.json(&shown, "license", "show", "--id", up.ID)
	if shown.Status != "active" {
		t.Fatalf("an unconfirmed revocation changed the status to %s", shown.Status)
	}
	stdin = strings.NewReader(up.ID + "\n")
	c.run("license", "revoke", "--id", up.ID, "--reason", "chargeback")
	stdin = os.Stdin

	bundle, keyset := filepath.Join(dir, "bundle.json"), filepath.Join(dir, "keyset.json")
	c.run("bundle", "publish", "--product", "genai-smart-router", "--out", bundle)
	c.run("keys", "export-keyset", "--out", keyset)
	file := filepath.Join(dir, "topup.json")
	c.run("license", "download", "--id", up.ID, "--out", file)
	verifier := buildVerifier(t)
	cmd := exec.Command(verifier, "verify", "--license", file, "--keyset", keyset, "--revocation", bundle,
		"--require-current-bundle", "--fail-closed-on-bundle-error", "--json")
	out, _ := cmd.Output()
	if cmd.ProcessState.ExitCode() != 1 || !bytes.Contains(out, []byte(`"license-revoked"`)) {
		t.Fatalf("revoked top-up: exit %d %s", cmd.ProcessState.ExitCode(), out)
	}

	b := []byte(c.run("license", "download", "--id", lic.ID, "--what", "checklist", "--out", "-"))
	for _, want := range []string{lic.ID, "/readyz", "/admin/license/status", "verifier install", "caller smoke"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Fatalf("checklist lacks %q:\n%s", want, b)
		}
	}
	sum := filepath.Join(dir, "summary.json")
	c.run("license", "download", "--id", up.ID, "--what", "summary", "--out", sum)
	var summary map[string]any
	b, _ = os.ReadFile(sum)
	if err := json.Unmarshal(b, &summary); err != nil {
		t.Fatal(err)
	}
	if summary["license_id"] != up.ID || summary["status"] != "revoked" || summary["payload"] != nil || summary["signature"] != nil {
		t.Fatalf("summary: %v", summary)
	}

	c.env["ISSUER_AS"] = "maker@m.test"
	c.json(&ent, "entitlement", "create", "--customer", cust.ID, "--template", "enterprise-annual")
	c.run("entitlement", "approve", "--id", ent.ID, "--as", "checker@m.test")
	c.run("license", "issue", "--entitlement", ent.ID)
	_, errOut, err := c.try("license", "renew", "--expiring-within", "9000h")
	if err != nil || !strings.Contains(errOut, "[1/") {
		t.Fatalf("batch renewal: %v, progress %q", err, errOut)
	}
	var audit struct {
		Intact bool  `json:"intact"`
		Events int64 `json:"events"`
	}
	c.json(&audit, "audit", "verify")
	if !audit.Intact || audit.Events < 15 {
		t.Fatalf("audit chain: %+v", audit)
	}
}

// TestCLILeaseToken: a lease-required license prints its token once; rotation prints
// another; the lease commands answer for a license no host has used yet.
func TestCLILeaseToken(t *testing.T) {
	c := newCLI(t)
	c.bootstrap("license")
	var cust, ent struct {
		ID string `json:"id"`
	}
	c.json(&cust, "customer", "create", "--name", "Pilot Co")
	c.json(&ent, "entitlement", "create", "--customer", cust.ID, "--template", "pilot-30d", "--limit", "max_instances=3")
	c.run("entitlement", "approve", "--id", ent.ID, "--as", "checker@m.test")
	var lic struct {
		ID         string `json:"id"`
		LeaseToken string `json:"lease_token"`
		LeaseTTL   int64  `json:"lease_ttl_seconds"`
	}
	c.json(&lic, "license", "issue", "--entitlement", ent.ID)
	if len(lic.LeaseToken) != 43 || lic.LeaseTTL != 6*3600 {
		t.Fatalf("issued pilot: %+v", lic)
	}
	var rot struct {
		LeaseToken string `json:"lease_token"`
	}
	c.json(&rot, "license", "rotate-lease-token", "--id", lic.ID)
	if len(rot.LeaseToken) != 43 || rot.LeaseToken == lic.LeaseToken {
		t.Fatalf("rotated token %q", rot.LeaseToken)
	}
	if out := c.run("lease", "slots", "--license", lic.ID); !strings.Contains(out, "no host") {
		t.Fatalf("slots: %s", out)
	}
	var hist []any
	c.json(&hist, "lease", "history", "--license", lic.ID)
	if len(hist) != 0 {
		t.Fatalf("history: %v", hist)
	}
	if _, _, err := c.try("lease", "slots", "--license", "lic_01HZY3QK8Y0000000000000001"); err == nil || !strings.Contains(describe(err), "not found") {
		t.Fatalf("unknown license: %v", err)
	}
}

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer ts.Close()
	c := newCLI(t)
	if out := c.run("healthcheck", "--url", ts.URL+"/readyz"); !strings.Contains(out, "ready") {
		t.Fatalf("healthy: %q", out)
	}
	status = http.StatusServiceUnavailable
	if _, _, err := c.try("healthcheck", "--url", ts.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("unready issuer reported healthy: %v", err)
	}
	ts.Close()
	if _, _, err := c.try("healthcheck", "--url", ts.URL+"/readyz"); err == nil {
		t.Fatal("a stopped issuer reported healthy")
	}
}

// TestConcurrentBootstrapsMakeOneAdmin: two first `staff create` without --as at once:
// exactly one succeeds; the other is refused and leaves no account.
func TestConcurrentBootstrapsMakeOneAdmin(t *testing.T) {
	c := newCLI(t)
	c.run("migrate")
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, _, err := c.try("staff", "create", "--email", fmt.Sprintf("admin%d@m.test", i), "--role", "admin")
			errs <- err
		}()
	}
	var failed []error
	for range 2 {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) != 1 || !strings.Contains(describe(failed[0]), "exist already") {
		t.Fatalf("want exactly one bootstrap refused, got %v", failed)
	}
	var n int
	st := openTestStore(t, c.env["DATABASE_URL"])
	st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM staff_users`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d staff accounts after two racing bootstraps", n)
	}
	// A later account without --as is refused as well.
	if _, _, err := c.try("staff", "create", "--email", "late@m.test", "--role", "admin"); err == nil {
		t.Fatal("a second bootstrap was allowed")
	}
}

func openTestStore(t *testing.T, url string) *storage.Store {
	t.Helper()
	st, err := storage.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// TestRewrapIsAudited: a KEK rewrap leaves an audit event naming the keys it re-sealed.
func TestRewrapIsAudited(t *testing.T) {
	c := newCLI(t)
	c.bootstrap("license")
	next := filepath.Join(t.TempDir(), "next.kek")
	if err := os.WriteFile(next, []byte("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env["USER"] = "ops"
	c.run("keys", "rewrap", "--new-kek-file", next)
	var n int
	openTestStore(t, c.env["DATABASE_URL"]).Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM audit_events WHERE action = 'keys.rewrap' AND actor = 'operator:ops' AND details->>'rewrapped' = '1'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d rewrap audit events", n)
	}
}
