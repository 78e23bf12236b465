package enforce_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metrum/licensing/enforce"
)

// A router embeds the enforcer: New checks at start, Run keeps the verdict current
// (interval, SIGHUP, changed files), a Feature gates a route, and the collector
// serves the gauges. Here the license and key set are made for the example; a release
// build parses keys.ReleaseKeySet.
func Example() {
	k := newKit(exampleTB{})
	defer os.RemoveAll(k.dir)
	licensePath := k.put("license.json", k.license(payload(licA, time.Now())))

	e, err := enforce.New(enforce.Options{
		License:                enforce.File(licensePath),
		Product:                "genai-smart-router",
		KeySet:                 k.ks,
		StatePath:              k.path("license-state.json"),
		RecheckInterval:        time.Hour,
		GraceOnValidationError: 24 * time.Hour,
	})
	if err != nil {
		panic(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)

	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Collector())

	mux := http.NewServeMux()
	chat := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "routed") })
	mux.Handle("POST /v1/chat", e.Feature("routing").Gate(chat))
	mux.Handle("POST /v1/redact", e.Feature("pii_filtering").Gate(chat))
	h := enforce.WithRequestID(mux)

	for _, path := range []string{"/v1/chat", "/v1/redact"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
		fmt.Println(path, rec.Code, rec.Header().Get("Content-Type"))
	}
	s := e.Status()
	fmt.Println(s.State, s.LicenseID, s.DaysUntilExpiry, s.Features)
	// Output:
	// /v1/chat 200 text/plain; charset=utf-8
	// /v1/redact 403 application/problem+json
	// valid lic_01HZY3QK8Y0000000000000001 365 [admin_reports routing]
}

// Allow and Limit are what a handler asks per request: one atomic load, no I/O.
func ExampleEnforcer_Allow() {
	k := newKit(exampleTB{})
	defer os.RemoveAll(k.dir)
	e, _ := enforce.New(enforce.Options{License: enforce.Bytes(k.license(payload(licA, time.Now()))),
		Product: "genai-smart-router", KeySet: k.ks, NoSIGHUP: true})
	maxConcurrency, limited := e.Limit("max_concurrency")
	fmt.Println(e.Allow("routing"), e.Allow("pii_filtering"), maxConcurrency, limited)
	// Output: true false 8 true
}

// CoreSDK's plan checks: a tenant beyond max_tenants is refused with CoreSDK's
// plan-limit problem, as its document shows it.
func ExamplePlan_CheckTenants() {
	k := newKit(exampleTB{})
	defer os.RemoveAll(k.dir)
	e, _ := enforce.New(enforce.Options{License: enforce.Bytes(k.token(time.Now(), 50, 5000, "feature_flags", "saml")),
		Product: "coresdk", KeySet: k.ks, NoSIGHUP: true})
	err := e.Plan().CheckTenants(50)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/tenants", nil)
	req.Header.Set("X-Request-Id", "01HX7KQMB4NWE9P6T2JS0RY3ZV")
	err.(*enforce.Problem).Write(rec, req)
	fmt.Println(rec.Code, rec.Body)
	// Output: 403 {"type":"https://errors.coresdk.io/tenant/plan-limit","title":"Plan Limit Exceeded","status":403,"detail":"Your plan allows 50 tenants. Current count: 50.","trace_id":"01HX7KQMB4NWE9P6T2JS0RY3ZV"}
}

// Status is the safe status; its JSON is the /admin/license/status body.
func ExampleStatus_MarshalJSON() {
	k := newKit(exampleTB{})
	defer os.RemoveAll(k.dir)
	e, _ := enforce.New(enforce.Options{License: enforce.File(k.path("absent.json")), Product: "genai-smart-router", KeySet: k.ks, NoSIGHUP: true})
	b, _ := e.Status().MarshalJSON()
	fmt.Println(string(b))
	// Output: {"status":"blocked","reason":"license-missing","license_id":"","customer_id":"","sku":"","key_id":"","expires_at":null,"days_until_expiry":null,"features":[],"limits":{},"grace_active":false,"bundle_sequence":null}
}
