package server_test

import (
	"context"
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

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/verify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const password = "correct horse battery"

type env struct {
	svc     *issuance.Service
	store   *storage.Store
	ts      *httptest.Server
	license *entitlements.License
}

// mustServer starts the real handler over a fresh database with staff accounts and
// one issued license.
func mustServer(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	store := pgtest.NewStore(t)
	dir := t.TempDir()
	kek, err := signing.NewKEKFile(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	svc := issuance.New(store, issuance.Config{Keys: signing.NewKeys(signing.NewFileBackend(filepath.Join(dir, "keys"), kek)), Issuer: "metrum", MakerChecker: true})
	staff := map[string]entitlements.Role{"admin@m.test": entitlements.RoleAdmin, "maker@m.test": entitlements.RoleIssuer, "checker@m.test": entitlements.RoleApprover}
	for email, role := range staff {
		if err := store.CreateStaff(ctx, &entitlements.Staff{Email: email, Role: role}, password, "test"); err != nil {
			t.Fatal(err)
		}
	}
	admin, _ := store.StaffByEmail(ctx, "admin@m.test")
	maker, _ := store.StaffByEmail(ctx, "maker@m.test")
	checker, _ := store.StaffByEmail(ctx, "checker@m.test")
	for _, p := range []verify.Purpose{verify.PurposeLicense, verify.PurposeRevocation} {
		if _, err := svc.GenerateKey(ctx, entitlements.KeyInput{Product: "genai-smart-router", Alg: verify.AlgEdDSA, Purposes: []verify.Purpose{p}}, true, admin); err != nil {
			t.Fatal(err)
		}
	}
	c := &entitlements.Customer{Name: "Initech <script>alert(1)</script>"}
	if err := svc.CreateCustomer(ctx, c, maker); err != nil {
		t.Fatal(err)
	}
	e, err := svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: c.ID, Template: "enterprise-annual"}, maker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, e.ID, checker); err != nil {
		t.Fatal(err)
	}
	lic, err := svc.Issue(ctx, e.ID, maker)
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{Svc: svc, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &env{svc: svc, store: store, ts: ts, license: lic}
}

// client is an HTTP client with cookies that does not follow redirects.
func client(t testing.TB) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRe = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// mustLogin signs in through the form, as a browser would.
func (e *env) mustLogin(t testing.TB, c *http.Client, email, pw string) *http.Response {
	t.Helper()
	resp, err := c.Get(e.ts.URL + "/staff/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRe.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatal("no CSRF token on the login form")
	}
	resp, err = c.PostForm(e.ts.URL+"/staff/login", url.Values{"_csrf": {m[1]}, "email": {email}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readBody(t *testing.T, r *http.Response) string {
	t.Helper()
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func contains(t *testing.T, s, want string) {
	t.Helper()
	if !strings.Contains(s, want) {
		t.Fatalf("%q not found in:\n%.2000s", want, s)
	}
}
