package server_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/metrum/licensing/internal/browsertest"
)

func TestHealthAndReady(t *testing.T) {
	e := mustServer(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(e.ts.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, resp.StatusCode, err)
		}
	}
}

func TestStaffPagesNeedLogin(t *testing.T) {
	e := mustServer(t)
	c := client(t)
	for _, p := range []string{"/staff/licenses", "/staff/licenses/" + e.license.ID + "/file"} {
		resp, err := c.Get(e.ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/staff/login?next=") {
			t.Fatalf("%s without a session: %d %s", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestLoginSessionDownloadLogout(t *testing.T) {
	e := mustServer(t)
	c := client(t)
	resp := e.mustLogin(t, c, "admin@m.test", "wrong password!!")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	contains(t, readBody(t, resp), "Wrong email or password.")
	resp = e.mustLogin(t, c, "nobody@m.test", password)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown account: %d", resp.StatusCode)
	}

	resp = e.mustLogin(t, c, "ADMIN@m.test", password)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "issuer_session" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie: %+v", session)
	}
	resp, _ = c.Get(e.ts.URL + "/staff/licenses")
	body := readBody(t, resp)
	contains(t, body, e.license.ID)
	contains(t, body, "Initech &lt;script&gt;") // escaped, not executed
	if strings.Contains(body, "<script>alert") {
		t.Fatal("customer name rendered unescaped")
	}

	resp, _ = c.Get(e.ts.URL + "/staff/licenses/" + e.license.ID + "/file")
	got := readBody(t, resp)
	if resp.StatusCode != 200 || !bytes.Equal([]byte(got), e.license.File) {
		t.Fatalf("download: %d, exact bytes: %v", resp.StatusCode, got == string(e.license.File))
	}
	resp, _ = c.Get(e.ts.URL + "/staff/licenses/lic_01HZY3QK8Y0000000000000009/file")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(resp.Header.Get("Content-Type"), "problem+json") {
		t.Fatalf("unknown license: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// Logout needs the CSRF token too; without it nothing happens.
	resp, _ = c.PostForm(e.ts.URL+"/staff/logout", url.Values{})
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("logout without CSRF token: %d", resp.StatusCode)
	}
	resp, _ = c.Get(e.ts.URL + "/staff/licenses")
	m := csrfRe.FindStringSubmatch(readBody(t, resp))
	resp, _ = c.PostForm(e.ts.URL+"/staff/logout", url.Values{"_csrf": {m[1]}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	// The old session token is dead on the server, not just dropped by the browser.
	req, _ := http.NewRequest("GET", e.ts.URL+"/staff/licenses", nil)
	req.AddCookie(&http.Cookie{Name: "issuer_session", Value: session.Value})
	resp, _ = client(t).Do(req)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("session after logout: %d", resp.StatusCode)
	}
}

func TestLoginRejectsOpenRedirect(t *testing.T) {
	e := mustServer(t)
	c := client(t)
	resp, _ := c.Get(e.ts.URL + "/staff/login")
	m := csrfRe.FindStringSubmatch(readBody(t, resp))
	resp, _ = c.PostForm(e.ts.URL+"/staff/login", url.Values{"_csrf": {m[1]}, "email": {"admin@m.test"}, "password": {password}, "next": {"//evil.example/x"}})
	if loc := resp.Header.Get("Location"); loc != "/staff/" {
		t.Fatalf("redirected to %q", loc)
	}
}

// A person signs in with Chromium and sees the license list.
func TestBrowserSignInAndList(t *testing.T) {
	e := mustServer(t)
	ctx := browsertest.New(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.ts.URL+"/staff/licenses"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "admin@m.test"),
		chromedp.SendKeys(chromedp.ID("password"), "not the password"),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("login-error")),
	)
	if err != nil {
		t.Fatal(err)
	}
	errText, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("login-error")))
	if err != nil {
		t.Fatal(err)
	}
	contains(t, errText, "Wrong email or password")

	err = chromedp.Do(ctx,
		chromedp.Clear(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("licenses")),
	)
	if err != nil {
		t.Fatal(err)
	}
	who, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("whoami")))
	table, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("licenses")))
	contains(t, who, "admin@m.test (admin)")
	contains(t, table, e.license.ID)
	contains(t, table, "enterprise-annual")
	contains(t, table, "active")

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("sign-in")),
		chromedp.Navigate(e.ts.URL+"/staff/licenses"),
		chromedp.WaitVisible(chromedp.ID("email")),
	)
	if err != nil {
		t.Fatalf("after sign-out the list should need a login again: %v", err)
	}
}
