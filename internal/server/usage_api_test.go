package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/usage"
	"github.com/metrum/licensing/verify"
)

// TestUsageChainRules walks one host's chain through every rule of usage.md section 3
// over the real POST /v1/usage: a chain's first report binds its key; the rest are
// signed by it and continue it (seq, prev, period, totals); exact duplicates are
// idempotent; a fork and a gap are refused with report_index (and next_seq), recorded
// for staff, and the reports before them in the same body are kept.
func TestUsageChainRules(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	h := newTestHost(t, a.router, time.Now().Add(-72*time.Hour))

	// One envelope, the chain's first: the answer says what is next.
	first := h.next(100)
	ans := wantAccepted(t, e.postUsage(t, a.token, first), 1, 0)
	if len(ans.Chains) != 1 || ans.Chains[0].LicenseID != a.router.ID || ans.Chains[0].InstanceID != h.instance || ans.Chains[0].LastSeq != 1 {
		t.Fatalf("chains: %+v", ans.Chains)
	}
	// A body of reports.
	ans = wantAccepted(t, e.postUsage(t, a.token, usage.MarshalBatch(h.nextN(3, 100))), 3, 0)
	if ans.Chains[0].LastSeq != 4 {
		t.Fatalf("last_seq %d, want 4", ans.Chains[0].LastSeq)
	}
	// Everything again (a host re-sending since its last acknowledgement): duplicates,
	// nothing counted twice.
	all := [][]byte{h.sent[1], h.sent[2], h.sent[3], h.sent[4]}
	before := e.usageRows(t)
	wantAccepted(t, e.postUsage(t, a.token, usage.MarshalBatch(all)), 0, 4)
	if after := e.usageRows(t); after["usage_reports"] != before["usage_reports"] || e.tokensOf(t, a.router.ID) != 400 {
		t.Fatalf("duplicates changed something: %v → %v, %d tokens", before, after, e.tokensOf(t, a.router.ID))
	}

	// Signature: signed by another key than the one bound at seq 1.
	p := h.payload(time.Hour, map[string]int64{"tokens": 1, "requests": 1})
	_, other, _ := ed25519.GenerateKey(nil)
	forged, _ := usage.Sign(other, &p)
	wantRefused(t, e.postUsage(t, a.token, forged), entitlements.EUSAGEINVALID, 0, 0)
	// The right key, a signature byte flipped.
	good := h.sign(p)
	bad := strings.Replace(string(good), `"signature":"`, `"signature":"A`, 1)
	wantRefused(t, e.postUsage(t, a.token, []byte(bad)), entitlements.EUSAGEINVALID, 0, 0)

	// Continuity: a period that does not start where the last ended.
	q := h.payload(time.Hour, map[string]int64{"tokens": 1, "requests": 1})
	q.PeriodStart, q.PeriodEnd = h.end.Add(time.Hour).Format(time.RFC3339), h.end.Add(2*time.Hour).Format(time.RFC3339)
	wantRefused(t, e.postUsage(t, a.token, h.sign(q)), entitlements.EUSAGEINVALID, 0, 0)
	// Totals that are not the running sums.
	q = h.payload(time.Hour, map[string]int64{"tokens": 1, "requests": 1})
	q.Totals["tokens"]++
	wantRefused(t, e.postUsage(t, a.token, h.sign(q)), entitlements.EUSAGEINVALID, 0, 0)
	// prev that is not the last accepted report: a fork.
	q = h.payload(time.Hour, map[string]int64{"tokens": 1, "requests": 1})
	q.Prev = usage.Hash(h.sent[2])
	wantRefused(t, e.postUsage(t, a.token, h.sign(q)), entitlements.EUSAGEFORK, 0, 0)
	// An accepted seq with other bytes: a fork, recorded, never overwriting.
	q = h.payload(time.Hour, map[string]int64{"tokens": 999, "requests": 1})
	q.Seq, q.Prev = 3, usage.Hash(h.sent[2])
	q.PeriodStart, q.PeriodEnd = h.end.Add(-2*time.Hour).Format(time.RFC3339), h.end.Add(-time.Hour).Format(time.RFC3339)
	fork := h.sign(q)
	wantRefused(t, e.postUsage(t, a.token, fork), entitlements.EUSAGEFORK, 0, 0)
	var kept []byte
	e.store.Pool().QueryRow(context.Background(), `SELECT envelope FROM usage_reports WHERE license_id = $1 AND instance_id = $2 AND seq = 3`,
		a.router.ID, h.instance).Scan(&kept)
	if string(kept) != string(h.sent[3]) {
		t.Fatal("the fork overwrote the accepted report")
	}
	var forks int
	sum := sha256.Sum256(fork)
	e.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM usage_incidents WHERE kind = 'fork' AND seq = 3 AND envelope_sha256 = $1`, sum[:]).Scan(&forks)
	if forks != 1 {
		t.Fatalf("the fork was not recorded for staff (%d rows)", forks)
	}

	// A gap: seq 7 after 4, in a body after a good seq 5, which is kept.
	s5 := h.next(100)
	h.next(100) // seq 6, lost
	s7 := h.next(100)
	wantRefused(t, e.postUsage(t, a.token, usage.MarshalBatch([][]byte{s5, s7})), entitlements.EUSAGEGAP, 1, 6)
	if n := e.tokensOf(t, a.router.ID); n != 500 {
		t.Fatalf("the report before the gap was not kept: %d tokens", n)
	}
	// The gap's answer names the seq needed; sending it continues the chain.
	wantAccepted(t, e.postUsage(t, a.token, usage.MarshalBatch([][]byte{h.sent[5], h.sent[6], s7})), 2, 1)

	// A chain the issuer holds nothing of, from after its seq 1: needs seq 1.
	lost := newTestHost(t, a.router, time.Now().Add(-10*time.Hour))
	lost.next(1)
	wantRefused(t, e.postUsage(t, a.token, lost.next(1)), entitlements.EUSAGEGAP, 0, 1)

	// The staff view names the flags.
	o, err := e.usage.LicenseUsage(context.Background(), a.router.ID, 0, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	fork2, gap, restart, _ := o.Flags()
	if !fork2 || !gap || restart || o.Totals.Tokens != 700 || o.Totals.Reports != 7 {
		t.Fatalf("flags fork=%v gap=%v restart=%v, %d tokens, %d reports", fork2, gap, restart, o.Totals.Tokens, o.Totals.Reports)
	}
}

// TestUsageRestart: a host whose chain was refused (fork or gap) starts a new chain
// with a new instance_id and key, as usage.Recorder does; the issuer records it as a
// restart of the old one, which is then not stale.
func TestUsageRestart(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	old := newTestHost(t, a.router, time.Now().Add(-30*time.Hour))
	wantAccepted(t, e.postUsage(t, a.token, usage.MarshalBatch(old.nextN(2, 10))), 2, 0)
	old.next(10) // lost
	wantRefused(t, e.postUsage(t, a.token, old.next(10)), entitlements.EUSAGEGAP, 0, 3)
	// The host re-signs what the issuer did not take as a new chain.
	fresh := newTestHost(t, a.router, old.end.Add(-2*time.Hour))
	wantAccepted(t, e.postUsage(t, a.token, usage.MarshalBatch(fresh.nextN(2, 10))), 2, 0)
	// A second instance of the same license, starting at another time, is no restart.
	other := newTestHost(t, a.router, time.Now().Add(-90*time.Minute))
	wantAccepted(t, e.postUsage(t, a.token, other.next(1)), 1, 0)
	o, err := e.usage.LicenseUsage(context.Background(), a.router.ID, 0, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]entitlements.UsageChain{}
	for _, c := range o.Chains {
		byID[c.InstanceID] = c
	}
	if byID[fresh.instance].RestartOf != old.instance || byID[old.instance].RestartedBy != fresh.instance || byID[other.instance].RestartOf != "" {
		t.Fatalf("restart not recorded: %+v", o.Chains)
	}
	if byID[old.instance].Stale(o.Now) {
		t.Fatal("a restarted chain is not stale: the new one took over")
	}
	if !byID[other.instance].Stale(o.Now.Add(4*time.Hour)) || byID[other.instance].Stale(o.Now) {
		t.Fatal("stale is three report periods of silence")
	}
	if _, _, restart, _ := o.Flags(); !restart {
		t.Fatal("no restart flag")
	}
}

// TestUsageCredentials: the lease token reports for its license and those it
// supersedes; a customer API token for any of its customer's licenses; another
// customer's license is refused exactly like one that does not exist; 401 without a
// good token; the curl line of README (--data-binary: a form's Content-Type) works.
func TestUsageCredentials(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	b := e.tenant(t, "Globex", "ops@globex.test")
	ctx := context.Background()

	// The pilot's lease token, for the pilot.
	hp := newTestHost(t, a.pilot, time.Now().Add(-5*time.Hour))
	wantAccepted(t, e.postUsage(t, a.leaseTok, hp.next(5)), 1, 0)
	// …not for the customer's other license.
	hr := newTestHost(t, a.router, time.Now().Add(-5*time.Hour))
	r := wantRefused(t, e.postUsage(t, a.leaseTok, hr.next(5)), entitlements.EUSAGEINVALID, 0, 0)
	if !strings.Contains(r.Detail, "unknown, or not one this credential may report for") {
		t.Fatalf("detail: %s", r.Detail)
	}
	// A top-up supersedes the pilot: its lease token still takes the pilot's reports.
	zero := time.Duration(0)
	ent, err := e.svc.CreateSuccessor(ctx, entitlements.SuccessorInput{Kind: entitlements.KindTopUp, LicenseID: a.pilot.ID, Template: "credit-pack-5m", Changeover: &zero}, e.maker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, ent.ID, e.check); err != nil {
		t.Fatal(err)
	}
	top, topTok, err := e.svc.IssueWithToken(ctx, ent.ID, e.maker)
	if err != nil || topTok == "" {
		t.Fatalf("top-up: %v (lease token %q)", err, topTok)
	}
	wantAccepted(t, e.postUsage(t, topTok, hp.next(5)), 1, 0)
	ht := newTestHost(t, top, time.Now().Add(-3*time.Hour))
	wantAccepted(t, e.postUsage(t, topTok, ht.next(7)), 1, 0)
	// The old license's token does not reach its successor.
	wantRefused(t, e.postUsage(t, a.leaseTok, ht.next(7)), entitlements.EUSAGEINVALID, 0, 0)

	// The customer API token: any of the customer's licenses, with curl's Content-Type.
	wantAccepted(t, e.postUsage(t, a.token, hr.sent[1], "application/x-www-form-urlencoded"), 1, 0)
	wantAccepted(t, e.postUsage(t, a.token, hr.next(1), ""), 1, 0)

	// Another customer's license answers exactly like a missing one.
	foreign := wantRefused(t, e.postUsage(t, b.token, hr.next(1)), entitlements.EUSAGEINVALID, 0, 0)
	ghost := &entitlements.License{ID: "lic_01HZY3QK8Y0000000000000009", Product: "genai-smart-router"}
	hg := newTestHost(t, ghost, time.Now().Add(-3*time.Hour))
	missing := wantRefused(t, e.postUsage(t, b.token, hg.next(1)), entitlements.EUSAGEINVALID, 0, 0)
	if strings.Replace(foreign.Detail, a.router.ID, ghost.ID, 1) != missing.Detail {
		t.Fatalf("a foreign license is told apart from a missing one:\n%s\n%s", foreign.Detail, missing.Detail)
	}
	// A third customer's customer token never sees another's chain (reads): isolation.
	if _, err := e.usage.CustomerUsage(ctx, &entitlements.Principal{CustomerID: b.customer.ID, Kind: entitlements.PrincipalCustomerToken}, a.router.ID, 0); entitlements.ErrorCode(err) != entitlements.ENOTFOUND {
		t.Fatalf("another customer's usage: %v", err)
	}

	// No token, a wrong one, a revoked one: 401.
	rows := e.usageRows(t)
	for _, tok := range []string{"", "nope", "mct_nope", a.tokenID} {
		if r := e.postUsage(t, tok, hr.next(1)); r.status != 401 {
			t.Fatalf("token %q: %d %s", tok, r.status, r.body)
		}
	}
	if err := e.portal.StaffRevokeToken(ctx, a.customer.ID, a.tokenID, e.maker); err != nil {
		t.Fatal(err)
	}
	if r := e.postUsage(t, a.token, hr.next(1)); r.status != 401 {
		t.Fatalf("revoked token: %d", r.status)
	}
	if after := e.usageRows(t); after["usage_reports"] != rows["usage_reports"] {
		t.Fatal("a refused credential left rows")
	}
}

// TestUsageBadInput: whatever the body, the answer is never a 5xx, and a refused
// upload leaves no row.
func TestUsageBadInput(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	h := newTestHost(t, a.router, time.Now().Add(-10*time.Hour))
	p := h.payload(time.Hour, map[string]int64{"tokens": 1, "requests": 1})
	sign := func(edit func(*usage.Payload)) []byte {
		q := p
		q.Counters, q.Totals = map[string]int64{"tokens": 1, "requests": 1}, map[string]int64{"tokens": 1, "requests": 1}
		edit(&q)
		return h.sign(q)
	}
	rawPayload := func(payload string) []byte {
		// A payload no encoder of ours would write, signed properly.
		sig := ed25519.Sign(h.priv, verify.PAE(usage.Format, []byte(payload)))
		return []byte(`{"format":"metrum.usage.v1","key_id":"` + usage.KeyID(h.priv.Public().(ed25519.PublicKey)) + `","algorithm":"Ed25519","payload":"` +
			verify.EncodeB64([]byte(payload)) + `","signature":"` + verify.EncodeB64(sig) + `"}`)
	}
	many := make([][]byte, usage.MaxBatchReports+1)
	for i := range many {
		many[i] = sign(func(*usage.Payload) {})
	}
	bodies := map[string][]byte{
		"empty":            nil,
		"not JSON":         []byte("reports=1"),
		"an array":         []byte(`[1,2]`),
		"empty object":     []byte(`{}`),
		"no reports":       []byte(`{"reports":[]}`),
		"1,001 reports":    usage.MarshalBatch(many),
		"over 4 MiB":       []byte(`{"reports":["` + strings.Repeat("x", usage.MaxBatchBytes) + `"]}`),
		"a report string":  []byte(`{"reports":["x"]}`),
		"extra member":     []byte(`{"reports":[],"more":1}`),
		"duplicate member": []byte(`{"reports":[],"reports":[]}`),
		"wrong format":     []byte(strings.Replace(string(sign(func(*usage.Payload) {})), usage.Format, "metrum.license.v1", 1)),
		"payload not b64":  []byte(`{"format":"metrum.usage.v1","key_id":"k","algorithm":"Ed25519","payload":"***","signature":"AA"}`),
		"NUL in reporter":  sign(func(q *usage.Payload) { q.Reporter = "a\x00b" }),
		"long reporter":    sign(func(q *usage.Payload) { q.Reporter = strings.Repeat("r", 201) }),
		"upper counter":    rawPayload(strings.Replace(string(mustJSON(t, p)), `"tokens"`, `"Tokens"`, -1)),
		"negative counter": sign(func(q *usage.Payload) { q.Counters["tokens"], q.Totals["tokens"] = -1, -1 }),
		"huge counter":     sign(func(q *usage.Payload) { q.Counters["tokens"], q.Totals["tokens"] = 1<<62, 1<<62 }),
		"65 counters": sign(func(q *usage.Payload) {
			for i := range 65 {
				k := "c" + strings.Repeat("x", i)
				q.Counters[k], q.Totals[k] = 1, 1
			}
		}),
		"seq 0":            sign(func(q *usage.Payload) { q.Seq = 0 }),
		"bad instance":     sign(func(q *usage.Payload) { q.InstanceID = "ins_nope" }),
		"bad license":      sign(func(q *usage.Payload) { q.LicenseID = "lic_nope" }),
		"other product":    sign(func(q *usage.Payload) { q.Product = "coresdk" }),
		"future period":    sign(func(q *usage.Payload) { q.PeriodEnd = time.Now().Add(time.Hour).UTC().Format(time.RFC3339) }),
		"25-hour period":   sign(func(q *usage.Payload) { q.PeriodEnd = h.end.Add(25 * time.Hour).Format(time.RFC3339) }),
		"fractional time":  sign(func(q *usage.Payload) { q.PeriodEnd = h.end.Add(time.Hour).Format(time.RFC3339Nano)[:19] + ".5Z" }),
		"unknown member":   rawPayload(strings.Replace(string(mustJSON(t, p)), `"schema":1`, `"schema":1,"extra":true`, 1)),
		"duplicate seq":    rawPayload(strings.Replace(string(mustJSON(t, p)), `"seq":1`, `"seq":1,"seq":1`, 1)),
		"schema 2":         sign(func(q *usage.Payload) { q.Schema = 2 }),
		"no host_key":      sign(func(q *usage.Payload) { q.HostKey = nil }),
		"key_id not thumb": []byte(strings.Replace(string(sign(func(*usage.Payload) {})), `"key_id":"`, `"key_id":"x`, 1)),
	}
	for name, body := range bodies {
		r := e.postUsage(t, a.token, body)
		if r.status != 422 {
			t.Errorf("%s: %d %.300s", name, r.status, r.body)
			continue
		}
		wantRefused(t, r, entitlements.EUSAGEINVALID, 0, 0)
	}
	for tbl, n := range e.usageRows(t) {
		if n != 0 {
			t.Errorf("a refused upload left %d rows in %s", n, tbl)
		}
	}
	// The same report, right, is taken (the bodies above failed for their fault only).
	wantAccepted(t, e.postUsage(t, a.token, sign(func(*usage.Payload) {})), 1, 0)
}

func mustJSON(t *testing.T, p usage.Payload) []byte {
	t.Helper()
	env, err := usage.Sign(ed25519.NewKeyFromSeed(make([]byte, 32)), &p)
	if err != nil {
		t.Fatal(err)
	}
	var e verify.Envelope
	if err := verify.DecodeStrict(env, &e); err != nil {
		t.Fatal(err)
	}
	raw, err := verify.DecodeB64("payload", e.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
