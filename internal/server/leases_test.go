package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/leases"
	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/internal/ratelimit"
	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/verify"
)

type leaseEnv struct {
	svc     *issuance.Service
	store   *storage.Store
	ts      *httptest.Server
	metrics *server.Metrics
	keyset  *verify.KeySet
	limiter *ratelimit.Limiter
}

var (
	lAdmin   = &entitlements.Staff{Email: "admin@m.test", Role: entitlements.RoleAdmin}
	lMaker   = &entitlements.Staff{Email: "maker@m.test", Role: entitlements.RoleIssuer}
	lChecker = &entitlements.Staff{Email: "checker@m.test", Role: entitlements.RoleApprover}
)

// mustLeaseServer runs the real handler with the batching lease service over a fresh
// database, with the router's license, revocation and lease keys. rate 0: no limit.
func mustLeaseServer(t *testing.T, rate float64, burst int, opts ...func(*server.Server)) *leaseEnv {
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
	for _, p := range []verify.Purpose{verify.PurposeLicense, verify.PurposeRevocation, verify.PurposeLease} {
		if _, err := svc.GenerateKey(ctx, entitlements.KeyInput{Product: "genai-smart-router", Alg: verify.AlgEdDSA, Purposes: []verify.Purpose{p}}, true, lAdmin); err != nil {
			t.Fatal(err)
		}
	}
	metrics := server.NewMetrics()
	limiter := ratelimit.New(rate, burst, 0)
	ls := leases.New(store, svc, leases.Options{Products: []string{"genai-smart-router"}, ObserveBatch: metrics.ObserveBatch,
		Limiter: limiter})
	go ls.Run(ctx)
	srv := &server.Server{Svc: svc, Leases: ls, Metrics: metrics, MetricsOpen: true,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(srv)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	set, err := svc.PublicKeySet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := verify.ParseKeySet(set)
	if err != nil {
		t.Fatal(err)
	}
	return &leaseEnv{svc: svc, store: store, ts: ts, metrics: metrics, keyset: ks, limiter: limiter}
}

// mustLeaseLicense issues a lease-required pilot license and returns it with its token.
func (e *leaseEnv) mustLeaseLicense(t *testing.T, in entitlements.EntitlementInput) (*entitlements.License, string) {
	t.Helper()
	ctx := context.Background()
	c := &entitlements.Customer{Name: "Router Fleet Inc"}
	if err := e.svc.CreateCustomer(ctx, c, lMaker); err != nil {
		t.Fatal(err)
	}
	in.CustomerID, in.Template = c.ID, "pilot-30d"
	ent, err := e.svc.CreateEntitlement(ctx, in, lMaker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, ent.ID, lChecker); err != nil {
		t.Fatal(err)
	}
	l, tok, err := e.svc.IssueWithToken(ctx, ent.ID, lMaker)
	if err != nil {
		t.Fatal(err)
	}
	return l, tok
}

type leaseResp struct {
	status int
	header http.Header
	body   []byte
}

func (e *leaseEnv) post(t *testing.T, token, body string) leaseResp {
	t.Helper()
	req, _ := http.NewRequest("POST", e.ts.URL+"/v1/leases", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

func (e *leaseEnv) grant(t *testing.T, token, licenseID, fp string) leaseResp {
	t.Helper()
	return e.post(t, token, fmt.Sprintf(`{"license_id":%q,"instance_fingerprint":%q}`, licenseID, fp))
}

func do(t *testing.T, req *http.Request) leaseResp {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return leaseResp{resp.StatusCode, resp.Header, b}
}

type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id"`
}

// wantProblem checks an RFC 9457 answer: status, type ending in the code, a request ID.
func wantProblem(t *testing.T, r leaseResp, status int, code string) problem {
	t.Helper()
	var p problem
	if r.status != status || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %s %s, want %d problem+json", r.status, r.header.Get("Content-Type"), r.body, status)
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p.Type, "/"+code) || p.Status != status || p.RequestID == "" || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem %+v, want type …/%s", p, code)
	}
	return p
}

