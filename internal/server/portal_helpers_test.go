package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/leases"
	"github.com/metrum/licensing/internal/mail"
	"github.com/metrum/licensing/internal/metering"
	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/purchase"
	"github.com/metrum/licensing/internal/ratelimit"
	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/smtptest"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/verify"
)

// portalEnv is the real server with the portal and customer API, over a fresh
// database, mailing through a real SMTP listener on loopback.
type portalEnv struct {
	svc    *issuance.Service
	store  *storage.Store
	portal *portal.Service
	ts     *httptest.Server
	smtp   *smtptest.Server
	keyset *verify.KeySet
	maker  *entitlements.Staff
	admin  *entitlements.Staff
	check  *entitlements.Staff
	shop   *purchase.Service
	usage  *metering.Service
}

type tenant struct {
	customer *entitlements.Customer
	email    string
	router   *entitlements.License // enterprise-annual, envelope
	pilot    *entitlements.License // lease-required
	leaseTok string
	jws      *entitlements.License // CoreSDK JWS
	token    string                // customer API token
	tokenID  string
}

func mustPortal(t *testing.T, customerRate float64, customerBurst int) *portalEnv {
	t.Helper()
	return mustPortalWith(t, customerRate, customerBurst, nil)
}

// mustPortalWith is mustPortal with self-service purchase when shop is set: it gets
// the environment and returns the purchase service the server mounts.
func mustPortalWith(t *testing.T, customerRate float64, customerBurst int, shop func(*portalEnv) *purchase.Service) *portalEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	store := pgtest.NewStore(t)
	dir := t.TempDir()
	kek, err := signing.NewKEKFile(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	svc := issuance.New(store, issuance.Config{Keys: signing.NewKeys(signing.NewFileBackend(filepath.Join(dir, "keys"), kek)),
		Issuer: "metrum", RenewURL: "https://licensing.metrum.test/v1/leases", MakerChecker: true})
	e := &portalEnv{svc: svc, store: store, smtp: smtptest.Start(t),
		admin: &entitlements.Staff{Email: "admin@m.test", Role: entitlements.RoleAdmin},
		maker: &entitlements.Staff{Email: "maker@m.test", Role: entitlements.RoleIssuer},
		check: &entitlements.Staff{Email: "checker@m.test", Role: entitlements.RoleApprover}}
	for _, k := range []entitlements.KeyInput{
		{Product: "genai-smart-router", Alg: verify.AlgEdDSA, Purposes: []verify.Purpose{verify.PurposeLicense}},
		{Product: "genai-smart-router", Alg: verify.AlgEdDSA, Purposes: []verify.Purpose{verify.PurposeRevocation}},
		{Product: "genai-smart-router", Alg: verify.AlgEdDSA, Purposes: []verify.Purpose{verify.PurposeLease}},
		{Product: "coresdk", Alg: verify.AlgES256, Purposes: []verify.Purpose{verify.PurposeLicense}},
		{Product: "coresdk", Alg: verify.AlgES256, Purposes: []verify.Purpose{verify.PurposeRevocation}},
	} {
		if _, err := svc.GenerateKey(ctx, k, true, e.admin); err != nil {
			t.Fatal(err)
		}
	}
	set, _ := svc.PublicKeySet(ctx)
	if e.keyset, err = verify.ParseKeySet(set); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.portal = portal.New(store, portal.Config{Mailer: &mail.SMTP{Addr: e.smtp.Addr, From: "licensing@metrum.test"}, Log: log})
	ls := leases.New(store, svc, leases.Options{Products: []string{"genai-smart-router"}})
	go ls.Run(ctx)
	srv := &server.Server{Svc: svc, Leases: ls, Portal: e.portal, Log: log,
		CustomerLimit: ratelimit.New(customerRate, customerBurst, 0)}
	// The listener first, so the purchase service knows the base URL.
	e.ts = httptest.NewUnstartedServer(nil)
	e.portal.BaseURL = "http://" + e.ts.Listener.Addr().String()
	// Usage metering, mailing its warnings through the portal's mailer.
	e.usage = metering.New(store, metering.Options{Mailer: e.portal.Mailer, BaseURL: e.portal.BaseURL, Log: log})
	go e.usage.Run(ctx)
	srv.Usage = e.usage
	if shop != nil {
		e.shop = shop(e)
		srv.Purchase = e.shop
	}
	e.ts.Config.Handler = srv.Handler()
	e.ts.Start()
	t.Cleanup(e.ts.Close)
	return e
}

// issue makes, approves and issues a license from a template for a customer.
func (e *portalEnv) issue(t *testing.T, customerID, tmpl string) (*entitlements.License, string) {
	t.Helper()
	ctx := context.Background()
	ent, err := e.svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: customerID, Template: tmpl}, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, ent.ID, e.check); err != nil {
		t.Fatal(err)
	}
	l, tok, err := e.svc.IssueWithToken(ctx, ent.ID, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	return l, tok
}

