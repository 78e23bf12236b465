package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/metrum/licensing/internal/server"
)

// TestSignInThrottling: wrong passwords, from one address and from many (through a
// trusted proxy), get growing waits answered at once with 429 and Retry-After; while
// the account waits, even the right password is refused; failures are audited.
func TestSignInThrottling(t *testing.T) {
	e := mustServer(t)
	_, loop, _ := net.ParseCIDR("127.0.0.0/8")
	srv := &server.Server{Svc: e.svc, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), TrustedProxies: []*net.IPNet{loop}}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	attempt := func(email, pw, from string) (*http.Response, string) {
		t.Helper()
		c := client(t)
		resp, err := c.Get(ts.URL + "/staff/login")
		if err != nil {
			t.Fatal(err)
		}
		m := csrfRe.FindStringSubmatch(readBody(t, resp))
		req, _ := http.NewRequest("POST", ts.URL+"/staff/login", strings.NewReader(url.Values{"_csrf": {m[1]}, "email": {email}, "password": {pw}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if from != "" {
			req.Header.Set("X-Forwarded-For", from)
		}
		u, _ := url.Parse(ts.URL + "/staff")
		for _, ck := range c.Jar.Cookies(u) {
			req.AddCookie(ck)
		}
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readBody(t, resp)
	}
	// One address, one account: three free failures, then waits.
	for i := range 3 {
		if resp, _ := attempt("admin@m.test", "wrong password", "203.0.113.7"); resp.StatusCode != 401 {
			t.Fatalf("failure %d: %d", i+1, resp.StatusCode)
		}
	}
	if resp, _ := attempt("admin@m.test", "wrong password", "203.0.113.7"); resp.StatusCode != 401 {
		t.Fatalf("4th failure: %d", resp.StatusCode)
	}
	resp, body := attempt("admin@m.test", password, "203.0.113.7")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many failed sign-ins") {
		t.Fatalf("while waiting, the right password: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if wait < 1 || wait > 2 {
		t.Fatalf("first wait %ds, want about 1 s", wait)
	}
	// One address locks the account for itself only: the owner signs in from
	// elsewhere (issue 20: nine failures from one address used to lock every address).
	for range 9 {
		attempt("checker@m.test", "wrong password", "198.51.100.1")
	}
	if resp, _ := attempt("checker@m.test", "wrong password", "198.51.100.1"); resp.StatusCode != 429 {
		t.Fatalf("the guessing address: %d", resp.StatusCode)
	}
	if resp, _ := attempt("checker@m.test", password, "198.51.100.99"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the owner from another address: %d", resp.StatusCode)
	}
	// One address against many accounts: the address's count throttles.
	for i := range 11 {
		attempt(fmt.Sprintf("nobody%d@m.test", i), "wrong password", "192.0.2.50")
	}
	if resp, _ := attempt("maker@m.test", password, "192.0.2.50"); resp.StatusCode != 429 {
		t.Fatalf("one address, many accounts: %d", resp.StatusCode)
	}
	// An untouched account from a clean address still signs in.
	if resp, _ := attempt("maker@m.test", password, "192.0.2.51"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("clean sign-in: %d", resp.StatusCode)
	}
	// Failed sign-ins are audited aggregated: the 1st, 2nd, 4th, 8th… of each account
	// from each address. admin from .7: 4 checked failures → 3 events; checker from .1:
	// also 4 checked (the rest were throttled and checked no password) → 3; eleven
	// nobodies: 1 each.
	var n int
	e.store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE action = 'staff.sign_in_failed'`).Scan(&n)
	if n != 3+3+11 {
		t.Fatalf("%d failed sign-ins audited, want %d", n, 3+3+11)
	}
	e.store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE action = 'staff.sign_in' AND subject = 'maker@m.test'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d sign-ins audited", n)
	}
	e.store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE action = 'staff.sign_in' AND subject = 'checker@m.test'`).Scan(&n)
	if n != 1 {
		t.Fatalf("the owner's sign-in from elsewhere: %d audited", n)
	}
}