func (e *leaseEnv) lease(t *testing.T, r leaseResp) *verify.Lease {
	t.Helper()
	if r.status != 200 || r.header.Get("Content-Type") != "application/vnd.metrum.lease.v1+json" {
		t.Fatalf("lease response %d %s: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	l, err := verify.ParseLeaseFile(r.body, e.keyset)
	if err != nil {
		t.Fatalf("the lease does not verify: %v", err)
	}
	return l
}

// TestLeaseGrantRenewAndVerify: a host gets a lease the verifier accepts with the
// license; renewing keeps its slot and lease ID; every step leaves a row.
func TestLeaseGrantRenewAndVerify(t *testing.T) {
	e := mustLeaseServer(t, 0, 0)
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{})
	first := e.lease(t, e.grant(t, tok, lic.ID, "host-a"))
	if first.LicenseID != lic.ID || first.InstanceFingerprint != "host-a" || first.ExpiresAt.Sub(first.IssuedAt) != 6*time.Hour {
		t.Fatalf("lease %+v", first)
	}
	dir := t.TempDir()
	lp, sp := filepath.Join(dir, "license.json"), filepath.Join(dir, "lease.json")
	os.WriteFile(lp, lic.File, 0o644)
	os.WriteFile(sp, e.grant(t, tok, lic.ID, "host-a").body, 0o644)
	r := verify.Verify(verify.Options{LicensePath: lp, LeasePath: sp, InstanceFingerprint: "host-a", Product: "genai-smart-router",
		KeySet: e.keyset, Now: time.Now()})
	if r.Status != verify.StatusValid || r.LeaseExpiresAt == nil {
		t.Fatalf("verifier on an API lease: %s %s (%s)", r.Status, r.Reason, r.Detail)
	}
	r = verify.Verify(verify.Options{LicensePath: lp, LeasePath: sp, InstanceFingerprint: "host-b", KeySet: e.keyset, Now: time.Now()})
	if r.Reason != verify.ReasonLeaseInvalid {
		t.Fatalf("another host with this lease: %s", r.Reason)
	}
	renewed := e.lease(t, e.grant(t, tok, lic.ID, "host-a"))
	if renewed.LeaseID != first.LeaseID || renewed.ExpiresAt.Before(first.ExpiresAt) {
		t.Fatalf("renewal changed the slot: %s → %s", first.LeaseID, renewed.LeaseID)
	}
	var outcomes []string
	rows, _ := e.store.Pool().Query(context.Background(), `SELECT outcome FROM lease_events WHERE license_id = $1 ORDER BY id`, lic.ID)
	for rows.Next() {
		var o string
		rows.Scan(&o)
		outcomes = append(outcomes, o)
	}
	if strings.Join(outcomes, ",") != "granted,renewed,renewed" {
		t.Fatalf("lease events: %v", outcomes)
	}
}

// TestLeaseErrors covers every error status of lease-api.md.
func TestLeaseErrors(t *testing.T) {
	e := mustLeaseServer(t, 0, 0)
	ctx := context.Background()
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{InstanceFingerprint: "host-1"})
	free, freeTok := e.mustLeaseLicense(t, entitlements.EntitlementInput{})

	// 401: missing, wrong, unknown license, another license's token: one answer.
	p1 := wantProblem(t, e.grant(t, "", lic.ID, "host-1"), 401, "unauthorized")
	p2 := wantProblem(t, e.grant(t, freeTok, lic.ID, "host-1"), 401, "unauthorized")
	p3 := wantProblem(t, e.grant(t, tok, "lic_01HZY3QK8Y0000000000000001", "host-1"), 401, "unauthorized")
	if p1.Detail != p2.Detail || p2.Detail != p3.Detail || p1.RequestID == p2.RequestID {
		t.Fatalf("401 answers differ: %+v %+v %+v", p1, p2, p3)
	}
	// 413 and 400.
	wantProblem(t, e.post(t, tok, `{"license_id":"`+strings.Repeat("x", 5000)+`"}`), 413, "too-large")
	for name, body := range map[string]string{
		"not json":       `license_id=lic_x`,
		"unknown member": `{"license_id":"` + lic.ID + `","instance_fingerprint":"h","extra":1}`,
		"duplicate":      `{"license_id":"` + lic.ID + `","license_id":"` + lic.ID + `","instance_fingerprint":"h"}`,
		"case variant":   `{"License_id":"` + lic.ID + `","instance_fingerprint":"h"}`,
		"bad license id": `{"license_id":"lic_nope","instance_fingerprint":"h"}`,
		"bad host":       `{"license_id":"` + lic.ID + `","instance_fingerprint":"bad host"}`,
		"array":          `[]`,
	} {
		t.Run(name, func(t *testing.T) { wantProblem(t, e.post(t, tok, body), 400, "invalid") })
	}
	req, _ := http.NewRequest("POST", e.ts.URL+"/v1/leases", strings.NewReader(`{"license_id":"`+lic.ID+`","instance_fingerprint":"h"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "text/plain")
	wantProblem(t, do(t, req), 400, "invalid")

	// 403: instance binding, not yet valid, expired, revoked, suspended, superseded.
	wantProblem(t, e.grant(t, tok, lic.ID, "host-2"), 403, verify.ReasonInstanceMismatch)
	later, laterTok := e.mustLeaseLicense(t, entitlements.EntitlementInput{StartsAt: time.Now().Add(48 * time.Hour)})
	wantProblem(t, e.grant(t, laterTok, later.ID, "h"), 403, verify.ReasonNotYetValid)
	old, oldTok := e.mustLeaseLicense(t, entitlements.EntitlementInput{})
	e.store.Pool().Exec(ctx, `UPDATE licenses SET not_before = now() - interval '40 days', expires_at = now() - interval '1 day' WHERE id = $1`, old.ID)
	wantProblem(t, e.grant(t, oldTok, old.ID, "h"), 403, verify.ReasonExpired)
	for _, c := range []struct{ action, reason string }{
		{entitlements.ActionSuspend, verify.ReasonSuspended}, {entitlements.ActionRevoke, verify.ReasonRevoked},
	} {
		l, lt := e.mustLeaseLicense(t, entitlements.EntitlementInput{})
		e.lease(t, e.grant(t, lt, l.ID, "h"))
		if _, err := e.svc.ChangeStatus(ctx, l.ID, c.action, "test", time.Time{}, lChecker); err != nil {
			t.Fatal(err)
		}
		wantProblem(t, e.grant(t, lt, l.ID, "h"), 403, c.reason)
	}
	sup, supTok := e.mustLeaseLicense(t, entitlements.EntitlementInput{})
	zero := time.Duration(0)
	ent, err := e.svc.CreateSuccessor(ctx, entitlements.SuccessorInput{Kind: entitlements.KindTopUp, LicenseID: sup.ID, Template: "credit-pack-5m", Changeover: &zero}, lMaker)
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Approve(ctx, ent.ID, lChecker)
	if _, err := e.svc.Issue(ctx, ent.ID, lMaker); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, e.grant(t, supTok, sup.ID, "h"), 403, verify.ReasonSuperseded)

	// 409: pilot-30d allows 2 instances.
	e.lease(t, e.grant(t, freeTok, free.ID, "h1"))
	e.lease(t, e.grant(t, freeTok, free.ID, "h2"))
	wantProblem(t, e.grant(t, freeTok, free.ID, "h3"), 409, verify.ReasonLimitExceeded)
	// The holders still renew at the limit.
	e.lease(t, e.grant(t, freeTok, free.ID, "h1"))

	// Refusals leave rows with their reasons.
	var n int
	e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM lease_events WHERE license_id = $1 AND outcome = 'refused' AND reason = 'license-limit-exceeded'`, free.ID).Scan(&n)
	if n != 1 {
		t.Fatalf("refusal rows: %d", n)
	}
}

// TestLeaseReleaseAndTokenRotation: DELETE frees the slot at once and is idempotent;
// a rotated token stops working at once.
func TestLeaseReleaseAndTokenRotation(t *testing.T) {
	e := mustLeaseServer(t, 0, 0)
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{})
	a := e.lease(t, e.grant(t, tok, lic.ID, "h1"))
	e.lease(t, e.grant(t, tok, lic.ID, "h2"))
	wantProblem(t, e.grant(t, tok, lic.ID, "h3"), 409, verify.ReasonLimitExceeded)
	del := func(token, id string) leaseResp {
		req, _ := http.NewRequest("DELETE", e.ts.URL+"/v1/leases/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return do(t, req)
	}
	wantProblem(t, del("wrong-token", a.LeaseID), 401, "unauthorized")
	wantProblem(t, del(tok, "lea_nope"), 400, "invalid")
	for range 2 {
		if r := del(tok, a.LeaseID); r.status != 204 {
			t.Fatalf("release: %d %s", r.status, r.body)
		}
	}
	if r := del(tok, "lea_01HZY3QK8Y0000000000000009"); r.status != 204 {
		t.Fatalf("release of an unknown lease: %d", r.status)
	}
	e.lease(t, e.grant(t, tok, lic.ID, "h3")) // the freed slot

	next, err := e.svc.RotateLeaseToken(context.Background(), lic.ID, lMaker)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, e.grant(t, tok, lic.ID, "h2"), 401, "unauthorized")
	e.lease(t, e.grant(t, next, lic.ID, "h2"))
}

