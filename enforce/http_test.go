package enforce_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metrum/licensing/enforce"
	"github.com/metrum/licensing/usage"
)

func problemOf(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q: %s", ct, rec.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The gate answers a refused feature with its license-* problem and the request ID,
// from net/http and from echo alike.
func TestGate(t *testing.T) {
	k := newKit(t)
	e := mustNew(t, enforce.Options{License: enforce.File(k.put("license.json", k.license(payload(licA, time.Now())))), Product: router, KeySet: k.ks})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("served")) })
	mux := http.NewServeMux()
	mux.Handle("/chat", e.Feature("routing").Gate(ok))
	mux.Handle("/pii", e.Feature("pii_filtering").Gate(ok))
	h := enforce.WithRequestID(mux)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/chat", nil))
	if rec.Code != 200 || rec.Body.String() != "served" || rec.Header().Get("X-Request-Id") == "" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	req := httptest.NewRequest("POST", "/pii", nil)
	req.Header.Set("X-Request-Id", "caller-req-7")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	p := problemOf(t, rec)
	if rec.Code != 403 || p["type"] != "https://metrum.ai/problems/license-feature-forbidden" || p["status"] != float64(403) ||
		p["request_id"] != "caller-req-7" || p["title"] != "Feature not licensed" || rec.Header().Get("X-Request-Id") != "caller-req-7" {
		t.Fatalf("%d %v", rec.Code, p)
	}
	req = httptest.NewRequest("POST", "/pii", nil)
	req.Header.Set("X-Request-Id", "<script>")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if id := problemOf(t, rec)["request_id"].(string); len(id) != 26 {
		t.Fatalf("an unsafe caller ID was echoed: %q", id)
	}

	// Blocked: the license's own reason, 503, for every gated route.
	k.remove("license.json")
	e2 := mustNew(t, enforce.Options{License: enforce.File(k.path("license.json")), Product: router, KeySet: k.ks})
	ee := echo.New()
	ee.POST("/chat", func(c echo.Context) error { return c.String(200, "served") }, echo.WrapMiddleware(e2.Feature("routing").Gate))
	rec = httptest.NewRecorder()
	ee.ServeHTTP(rec, httptest.NewRequest("POST", "/chat", nil))
	p = problemOf(t, rec)
	if rec.Code != 503 || p["type"] != "https://metrum.ai/problems/license-missing" || p["request_id"] == nil || strings.Contains(rec.Body.String(), licA) {
		t.Fatalf("echo: %d %v", rec.Code, p)
	}
}

// Every reason has a problem, with a title, and deployment-wide reasons are 503.
func TestLicenseProblems(t *testing.T) {
	for _, r := range enforce.Reasons {
		p := enforce.LicenseProblem(r, "")
		want := 503
		if r == enforce.ReasonFeatureForbidden || r == enforce.ReasonLimitExceeded {
			want = 403
		}
		if p.Type != enforce.ProblemBase+string(r) || p.Title == "" || p.Title == "License check failed" || p.Status != want || p.Detail == "" {
			t.Errorf("%s: %+v", r, p)
		}
	}
}

