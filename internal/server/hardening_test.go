package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/web/ui"
)

// csrfOf reads the form token of a page.
func csrfOf(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	m := csrfRe.FindStringSubmatch(readBody(t, resp))
	if m == nil {
		t.Fatalf("no CSRF token on %s", u)
	}
	return m[1]
}

// postWith posts a form with exactly the given cookies.
func postWith(t *testing.T, u string, form url.Values, cookies ...*http.Cookie) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func cookieNamed(c *http.Client, u, name string) *http.Cookie {
	pu, _ := url.Parse(u)
	for _, ck := range c.Jar.Cookies(pu) {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

// TestCSRFTokensAreBoundToTheSession (issue 20, 7): a token and its cookie made
// anonymously are refused with an admin's session; the admin's own token works.
func TestCSRFTokensAreBoundToTheSession(t *testing.T) {
	e := mustServer(t)
	attacker := client(t)
	token := csrfOf(t, attacker, e.ts.URL+"/staff/login")
	seed := cookieNamed(attacker, e.ts.URL+"/staff/", "staff_csrf_seed")
	if seed == nil {
		t.Fatal("no seed cookie for the anonymous form")
	}
	victim := client(t)
	e.mustLogin(t, victim, "admin@m.test", password)
	session := cookieNamed(victim, e.ts.URL+"/staff/", "issuer_session")
	if session == nil {
		t.Fatal("no session")
	}
	form := url.Values{"_csrf": {token}, "name": {"Planted Corp"}}
	if resp := postWith(t, e.ts.URL+"/staff/customers", form, session, seed); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the anonymous pair with the admin's session: %d", resp.StatusCode)
	}
	if n := countRows(t, e, `SELECT count(*) FROM customers WHERE name = 'Planted Corp'`); n != 0 {
		t.Fatal("the forged form created a customer")
	}
	own := csrfOf(t, victim, e.ts.URL+"/staff/customers")
	form.Set("_csrf", own)
	if resp := postWith(t, e.ts.URL+"/staff/customers", form, session); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the admin's own form: %d", resp.StatusCode)
	}
}

// TestHostCookiesUnderHTTPS (issue 20, 7; 14): over https every console cookie is
// __Host- (Secure, Path=/), pages are never cached, and HSTS is on.
func TestHostCookiesUnderHTTPS(t *testing.T) {
	e := mustServer(t)
	srv := &server.Server{Svc: e.svc, SecureCookies: true, BaseURL: "https://licensing.example.com", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ts := httptest.NewTLSServer(srv.Handler())
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL + "/staff/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Cookies()) == 0 {
		t.Fatal("no cookie set")
	}
	for _, ck := range resp.Cookies() {
		if !strings.HasPrefix(ck.Name, "__Host-") || !ck.Secure || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("cookie %s: secure %v path %q domain %q", ck.Name, ck.Secure, ck.Path, ck.Domain)
		}
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("console page Cache-Control %q", cc)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(hsts, "max-age=31536000") {
		t.Errorf("HSTS %q", hsts)
	}
}

