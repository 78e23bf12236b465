package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// TestCLIBinaryHoldsNoKeys runs the whole customer → entitlement → approve (a second
// account) → issue → download → verifier flow with the real `issuer` binary against a
// running issuer, with no database URL, no KEK and no data folder in the CLI's
// environment: only the issuer's URL and each person's credentials from `issuer login`.
func TestCLIBinaryHoldsNoKeys(t *testing.T) {
	c := newCLI(t)
	c.bootstrap("license", "revocation")
	bin := filepath.Join(t.TempDir(), "issuer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	home := t.TempDir()
	run := func(creds string, stdin string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		// Nothing of the issuer's: no DATABASE_URL, METRUM_KEK, ISSUER_DATA_DIR.
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "ISSUER_URL=" + c.url, "ISSUER_CREDENTIALS=" + filepath.Join(home, creds)}
		cmd.Dir = home
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(creds, stdin string, args ...string) string {
		t.Helper()
		out, err := run(creds, stdin, args...)
		if err != nil {
			t.Fatalf("issuer %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	// An account an admin made has the admin's password: the CLI refuses to log it in
	// until its owner chose their own in the console.
	if out, err := run("maker.json", c.env["ISSUER_STAFF_PASSWORD"]+"\n", "login", "--email", "maker@m.test"); err == nil ||
		!strings.Contains(out, "choose your own in the console") {
		t.Fatalf("login with the admin's password: %v\n%s", err, out)
	}
	own := "my own long passphrase"
	// maker chooses theirs in the console; checker with the CLI alone, as they sign in
	// (the admin's password again is refused, and nothing is made).
	consoleFirstPassword(t, c.url, "maker@m.test", c.env["ISSUER_STAFF_PASSWORD"], own)
	admins := c.env["ISSUER_STAFF_PASSWORD"]
	if out, err := run("checker.json", admins+"\n"+admins+"\n", "login", "--change-password", "--email", "checker@m.test"); err == nil ||
		!strings.Contains(out, "not the one the admin set") {
		t.Fatalf("--change-password to the admin's own: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(home, "checker.json")); !os.IsNotExist(err) {
		t.Fatalf("a refused login wrote credentials: %v", err)
	}
	if out := must("checker.json", admins+"\n"+own+"\n", "login", "--change-password", "--email", "checker@m.test"); !strings.Contains(out, "password changed for checker@m.test") {
		t.Fatalf("login --change-password: %s", out)
	}
	pw := own + "\n"
	must("maker.json", pw, "login", "--email", "maker@m.test")
	must("checker.json", pw, "login", "--email", "checker@m.test")
	if fi, err := os.Stat(filepath.Join(home, "maker.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", fi.Mode(), err)
	}
	var me map[string]string
	if err := json.Unmarshal([]byte(must("checker.json", "", "whoami", "--json")), &me); err != nil || me["email"] != "checker@m.test" || me["role"] != "approver" || me["url"] != c.url {
		t.Fatalf("whoami: %v %v", me, err)
	}
	if out, err := run("nobody.json", "", "whoami"); err == nil || !strings.Contains(out, "issuer login") {
		t.Fatalf("whoami with no credentials: %v\n%s", err, out)
	}
	var cust map[string]any
	json.Unmarshal([]byte(must("maker.json", "", "customer", "create", "--name", "Vandelay", "--json")), &cust)
	var ent map[string]any
	json.Unmarshal([]byte(must("maker.json", "", "entitlement", "create", "--customer", cust["id"].(string), "--template", "enterprise-annual", "--json")), &ent)
	id := ent["id"].(string)
	if out, err := run("maker.json", "", "entitlement", "approve", "--id", id); err == nil || !strings.Contains(out, "approver role") {
		t.Fatalf("the maker approved: %v\n%s", err, out)
	}
	// --as is no way around it: outside dev it names no token.
	if out, err := run("maker.json", "", "entitlement", "approve", "--id", id, "--as", "checker@m.test"); err == nil || !strings.Contains(out, "demo account") {
		t.Fatalf("--as acted as another: %v\n%s", err, out)
	}
	must("checker.json", "", "entitlement", "approve", "--id", id)
	lic := regexp.MustCompile(`lic_[0-9A-Z]{26}`).FindString(must("maker.json", "", "license", "issue", "--entitlement", id))
	must("maker.json", "", "license", "download", "--id", lic, "--out", "license.json")
	must("maker.json", "", "keys", "export-keyset", "--out", "keyset.json")
	vbin := buildVerifier(t)
	out, err := exec.Command(vbin, "verify", "--license", filepath.Join(home, "license.json"), "--keyset", filepath.Join(home, "keyset.json"),
		"--product", "genai-smart-router", "--json").Output()
	if err != nil || !strings.Contains(string(out), `"status": "valid"`) {
		t.Fatalf("verifier: %v\n%s", err, out)
	}
	// The audit trail names the real actors.
	var n int
	openTestStore(t, c.env["DATABASE_URL"]).Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM audit_events WHERE (action = 'entitlement.approve' AND actor = 'checker@m.test' AND subject = $1)
			OR (action = 'license.issue' AND actor = 'maker@m.test' AND subject = $2)`, id, lic).Scan(&n)
	if n != 2 {
		t.Fatalf("audit: %d of the 2 expected events", n)
	}
	// Signed out: nothing works.
	if out, err := run("nobody.json", "", "license", "list"); err == nil || !strings.Contains(out, "not signed in") {
		t.Fatalf("without credentials: %v\n%s", err, out)
	}
}

// BenchmarkCLIIssueAllApproved measures bulk issuance through the CLI: b.N rounds of
// 1,000 approved entitlements issued by `issuer license issue --all-approved`, which
// runs on the server in parallel batches and streams progress. It reports licenses/s.
//
//	go test ./cmd/issuer -run '^$' -bench CLIIssueAllApproved -benchtime 1x
func BenchmarkCLIIssueAllApproved(b *testing.B) {
	c := newCLIFor(b)
	c.bootstrap("license")
	ctx := context.Background()
	svc := c.issuer.svc
	maker, _ := c.issuer.store.StaffByEmail(ctx, "maker@m.test")
	checker, _ := c.issuer.store.StaffByEmail(ctx, "checker@m.test")
	cu := &entitlements.Customer{Name: "Bulk Co"}
	if err := svc.CreateCustomer(ctx, cu, maker); err != nil {
		b.Fatal(err)
	}
	const n = 1000
	var total time.Duration
	for range b.N {
		b.StopTimer()
		for range n {
			e, err := svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: cu.ID, Template: "enterprise-annual"}, maker)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := svc.Approve(ctx, e.ID, checker); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		c.env["ISSUER_AS"] = "maker@m.test"
		out := c.run("license", "issue", "--all-approved")
		total += time.Since(start)
		if !strings.Contains(out, "issued 1000 of 1000") {
			b.Fatalf("bulk issue: %.300s", out)
		}
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "licenses/s")
}

// TestOperatorCommandsSaySo: the commands that open the database or keys themselves
// say so in their --help; the others act through the staff API.
func TestOperatorCommandsSaySo(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{{"serve"}, {"dev"}, {"migrate"}, {"staff", "create"}, {"keys", "rewrap"}, {"audit", "verify"}, {"recover"}} {
		_, errOut, _ := c.try(append(args, "--help")...)
		if !strings.Contains(errOut, "operator") {
			t.Errorf("issuer %s --help does not say it is an operator command:\n%s", strings.Join(args, " "), errOut)
		}
	}
	_, errOut, _ := c.try("license", "issue", "--help")
	if strings.Contains(errOut, "operator command") {
		t.Error("license issue claims to be an operator command")
	}
}

// consoleFirstPassword signs in to the console with the password an admin set and
// chooses one's own, as a new staff member does first.
func consoleFirstPassword(t *testing.T, base, email, first, own string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	csrf := func(path string) string {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no CSRF token on %s (%d)", path, resp.StatusCode)
		}
		return string(m[1])
	}
	post := func(path string, form url.Values) *http.Response {
		resp, err := c.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	post("/staff/login", url.Values{"_csrf": {csrf("/staff/login")}, "email": {email}, "password": {first}})
	// Anything else sends it to the password form first.
	resp, err := c.Get(base + "/staff/licenses")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(resp.Request.URL.Path, "/staff/accounts") || !strings.Contains(string(b), "Choose your own password first") {
		t.Fatalf("%s was not sent to choose a password: %s", email, resp.Request.URL)
	}
	post("/staff/accounts/password", url.Values{"_csrf": {csrf("/staff/accounts")}, "current": {first}, "next": {own}})
}
