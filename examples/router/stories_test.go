package main_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/metrum/licensing/usage"
)

// A top-up replaces the license file: the router takes the new license, its limits
// and its own budget from zero without a restart, and the old budget's spent state
// does not carry over.
func TestTopUpWithoutRestart(t *testing.T) {
	k := newKit(t)
	lic := k.put("license.json", k.license(licA, "", map[string]int64{"token_budget": 100, "max_concurrency": 4}))
	p := start(t, k, "--license", lic, "--state", k.path("state.json"), "--usage-dir", k.path("usage"))
	if code, _ := p.chat(60); code != 200 {
		t.Fatalf("chat: %d", code)
	}
	code, prob := p.chat(50)
	if code != 403 || prob["type"] != "https://metrum.ai/problems/license-limit-exceeded" || prob["request_id"] == nil {
		t.Fatalf("over budget: %d %v", code, prob)
	}
	k.put("license.json", k.license(licB, licA, map[string]int64{"token_budget": 1000, "max_concurrency": 16}))
	eventually(t, "the top-up to be picked up", func() bool { return p.status()["license_id"] == licB })
	st := p.status()
	if lim := st["limits"].(map[string]any); lim["token_budget"] != float64(1000) || lim["max_concurrency"] != float64(16) || st["status"] != "valid" {
		t.Fatalf("%v", st)
	}
	if code, _ := p.chat(1000); code != 200 {
		t.Fatalf("the new budget starts at zero: %d", code)
	}
	if code, _ := p.chat(1); code != 403 {
		t.Fatalf("the new budget is spent: %d", code)
	}
}

// The license file deleted: grace serves the kept license, features and all.
func TestDeletedFileGrace(t *testing.T) {
	k := newKit(t)
	lic := k.put("license.json", k.license(licA, "", map[string]int64{"max_concurrency": 4}))
	p := start(t, k, "--license", lic, "--state", k.path("state.json"))
	os.Remove(lic)
	eventually(t, "grace", func() bool { return p.status()["status"] == "grace" })
	st := p.status()
	if st["reason"] != "license-missing" || st["grace_active"] != true || st["license_id"] != licA ||
		!slices.Equal(toStrings(st["features"]), []string{"routing", "usage_export"}) || st["limits"].(map[string]any)["max_concurrency"] != float64(4) {
		t.Fatalf("%v", st)
	}
	if code, _, _ := p.do("GET", "/readyz", "", ""); code != 200 {
		t.Fatalf("readyz in grace: %d", code)
	}
	if code, _ := p.chat(5); code != 200 {
		t.Fatalf("chat in grace: %d", code)
	}
}

// A new bundle revokes the license. It is written in place with the old one's size
// and modification time, so no poll can see it: only SIGHUP reloads it. Then /readyz
// is 503 and the gated route answers license-revoked with a request ID.
func TestRevokedByNewBundleOnSIGHUP(t *testing.T) {
	k := newKit(t)
	lic := k.put("license.json", k.license(licA, "", map[string]int64{}))
	old := k.bundle(1, licX)
	bundle := k.put("bundle.json", old)
	fi, _ := os.Stat(bundle)
	p := start(t, k, "--license", lic, "--bundle", bundle, "--fail-closed-on-bundle-error", "--require-current-bundle", "--state", k.path("state.json"))
	if st := p.status(); st["status"] != "valid" || st["bundle_sequence"] != float64(1) {
		t.Fatalf("%v", st)
	}
	revoking := k.bundle(2, licA)
	if len(revoking) != len(old) {
		t.Fatalf("bundles of %d and %d bytes", len(old), len(revoking))
	}
	if err := os.WriteFile(bundle, revoking, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(bundle, fi.ModTime(), fi.ModTime())
	if now, _ := os.Stat(bundle); now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime()) || !os.SameFile(now, fi) {
		t.Fatal("the poll could see the change")
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "SIGHUP to apply the bundle", func() bool { code, _, _ := p.do("GET", "/readyz", "", ""); return code == 503 })
	code, prob, h := p.do("POST", "/v1/chat", "", `{"tokens": 1}`)
	if code != 503 || prob["type"] != "https://metrum.ai/problems/license-revoked" || prob["request_id"] == nil ||
		prob["request_id"] != h.Get("X-Request-Id") || strings.Contains(prob["detail"].(string), licA) {
		t.Fatalf("%d %v", code, prob)
	}
	if st := p.status(); st["reason"] != "license-revoked" || st["bundle_sequence"] != float64(2) {
		t.Fatalf("%v", st)
	}
}

// The gauges both documents name, scraped from /metrics (behind the admin token).
func TestMetricsScraped(t *testing.T) {
	k := newKit(t)
	lic := k.put("license.json", k.license(licA, "", map[string]int64{"token_budget": 50}))
	p := start(t, k, "--license", lic, "--bundle", k.put("bundle.json", k.bundle(3, licX)), "--usage-dir", k.path("usage"))
	p.chat(20)
	p.chat(40) // over the budget: refused
	if code, _, _ := p.do("GET", "/metrics", "", ""); code != 401 {
		t.Fatalf("metrics without the token: %d", code)
	}
	m := p.metrics()
	for _, want := range []string{`metrum_license_status{status="valid"} 1`, `metrum_license_status{status="blocked"} 0`,
		"metrum_license_days_until_expiry 90", "metrum_license_grace_active 0", "metrum_license_bundle_sequence 3",
		"metrum_license_bundle_age_seconds ", `metrum_license_requests_total{feature="routing"} 2`,
		`metrum_license_info{customer_id="` + cust, "metrum_usage_tokens_used 20", "metrum_usage_token_budget 50",
		"metrum_usage_refused_total 1", "metrum_usage_reports_pending 0"} {
		if !strings.Contains(m, want) {
			t.Errorf("no %q in /metrics", want)
		}
	}
	if t.Failed() {
		t.Log(m)
	}
}

