package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/leases"
	"github.com/metrum/licensing/internal/secretscan"
	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

// TestNoKeyMaterialInCLIOrHTTP runs a full issuance through the CLI and the HTTP
// server with signing keys whose private bytes the test knows (Ed25519 license and
// lease keys, an ES256 revocation key), and searches everything a person or a host
// could see (every command's standard output and error, every HTTP response: bundle,
// lease, staff pages and downloads) for those bytes in any encoding, PEM included.
func TestNoKeyMaterialInCLIOrHTTP(t *testing.T) {
	ctx := context.Background()
	c := newCLI(t)
	var seen bytes.Buffer
	runSeen := func(args ...string) string {
		t.Helper()
		out, errOut, err := c.try(args...)
		seen.WriteString(out)
		seen.WriteString(errOut)
		if err != nil {
			t.Fatalf("issuer %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	runSeen("migrate")
	runSeen("staff", "create", "--email", "root@m.test", "--role", "admin", "--bootstrap")
	c.startIssuer()
	c.devToken("root@m.test")
	c.env["ISSUER_AS"] = "root@m.test"
	runSeen("staff", "create", "--email", "checker@m.test", "--role", "approver")
	c.devToken("checker@m.test")

	// Keys with known private bytes, sealed into the CLI's key folder and recorded.
	kek, err := signing.ParseKEK(c.env["METRUM_KEK"])
	if err != nil {
		t.Fatal(err)
	}
	files := signing.NewFileBackend(filepath.Join(c.env["ISSUER_DATA_DIR"], "keys"), kek)
	store := openTestStore(t, c.env["DATABASE_URL"])
	svc := issuance.New(store, issuance.Config{Keys: signing.NewKeys(files), Issuer: "metrum",
		RenewURL: "https://licensing.metrum.test/v1/leases", MakerChecker: true})
	root, err := store.StaffByEmail(ctx, "root@m.test")
	if err != nil {
		t.Fatal(err)
	}
	var secrets [][]byte
	edSeed := func() ed25519.PrivateKey {
		seed := make([]byte, ed25519.SeedSize)
		rand.Read(seed)
		k := ed25519.NewKeyFromSeed(seed)
		secrets = append(secrets, seed, k)
		return k
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecD, _ := ecKey.Bytes()
	secrets = append(secrets, ecD)
	for _, k := range []struct {
		priv    crypto.Signer
		alg     string
		purpose verify.Purpose
	}{
		{edSeed(), verify.AlgEdDSA, verify.PurposeLicense},
		{ecKey, verify.AlgES256, verify.PurposeRevocation},
		{edSeed(), verify.AlgEdDSA, verify.PurposeLease},
	} {
		fk, err := signing.NewFileKey(k.priv, k.alg, []verify.Purpose{k.purpose})
		if err != nil {
			t.Fatal(err)
		}
		if err := files.Save(fk); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RegisterKey(ctx, "genai-smart-router", fk, "file", "", true, root); err != nil {
			t.Fatal(err)
		}
	}

	// The CLI path: customer → entitlement (lease-required pilot) → approve → issue →
	// downloads, bundle, keys, audit.
	cust := regexp.MustCompile(`cus_[0-9A-Z]{26}`).FindString(runSeen("customer", "create", "--name", "Leaky Inc", "--json"))
	ent := regexp.MustCompile(`ent_[0-9A-Z]{26}`).FindString(runSeen("entitlement", "create", "--customer", cust, "--template", "pilot-30d", "--json"))
	runSeen("entitlement", "approve", "--id", ent, "--as", "checker@m.test")
	issued := runSeen("license", "issue", "--entitlement", ent)
	lic := regexp.MustCompile(`lic_[0-9A-Z]{26}`).FindString(issued)
	token := regexp.MustCompile(`shown once[^:]*: (\S+)`).FindStringSubmatch(issued)
	if lic == "" || token == nil {
		t.Fatalf("issue output: %s", issued)
	}
	dir := t.TempDir()
	for _, what := range []string{"file", "summary", "checklist"} {
		runSeen("license", "download", "--id", lic, "--what", what, "--out", "-")
	}
	runSeen("license", "show", "--id", lic, "--json")
	runSeen("bundle", "publish", "--product", "genai-smart-router", "--as", "checker@m.test")
	runSeen("keys", "list", "--json")
	runSeen("keys", "export-keyset", "--out", filepath.Join(dir, "keyset.json"))
	runSeen("audit", "list", "--json")
	runSeen("audit", "verify")

	// The HTTP path: a host's lease, the public bundle, a staff member's pages and
	// downloads.
	ls := leases.New(store, svc, leases.Options{Products: []string{"genai-smart-router"}})
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go ls.Run(lctx)
	srv := &server.Server{Svc: svc, Leases: ls, Metrics: server.NewMetrics(), MetricsOpen: true, Log: slog.New(slog.NewTextHandler(&seen, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	get := func(req *http.Request) {
		t.Helper()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 400 {
			t.Fatalf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, b)
		}
		fmt.Fprintf(&seen, "%v\n%s\n", resp.Header, b)
	}
	req, _ := http.NewRequest("POST", ts.URL+"/v1/leases", strings.NewReader(`{"license_id":"`+lic+`","instance_fingerprint":"host-1"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token[1])
	get(req)
	for _, p := range []string{"/v1/bundles/genai-smart-router/latest", "/metrics", "/staff/login"} {
		req, _ := http.NewRequest("GET", ts.URL+p, nil)
		get(req)
	}
	// The sign-in form's CSRF token, as a browser would send it (bound to the seed
	// cookie the GET set).
	var csrf string
	if m := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(seen.String()); m != nil {
		csrf = m[1]
	}
	req, _ = http.NewRequest("POST", ts.URL+"/staff/login", strings.NewReader(url.Values{"email": {"root@m.test"},
		"password": {c.env["ISSUER_STAFF_PASSWORD"]}, "_csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	get(req)
	for _, p := range []string{"/staff/licenses", "/staff/licenses/" + lic + "/file"} {
		req, _ := http.NewRequest("GET", ts.URL+p, nil)
		get(req)
	}

	// The capture is wired: it holds the license, its lease and the staff list page.
	for _, want := range []string{lic, "metrum.lease.v1", "metrum.revocation.v1", "Leaky Inc", "Sign out"} {
		if !strings.Contains(seen.String(), want) {
			t.Fatalf("the capture lacks %q: it is not seeing what it should", want)
		}
	}
	for i, s := range secrets {
		if enc := secretscan.Find(seen.Bytes(), s); enc != "" {
			t.Fatalf("private key material %d found in CLI output or HTTP responses (%s)", i, enc)
		}
	}
}