// tenant makes a customer with a router license, a lease-required pilot holding one
// lease, a CoreSDK token, an invited portal user and a customer API token.
func (e *portalEnv) tenant(t *testing.T, name, email string) *tenant {
	t.Helper()
	ctx := context.Background()
	x := &tenant{customer: &entitlements.Customer{Name: name}, email: email}
	if err := e.svc.CreateCustomer(ctx, x.customer, e.maker); err != nil {
		t.Fatal(err)
	}
	x.router, _ = e.issue(t, x.customer.ID, "enterprise-annual")
	x.pilot, x.leaseTok = e.issue(t, x.customer.ID, "pilot-30d")
	x.jws, _ = e.issue(t, x.customer.ID, "team")
	if _, err := e.store.CreatePortalUser(ctx, x.customer.ID, email, name+" ops", e.maker.Email); err != nil {
		t.Fatal(err)
	}
	tok, rec, err := e.portal.StaffCreateToken(ctx, x.customer.ID, "ci", 0, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	x.token, x.tokenID = tok, rec.ID
	return x
}

// lease takes a lease for a host of the tenant's pilot license.
func (e *portalEnv) lease(t *testing.T, x *tenant, fp string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", e.ts.URL+"/v1/leases", strings.NewReader(`{"license_id":"`+x.pilot.ID+`","instance_fingerprint":"`+fp+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+x.leaseTok)
	r := do(t, req)
	if r.status != 200 {
		t.Fatalf("lease: %d %s", r.status, r.body)
	}
	l, err := verify.ParseLeaseFile(r.body, e.keyset)
	if err != nil {
		t.Fatal(err)
	}
	return l.LeaseID
}

// signIn asks for a sign-in link by the form, reads it from the SMTP listener, and
// spends it, as a browser would; it returns the client holding the session.
func (e *portalEnv) signIn(t *testing.T, email string) *http.Client {
	t.Helper()
	c := client(t)
	csrf := e.csrf(t, c, "/portal/sign-in")
	before := e.smtp.Count(email)
	resp, err := c.PostForm(e.ts.URL+"/portal/sign-in", url.Values{"_csrf": {csrf}, "email": {email}})
	if err != nil {
		t.Fatal(err)
	}
	contains(t, readBody(t, resp), "Check your mail")
	deadline := time.Now().Add(5 * time.Second)
	for e.smtp.Count(email) == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	msgs := e.smtp.Count(email)
	if msgs == before {
		t.Fatalf("no sign-in mail for %s", email)
	}
	link := e.smtp.Last(email).Link()
	u, _ := url.Parse(link)
	resp, err = c.Get(e.ts.URL + u.RequestURI())
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	m := csrfRe.FindStringSubmatch(page)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("link page %d: %.500s", resp.StatusCode, page)
	}
	resp, err = c.PostForm(e.ts.URL+"/portal/sign-in/link", url.Values{"_csrf": {m[1]}, "token": {u.Query().Get("token")}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/" {
		t.Fatalf("sign-in: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	return c
}

// csrf loads a portal page and returns its CSRF token.
func (e *portalEnv) csrf(t *testing.T, c *http.Client, path string) string {
	t.Helper()
	resp, err := c.Get(e.ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	m := csrfRe.FindStringSubmatch(readBody(t, resp))
	if m == nil {
		t.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

// api calls the customer API with a bearer token.
func (e *portalEnv) api(t *testing.T, token, path string, hdr ...string) leaseResp {
	t.Helper()
	req, _ := http.NewRequest("GET", e.ts.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

// verifyBytes runs the verifier's core on delivered bytes with the test's key set.
func (e *portalEnv) verifyBytes(t *testing.T, b []byte, product string) *verify.Result {
	t.Helper()
	p := filepath.Join(t.TempDir(), "license")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return verify.Verify(verify.Options{LicensePath: p, Product: product, KeySet: e.keyset, Revocation: verify.RevocationOff})
}

// verifyWithBundle checks a license against a revocation bundle (mode file).
func (e *portalEnv) verifyWithBundle(t *testing.T, lic, bundle []byte) *verify.Result {
	t.Helper()
	dir := t.TempDir()
	lp, bp := filepath.Join(dir, "license"), filepath.Join(dir, "bundle")
	os.WriteFile(lp, lic, 0o644)
	os.WriteFile(bp, bundle, 0o644)
	return verify.Verify(verify.Options{LicensePath: lp, Product: "genai-smart-router", KeySet: e.keyset, Revocation: verify.RevocationFile, BundlePath: bp})
}