// CoreSDK: max_tenants against the caller's count, with exactly CoreSDK's problem;
// max_rps as a token bucket; feature gates.
func TestCoreSDKPlan(t *testing.T) {
	k := newKit(t)
	c := &clock{t: time.Date(2026, 3, 19, 12, 0, 0, 0, time.UTC)}
	e := mustNew(t, enforce.Options{License: enforce.Bytes(k.token(c.Now(), 50, 5, "feature_flags", "saml")), Product: "coresdk", KeySet: k.ks, Now: c.Now})
	pl := e.Plan()
	if err := pl.CheckTenants(49); err != nil {
		t.Fatal(err)
	}
	err := pl.CheckTenants(50)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/tenants", nil)
	req.Header.Set("X-Request-Id", "01HX7KQMB4NWE9P6T2JS0RY3ZV")
	err.(*enforce.Problem).Write(rec, req)
	want := `{"type":"https://errors.coresdk.io/tenant/plan-limit","title":"Plan Limit Exceeded","status":403,"detail":"Your plan allows 50 tenants. Current count: 50.","trace_id":"01HX7KQMB4NWE9P6T2JS0RY3ZV"}`
	if rec.Code != 403 || rec.Body.String() != want {
		t.Fatalf("%d\n%s\nwant\n%s", rec.Code, rec.Body, want)
	}
	for i := 0; i < 5; i++ {
		if err := pl.TakeRequest(); err != nil {
			t.Fatalf("request %d of the burst: %v", i+1, err)
		}
	}
	err = pl.TakeRequest()
	if p, ok := err.(*enforce.Problem); !ok || p.Detail != "Your plan allows 5 requests per second." || p.RetryAfter <= 0 || p.RetryAfter > 200*time.Millisecond {
		t.Fatalf("the 6th request in a second: %v", err)
	}
	c.Add(200 * time.Millisecond) // one token back
	if err := pl.TakeRequest(); err != nil {
		t.Fatal(err)
	}
	if pl.TakeRequest() == nil {
		t.Fatal("only one token came back")
	}
	if err := pl.CheckFeature("saml"); err != nil {
		t.Fatal(err)
	}
	if err := pl.CheckFeature("scim"); err == nil || err.(*enforce.Problem).Detail != "Your plan does not include the feature scim." {
		t.Fatalf("%v", err)
	}
	c.Add(time.Second)
	h := pl.Middleware("saml", func(r *http.Request) string { return r.Header.Get("X-Tenant") })(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	req = httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Tenant", "acme-corp")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Collector())
	for name, want := range map[string]float64{"coresdk_license_tenants_active": 50, "coresdk_license_days_until_expiry": 365} {
		if got := gaugeValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if n := gaugeValue(t, reg, "coresdk_license_feature_blocked_total"); n != 1 {
		t.Errorf("feature_blocked_total %v", n)
	}
	if got := gaugeValue(t, reg, "coresdk_license_requests_total"); got != 1 {
		t.Errorf("requests_total %v", got)
	}
}

// The router's gauges and counters, read at scrape time.
func TestMetrics(t *testing.T) {
	k := newKit(t)
	now := time.Now().UTC()
	e := mustNew(t, enforce.Options{License: enforce.File(k.put("license.json", k.license(payload(licA, now)))), Product: router, KeySet: k.ks,
		Bundle: enforce.File(k.put("bundle.json", k.bundle(7, now)))})
	f := e.Feature("routing")
	f.Allow()
	e.Feature("pii_filtering").Allow()
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Collector())
	for name, want := range map[string]float64{"metrum_license_days_until_expiry": 365, "metrum_license_grace_active": 0,
		"metrum_license_bundle_sequence": 7, "metrum_license_requests_total": 2, "metrum_license_blocked_total": 1} {
		if got := gaugeValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if age := gaugeValue(t, reg, "metrum_license_bundle_age_seconds"); age < 3600 || age > 3700 {
		t.Errorf("bundle age %v", age)
	}
	out := exposition(t, reg)
	for _, want := range []string{`metrum_license_status{status="valid"} 1`, `metrum_license_status{status="blocked"} 0`,
		`metrum_license_info{customer_id="` + cust + `",key_id="` + k.lic.KeyID() + `",license_id="` + licA + `",reason="",sku="enterprise-annual",status="valid"} 1`,
		`metrum_license_blocked_total{feature="pii_filtering",reason="license-feature-forbidden"} 1`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "coresdk_") {
		t.Error("CoreSDK names for the router")
	}
}

// The token budget: counted through the recorder, refused once spent; a top-up (a new
// license ID) starts its own at zero; a rolling window answers 429 with Retry-After.
// A budget with no recorder to count it is refused.
func TestSpend(t *testing.T) {
	k := newKit(t)
	now := time.Now().UTC()
	rec, err := usage.Open(usage.Options{Dir: k.path("usage")})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	pa := payload(licA, now)
	pa.Limits = map[string]int64{"token_budget": 100}
	o := enforce.Options{License: enforce.File(k.put("license.json", k.license(pa))), Product: router, KeySet: k.ks, Usage: rec}
	e := mustNew(t, o)
	if p := e.Spend(60); p != nil {
		t.Fatal(p)
	}
	p := e.Spend(50)
	if p == nil || p.Status != 403 || p.Reason != enforce.ReasonLimitExceeded {
		t.Fatalf("%v", p)
	}
	pb := payload(licB, now)
	pb.Supersedes, pb.SKU = licA, "credit-pack-5m"
	pb.Limits = map[string]int64{"token_budget": 1000, "usage_window_seconds": 3600}
	k.put("license.json", k.license(pb))
	e.Reload()
	if p := e.Spend(1000); p != nil {
		t.Fatalf("the top-up's budget: %v", p)
	}
	p = e.Spend(1)
	if p == nil || p.Status != 429 || p.RetryAfter <= 0 {
		t.Fatalf("window spent: %+v", p)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Collector())
	if got := gaugeValue(t, reg, "metrum_usage_tokens_used"); got != 1000 {
		t.Errorf("tokens used %v", got)
	}
	if got := gaugeValue(t, reg, "metrum_usage_token_budget"); got != 1000 {
		t.Errorf("budget %v", got)
	}
	rec.Close() // the recorder no longer counts this license: refuse rather than not count
	if p := e.Spend(0); p == nil || p.Status != 403 || p.Reason != enforce.ReasonLimitExceeded {
		t.Fatalf("counted with the recorder closed: %+v", p)
	}

	o.Usage = nil
	if p := mustNew(t, o).Spend(1); p == nil || p.Reason != enforce.ReasonLimitExceeded {
		t.Fatal("a budget nobody counts was not refused")
	}
	k.put("license.json", k.license(payload(licA, now))) // no budget: nothing to count
	if p := mustNew(t, o).Spend(1); p != nil {
		t.Fatal(p)
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
		return sum
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// exposition renders what reg gathers as `name{a="x",b="y"} value` lines (labels
// sorted, as Prometheus's text format has them).
func exposition(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			fmt.Fprintf(&b, "%s %v\n", name, m.GetGauge().GetValue()+m.GetCounter().GetValue())
		}
	}
	return b.String()
}