// The admin status: exactly the router document's safe fields, for the admin token
// only.
func TestAdminStatus(t *testing.T) {
	k := newKit(t)
	p := start(t, k, "--license", k.put("license.json", k.license(licA, "", map[string]int64{"seats": 3})))
	for token, want := range map[string]int{"": 401, "wrong": 401, admin: 200} {
		if code, _, _ := p.do("GET", "/admin/license/status", token, ""); code != want {
			t.Errorf("token %q: %d, want %d", token, code, want)
		}
	}
	st := p.status()
	var got []string
	for k := range st {
		got = append(got, k)
	}
	slices.Sort(got)
	want := []string{"bundle_sequence", "customer_id", "days_until_expiry", "expires_at", "features", "grace_active", "key_id", "license_id", "limits", "reason", "sku", "status"}
	if !slices.Equal(got, want) || st["key_id"] != k.lic.KeyID() || st["days_until_expiry"] != float64(90) {
		t.Fatalf("%v", st)
	}
}

// A budget driven to exhaustion; the reports written at shutdown are what
// `verifier usage export` carries out of an air-gapped site.
func TestBudgetExhaustionAndExport(t *testing.T) {
	k := newKit(t)
	p := start(t, k, "--license", k.put("license.json", k.license(licA, "", map[string]int64{"token_budget": 100})), "--usage-dir", k.path("usage"))
	for i, c := range []struct{ tokens, want int }{{40, 200}, {40, 200}, {30, 403}, {20, 200}, {1, 403}, {0, 200}} {
		if code, prob := p.chat(c.tokens); code != c.want {
			t.Fatalf("chat %d (%d tokens): %d %v", i, c.tokens, code, prob)
		}
	}
	if code, _, _ := p.do("POST", "/v1/chat", "", `{"tokens": -1}`); code != 400 {
		t.Fatalf("negative tokens: %d", code)
	}
	p.stop()
	out := k.path("usage-export.json")
	if b, err := exec.Command(verifierBin, "usage", "export", "--state-dir", k.path("usage"), "--out", out).CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, b)
	}
	body, _ := os.ReadFile(out)
	envs, err := usage.ParseBatch(body)
	if err != nil || len(envs) != 1 {
		t.Fatalf("export file: %d reports, %v", len(envs), err)
	}
	r, err := usage.Parse(envs[0], nil)
	if err != nil || r.LicenseID != licA || r.Counters["tokens"] != 100 || r.Counters["requests"] != 4 || r.Seq != 1 {
		t.Fatalf("%v %+v", err, r)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode %v", fi.Mode())
	}
}

// Online: the shutdown's last report goes to the issuer with the lease token, as
// spec/usage.md section 3 says.
func TestUploadOnShutdown(t *testing.T) {
	k := newKit(t)
	var mu sync.Mutex
	var got []*usage.Report
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/v1/usage" || r.Header.Get("Authorization") != "Bearer lease-tok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, usage.MaxBatchBytes+1))
		envs, err := usage.ParseBatch(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range envs {
			rep, err := usage.Parse(e, nil)
			if err != nil {
				http.Error(w, err.Error(), http.StatusUnprocessableEntity)
				return
			}
			got = append(got, rep)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"accepted":` + strconv.Itoa(len(envs)) + `,"duplicates":0,"chains":[]}`))
	}))
	defer issuer.Close()
	p := start(t, k, "--license", k.put("license.json", k.license(licA, "", map[string]int64{"token_budget": 100})),
		"--usage-dir", k.path("usage"), "--report-url", issuer.URL+"/v1/usage", "--lease-token", "lease-tok")
	p.chat(33)
	p.stop()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Counters["tokens"] != 33 || got[0].LicenseID != licA {
		t.Fatalf("issuer received %d reports", len(got))
	}
	if bodies, n, _ := usage.Export(k.path("usage"), 0); n != 0 || len(bodies) != 0 {
		t.Fatalf("%d reports still pending after the issuer accepted them", n)
	}
}

// The command line: required flags, and a build that trusts no keys says so.
func TestCommandLine(t *testing.T) {
	k := newKit(t)
	lic := k.put("license.json", k.license(licA, "", map[string]int64{}))
	for _, args := range [][]string{{"--license", lic, "--product", product}, {"--addr", "127.0.0.1:0", "--license", lic},
		{"--addr", "127.0.0.1:0", "--license", lic, "--product", product, "--report-url", "https://x/v1/usage"}} {
		err := exec.Command(routerBin, args...).Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit 2", args, err)
		}
	}
	out, err := exec.Command(routerBin, "--addr", "127.0.0.1:0", "--license", lic, "--product", product).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "this build trusts no keys") {
		t.Fatalf("with the repository's empty key set: %v %s", err, out)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