// TestAbsoluteURLsComeFromTheConfig (issue 20, 13): a forged Host header is not
// reflected on the tokens page; the configured base URL is.
func TestAbsoluteURLsComeFromTheConfig(t *testing.T) {
	e := mustServer(t)
	srv := &server.Server{Svc: e.svc, BaseURL: "https://licensing.example.com", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	c := client(t)
	(&env{svc: e.svc, store: e.store, ts: ts}).mustLogin(t, c, "maker@m.test", password)
	req, _ := http.NewRequest("GET", ts.URL+"/staff/tokens", nil)
	req.Host = "evil.example" // the jar keys cookies by this host: send the session by hand
	req.AddCookie(cookieNamed(c, ts.URL+"/staff/", "issuer_session"))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if strings.Contains(body, "evil.example") || !strings.Contains(body, "ISSUER_URL=https://licensing.example.com") {
		t.Fatalf("tokens page: %d, evil host reflected %v", resp.StatusCode, strings.Contains(body, "evil.example"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("the tokens page (it shows a new token once) is cacheable: %q", cc)
	}
}

// TestBadInputIsNeverA5xx (issue 20, 11): malformed paths, queries and forms, some
// unauthenticated, answer 4xx.
func TestBadInputIsNeverA5xx(t *testing.T) {
	e := mustServer(t)
	c := client(t)
	e.mustLogin(t, c, "admin@m.test", password)
	for _, path := range []string{
		"/v1/bundles/%FF/latest", "/%00/", "/v1/bundles/genai-smart-router/9223372036854775807",
		"/v1/bundles/genai-smart-router/99999999999999999999999", "/staff/licenses?customer=%FF", "/staff/customers?q=%FF",
		"/staff/audit?before=99999999999999999999999", "/staff/audit?subject=%00", "/staff/licenses/%FF", "/staff/entitlements?state=%FF",
		"/v1/bundles/genai-smart-router/latest?x=" + strings.Repeat("a", 10000),
	} {
		resp, err := c.Get(e.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	token := csrfOf(t, c, e.ts.URL+"/staff/tokens")
	resp, err := c.PostForm(e.ts.URL+"/staff/tokens", url.Values{"_csrf": {token}, "name": {"bad \xff name"}, "days": {"30"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a token name with invalid UTF-8: %d", resp.StatusCode)
	}
}

// TestStaffAPIErrorsNameNoGoType (issue 20): an unauthenticated caller's bad body is
// described in the body's terms.
func TestStaffAPIErrorsNameNoGoType(t *testing.T) {
	e := mustServer(t)
	resp, err := http.Post(e.ts.URL+"/v1/staff/login", "application/json", strings.NewReader(`{"Email":"x","Nope":1}`))
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(body, "Go ") || strings.Contains(body, "staffapi") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// TestTokensInQueryStringsAreRefusedInAnyCase (issue 20).
func TestTokensInQueryStringsAreRefusedInAnyCase(t *testing.T) {
	e := mustServer(t)
	for _, q := range []string{"access_token=x", "Access_Token=x", "TOKEN=x", "Api_Key=x"} {
		req, _ := http.NewRequest("POST", e.ts.URL+"/v1/staff/whoami?"+q, strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?%s: %d", q, resp.StatusCode)
		}
	}
}

// TestStaticFoldersAreNotListed (issue 20).
func TestStaticFoldersAreNotListed(t *testing.T) {
	e := mustServer(t)
	for _, p := range []string{ui.AssetPrefix + "/", ui.AssetPrefix} {
		resp, err := http.Get(e.ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "style.css") {
			t.Errorf("%s: %d %q", p, resp.StatusCode, body)
		}
	}
	if resp, _ := http.Get(e.ts.URL + ui.Asset("style.css")); resp.StatusCode != http.StatusOK {
		t.Errorf("the stylesheet: %d", resp.StatusCode)
	}
}

// TestPasswordChangesAreThrottled (issue 20, 1): wrong current passwords at once from
// one session get 429s, not an argon2id check each.
func TestPasswordChangesAreThrottled(t *testing.T) {
	e := mustServer(t)
	c := client(t)
	e.mustLogin(t, c, "maker@m.test", password)
	token := csrfOf(t, c, e.ts.URL+"/staff/accounts")
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.PostForm(e.ts.URL+"/staff/accounts/password", url.Values{"_csrf": {token}, "current": {"not my password"},
				"next": {"a brand new password"}})
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[http.StatusTooManyRequests] == 0 || codes[http.StatusBadRequest] > 10 {
		t.Fatalf("24 wrong current passwords: %v", codes)
	}
}

// TestAuditVerificationIsForAdmins (issue 20).
func TestAuditVerificationIsForAdmins(t *testing.T) {
	e := mustServer(t)
	c := client(t)
	e.mustLogin(t, c, "checker@m.test", password)
	token := csrfOf(t, c, e.ts.URL+"/staff/audit")
	resp, err := c.PostForm(e.ts.URL+"/staff/audit/verify", url.Values{"_csrf": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an approver verified the audit chain: %d", resp.StatusCode)
	}
}

func countRows(t *testing.T, e *env, sql string) int {
	t.Helper()
	var n int
	if err := e.store.Pool().QueryRow(t.Context(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHugeFieldsNeverReachALogLine (issue 20, 12): a 5 MB email on the sign-in forms
// is refused before it is logged, audited or queried.
func TestHugeFieldsNeverReachALogLine(t *testing.T) {
	e := mustServer(t)
	var logs strings.Builder
	var mu sync.Mutex
	srv := &server.Server{Svc: e.svc, Log: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	c := client(t)
	token := csrfOf(t, c, ts.URL+"/staff/login")
	huge := strings.Repeat("a", 5<<20) + "@x.test"
	resp, err := c.PostForm(ts.URL+"/staff/login", url.Values{"_csrf": {token}, "email": {huge}, "password": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a 5 MB email: %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, line := range strings.Split(logs.String(), "\n") {
		if len(line) > 4096 {
			t.Fatalf("a log line of %d bytes", len(line))
		}
	}
	if n := countRows(t, e, `SELECT count(*) FROM audit_events WHERE length(subject) > 254`); n != 0 {
		t.Fatalf("%d audit events with a huge subject", n)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