func TestLeaseRateLimit(t *testing.T) {
	e := mustLeaseServer(t, 1, 2)
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{})
	e.lease(t, e.grant(t, tok, lic.ID, "h1"))
	e.lease(t, e.grant(t, tok, lic.ID, "h1"))
	r := e.grant(t, tok, lic.ID, "h1")
	wantProblem(t, r, 429, "rate-limited")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Another license's token has its own bucket.
	other, otherTok := e.mustLeaseLicense(t, entitlements.EntitlementInput{})
	e.lease(t, e.grant(t, otherTok, other.ID, "h1"))
}

// TestLeaseSeatRace: 200 new hosts at once against max_instances = 5 get exactly 5
// leases; the database holds exactly 5 live slots.
func TestLeaseSeatRace(t *testing.T) {
	e := mustLeaseServer(t, 0, 0)
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{Overrides: entitlements.Overrides{Limits: map[string]int64{"max_instances": 5}}})
	const n = 200
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body := fmt.Sprintf(`{"license_id":%q,"instance_fingerprint":"host-%03d"}`, lic.ID, i)
			req, _ := http.NewRequest("POST", e.ts.URL+"/v1/leases", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	got := map[int]int{}
	for _, c := range codes {
		got[c]++
	}
	if got[200] != 5 || got[409] != n-5 {
		t.Fatalf("status counts %v, want 5 × 200 and %d × 409", got, n-5)
	}
	var live int
	e.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM leases WHERE license_id = $1 AND expires_at > now() AND released_at IS NULL`, lic.ID).Scan(&live)
	if live != 5 {
		t.Fatalf("%d live slots", live)
	}
	m := e.scrape(t)
	if !strings.Contains(m, `metrum_lease_requests_total{outcome="granted",reason=""} 5`) ||
		!strings.Contains(m, `metrum_lease_requests_total{outcome="refused",reason="license-limit-exceeded"} 195`) {
		t.Fatalf("metrics:\n%s", grep(m, "metrum_lease"))
	}
}

// TestLeaseDatabaseOutage stops the database mid-run: answers are 503 and no lease is
// handed out; after a restart the API recovers, and every lease it handed out has
// its row.
func TestLeaseDatabaseOutage(t *testing.T) {
	cl := pgtest.OwnCluster(t, "this test stops the database")
	e := mustLeaseServer(t, 0, 0)
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{Overrides: entitlements.Overrides{Limits: map[string]int64{"max_instances": 50}}})
	var handedOut []string
	grant := func(fp string) leaseResp {
		r := e.grant(t, tok, lic.ID, fp)
		if r.status == 200 {
			handedOut = append(handedOut, e.lease(t, r).LeaseID)
		}
		return r
	}
	if r := grant("before"); r.status != 200 {
		t.Fatalf("before the outage: %d", r.status)
	}
	if err := cl.Stop(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			cl.Restart(context.Background())
		}
	}()
	for i := range 5 {
		wantProblem(t, grant(fmt.Sprintf("during-%d", i)), 503, "unavailable")
	}
	if r := do(t, mustReq(t, "GET", e.ts.URL+"/readyz")); r.status != 503 {
		t.Fatalf("readyz during the outage: %d", r.status)
	}
	if err := cl.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		r := grant(fmt.Sprintf("after-%d", i))
		if r.status == 200 {
			break
		}
		if r.status != 503 || time.Now().After(deadline) {
			t.Fatalf("after the restart: %d %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, id := range handedOut {
		var n int
		e.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM lease_events WHERE lease_id = $1 AND outcome = 'granted'`, id).Scan(&n)
		if n != 1 {
			t.Fatalf("lease %s was handed out without its row", id)
		}
	}
	if len(handedOut) != 2 {
		t.Fatalf("%d leases handed out, want 2 (one before, one after)", len(handedOut))
	}
}

