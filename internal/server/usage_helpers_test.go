package server_test

import (
	"context"
	"crypto/ed25519"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/oklog/ulid/v2"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/usage"
)

// testHost writes signed usage reports as a router host's recorder does (usage.Sign,
// a host key made now), one chain, and can write any report a host could, right or
// wrong, to prove the issuer's rules.
type testHost struct {
	t        *testing.T
	priv     ed25519.PrivateKey
	license  string
	product  string
	instance string
	fp       string
	seq      int64
	prev     string
	end      time.Time
	totals   map[string]int64
	// sent holds every envelope this host wrote and committed, by seq.
	sent map[int64][]byte
}

// newTestHost starts a chain for a license whose first period starts at start.
func newTestHost(t *testing.T, lic *entitlements.License, start time.Time) *testHost {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &testHost{t: t, priv: priv, license: lic.ID, product: lic.Product, instance: "ins_" + ulid.Make().String(),
		fp: lic.Terms.InstanceFingerprint, end: start.UTC().Truncate(time.Hour), totals: map[string]int64{}, sent: map[int64][]byte{}}
}

// payload is the next report of this chain covering d with these counters, not yet
// written: tests change it to break a rule.
func (h *testHost) payload(d time.Duration, counters map[string]int64) usage.Payload {
	totals := maps.Clone(h.totals)
	for k, v := range counters {
		totals[k] += v
	}
	p := usage.Payload{Schema: 1, LicenseID: h.license, Product: h.product, InstanceID: h.instance, InstanceFingerprint: h.fp,
		Seq: h.seq + 1, Prev: h.prev, PeriodStart: h.end.Format(time.RFC3339), PeriodEnd: h.end.Add(d).Format(time.RFC3339),
		Counters: counters, Totals: totals, Reporter: "usage-test/1"}
	if p.Seq == 1 {
		p.HostKey = usage.PublicJWK(h.priv.Public().(ed25519.PublicKey))
	}
	return p
}

// sign signs a payload with the host key.
func (h *testHost) sign(p usage.Payload) []byte {
	h.t.Helper()
	env, err := usage.Sign(h.priv, &p)
	if err != nil {
		h.t.Fatal(err)
	}
	return env
}

// commit makes env (of payload p) the chain's last report.
func (h *testHost) commit(p usage.Payload, env []byte) {
	h.seq, h.prev, h.totals = p.Seq, usage.Hash(env), p.Totals
	h.end, _ = time.Parse(time.RFC3339, p.PeriodEnd)
	h.sent[p.Seq] = env
}

// next writes the chain's next hourly report with these tokens (and one request).
func (h *testHost) next(tokens int64) []byte {
	p := h.payload(time.Hour, map[string]int64{"tokens": tokens, "requests": 1})
	env := h.sign(p)
	h.commit(p, env)
	return env
}

// nextN writes n hourly reports of tokens each.
func (h *testHost) nextN(n int, tokens int64) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = h.next(tokens)
	}
	return out
}

// postUsage uploads a body to POST /v1/usage with a bearer token.
func (e *portalEnv) postUsage(t *testing.T, token string, body []byte, contentType ...string) leaseResp {
	t.Helper()
	req, _ := http.NewRequest("POST", e.ts.URL+"/v1/usage", strings.NewReader(string(body)))
	ct := "application/json"
	if len(contentType) > 0 {
		ct = contentType[0]
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

// usageAnswer is the 200 answer, parsed with exact members only.
type usageAnswer struct {
	Accepted   int64 `json:"accepted"`
	Duplicates int64 `json:"duplicates"`
	Chains     []struct {
		LicenseID  string `json:"license_id"`
		InstanceID string `json:"instance_id"`
		LastSeq    int64  `json:"last_seq"`
	} `json:"chains"`
}

// wantAccepted checks a 200 answer with exactly these counts (negative: any).
func wantAccepted(t *testing.T, r leaseResp, accepted, duplicates int64) usageAnswer {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	var a usageAnswer
	if err := json.Unmarshal(r.body, &a, json.RejectUnknownMembers(true)); err != nil {
		t.Fatalf("answer %s: %v", r.body, err)
	}
	if (accepted >= 0 && a.Accepted != accepted) || (duplicates >= 0 && a.Duplicates != duplicates) {
		t.Fatalf("answer %s: want accepted %d, duplicates %d", r.body, accepted, duplicates)
	}
	return a
}

// usageProblem is a refused upload's problem.
type usageProblem struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	Status      int    `json:"status"`
	Detail      string `json:"detail"`
	RequestID   string `json:"request_id"`
	ReportIndex *int   `json:"report_index"`
	NextSeq     *int64 `json:"next_seq"`
}

// wantRefused checks a refusal: status, problem type, request ID, report_index (and
// next_seq for a gap, absent otherwise).
func wantRefused(t *testing.T, r leaseResp, code string, index int, nextSeq int64) usageProblem {
	t.Helper()
	status := 409
	if code == entitlements.EUSAGEINVALID {
		status = 422
	}
	var p usageProblem
	if err := json.Unmarshal(r.body, &p, json.RejectUnknownMembers(true)); err != nil {
		t.Fatalf("%d %s: %v", r.status, r.body, err)
	}
	if r.status != status || p.Status != status || p.Type != "https://metrum.ai/problems/"+code || p.RequestID == "" ||
		r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("want %d %s, got %d %s", status, code, r.status, r.body)
	}
	if p.ReportIndex == nil || *p.ReportIndex != index {
		t.Fatalf("want report_index %d: %s", index, r.body)
	}
	if (code == entitlements.EUSAGEGAP) != (p.NextSeq != nil) || (p.NextSeq != nil && *p.NextSeq != nextSeq) {
		t.Fatalf("want next_seq %d only for a gap: %s", nextSeq, r.body)
	}
	return p
}

// usageRows counts the rows of every usage table (a refused upload adds none).
func (e *portalEnv) usageRows(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, tbl := range []string{"usage_reports", "usage_chains", "usage_daily", "usage_licenses", "usage_incidents", "usage_warnings", "usage_warning_mails"} {
		var n int64
		if err := e.store.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+tbl).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[tbl] = n
	}
	return out
}

// tokensOf is what the issuer counts for a license: the daily rollups' tokens.
func (e *portalEnv) tokensOf(t *testing.T, licenseID string) int64 {
	t.Helper()
	var n int64
	if err := e.store.Pool().QueryRow(context.Background(), `SELECT coalesce(sum(amount), 0) FROM usage_daily WHERE license_id = $1 AND counter = 'tokens'`, licenseID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// issueWith makes, approves and issues a license from a template with overrides.
func (e *portalEnv) issueWith(t *testing.T, customerID, tmpl string, limits map[string]int64) *entitlements.License {
	t.Helper()
	ctx := context.Background()
	ent, err := e.svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: customerID, Template: tmpl,
		Overrides: entitlements.Overrides{Limits: limits}}, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, ent.ID, e.check); err != nil {
		t.Fatal(err)
	}
	l, _, err := e.svc.IssueWithToken(ctx, ent.ID, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