func mustReq(t *testing.T, method, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *leaseEnv) scrape(t *testing.T) string {
	t.Helper()
	r := do(t, mustReq(t, "GET", e.ts.URL+"/metrics"))
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	return string(r.body)
}

func grep(s, sub string) string {
	var out bytes.Buffer
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out.WriteString(l + "\n")
		}
	}
	return out.String()
}

// TestLeaseRenewalsRaceNewHosts: five holders renew in a loop (shared-lock batches)
// while twenty newcomers try to take slots (exclusive batches) and two holders release
// theirs. The limit holds throughout: newcomers get exactly the two freed slots.
func TestLeaseRenewalsRaceNewHosts(t *testing.T) {
	e := mustLeaseServer(t, 0, 0)
	ctx := context.Background()
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{Overrides: entitlements.Overrides{Limits: map[string]int64{"max_instances": 5}}})
	held := make([]*verify.Lease, 5)
	for i := range held {
		held[i] = e.lease(t, e.grant(t, tok, lic.ID, fmt.Sprintf("holder-%d", i)))
	}
	stop := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	newcomers := map[string]bool{}
	for i := range 5 { // holders renew; 0 and 1 release halfway
		wg.Add(1)
		go func() {
			defer wg.Done()
			released := false
			for time.Now().Before(stop) {
				if i < 2 && !released && time.Until(stop) < 750*time.Millisecond {
					req, _ := http.NewRequest("DELETE", e.ts.URL+"/v1/leases/"+held[i].LeaseID, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					if r := do(t, req); r.status != 204 {
						t.Errorf("release: %d", r.status)
					}
					released = true
				}
				if released {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if r := e.grant(t, tok, lic.ID, fmt.Sprintf("holder-%d", i)); r.status != 200 {
					t.Errorf("holder %d renewal: %d %s", i, r.status, r.body)
					return
				}
			}
		}()
	}
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fp := fmt.Sprintf("newcomer-%d", i)
			for time.Now().Before(stop) {
				r := e.grant(t, tok, lic.ID, fp)
				switch r.status {
				case 200:
					mu.Lock()
					newcomers[fp] = true
					mu.Unlock()
				case 409:
				default:
					t.Errorf("newcomer: %d %s", r.status, r.body)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	// Sample the invariant while the storm runs.
	for time.Now().Before(stop) {
		var live int
		e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM leases WHERE license_id = $1 AND expires_at > now() AND released_at IS NULL`, lic.ID).Scan(&live)
		if live > 5 {
			t.Fatalf("%d live slots, limit 5", live)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	if len(newcomers) != 2 {
		t.Fatalf("%d newcomers got slots, want exactly the 2 released: %v", len(newcomers), newcomers)
	}
	var live int
	e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM leases WHERE license_id = $1 AND expires_at > now() AND released_at IS NULL`, lic.ID).Scan(&live)
	if live != 5 {
		t.Fatalf("%d live slots at the end", live)
	}
}
