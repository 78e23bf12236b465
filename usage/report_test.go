package usage_test

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/usage"
	"github.com/metrum/licensing/verify"
)

const insA = "ins_01HZY3QK8Y0000000000000007"

func payload(seq int64, start, end string, counters, totals map[string]int64) *usage.Payload {
	return &usage.Payload{Schema: 1, LicenseID: licA, Product: "genai-smart-router", InstanceID: insA, Seq: seq,
		PeriodStart: start, PeriodEnd: end, Counters: counters, Totals: totals, Reporter: "t"}
}

func mustSign(t testing.TB, k ed25519.PrivateKey, p *usage.Payload) []byte {
	t.Helper()
	b, err := usage.Sign(k, p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// chainOf signs a valid three-report chain.
func chainOf(t testing.TB, k ed25519.PrivateKey) [][]byte {
	pub := k.Public().(ed25519.PublicKey)
	p1 := payload(1, "2026-06-01T10:00:00Z", "2026-06-01T11:00:00Z", map[string]int64{"tokens": 5, "requests": 1}, map[string]int64{"tokens": 5, "requests": 1})
	p1.HostKey = usage.PublicJWK(pub)
	e1 := mustSign(t, k, p1)
	p2 := payload(2, "2026-06-01T11:00:00Z", "2026-06-01T12:00:00Z", map[string]int64{"tokens": 7}, map[string]int64{"tokens": 12, "requests": 1})
	p2.Prev = usage.Hash(e1)
	e2 := mustSign(t, k, p2)
	p3 := payload(3, "2026-06-01T12:00:00Z", "2026-06-02T12:00:00Z", map[string]int64{"tokens": 0, "requests": 2}, map[string]int64{"tokens": 12, "requests": 3})
	p3.Prev = usage.Hash(e2)
	return [][]byte{e1, e2, mustSign(t, k, p3)}
}

func parseAll(t *testing.T, envs [][]byte, pub ed25519.PublicKey) []*usage.Report {
	t.Helper()
	var out []*usage.Report
	for _, e := range envs {
		r, err := usage.Parse(e, pub)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// The envelope and payload are read as strictly as formats.md's: exact names, no
// duplicates, no unknown members, no null, strict base64url, the signature by the
// chain's key (or, for seq 1, the host_key it carries, whose thumbprint is key_id).
func TestParseStrict(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	pub := k.Public().(ed25519.PublicKey)
	envs := chainOf(t, k)
	if _, err := usage.Parse(envs[0], nil); err != nil {
		t.Fatalf("seq 1 with its own host_key: %v", err)
	}
	if _, err := usage.Parse(envs[1], nil); err == nil {
		t.Fatal("seq 2 verified with no bound key")
	}
	if _, err := usage.Parse(envs[1], other.Public().(ed25519.PublicKey)); err == nil {
		t.Fatal("verified with another key")
	}
	var env map[string]string
	json.Unmarshal(envs[1], &env)
	raw, _ := verify.DecodeB64("p", env["payload"])
	resign := func(raw []byte) []byte {
		env := verify.Envelope{Format: usage.Format, KeyID: usage.KeyID(pub), Algorithm: "Ed25519",
			Payload: verify.EncodeB64(raw), Signature: verify.EncodeB64(ed25519.Sign(k, verify.PAE(usage.Format, raw)))}
		b, _ := json.Marshal(env)
		return b
	}
	if _, err := usage.Parse(resign(raw), pub); err != nil {
		t.Fatalf("re-signed as is: %v", err)
	}
	s := string(raw)
	for name, bad := range map[string]string{
		"unknown member":   strings.Replace(s, `"schema":1`, `"schema":1,"extra":1`, 1),
		"duplicate":        strings.Replace(s, `"schema":1`, `"schema":1,"schema":1`, 1),
		"case variant":     strings.Replace(s, `"product"`, `"Product"`, 1),
		"null":             strings.Replace(s, `"reporter":"t"`, `"reporter":null`, 1),
		"schema 2":         strings.Replace(s, `"schema":1`, `"schema":2`, 1),
		"bad instance":     strings.Replace(s, insA, "ins_nope", 1),
		"empty prev":       strings.Replace(s, `"prev":"`+usage.Hash(envs[0]), `"prev":"`, 1),
		"upper-case prev":  strings.Replace(s, `"prev":"`+usage.Hash(envs[0]), `"prev":"`+strings.ToUpper(usage.Hash(envs[0])), 1),
		"fractional time":  strings.Replace(s, `"2026-06-01T12:00:00Z"`, `"2026-06-01T12:00:00.5Z"`, 1),
		"negative counter": strings.Replace(s, `"tokens":7`, `"tokens":-7`, 1),
		"bad name":         strings.Replace(s, `"tokens":7`, `"Tokens":7`, 1),
		"start after end":  strings.Replace(s, `"period_end":"2026-06-01T12:00:00Z"`, `"period_end":"2026-06-01T10:00:00Z"`, 1),
		"not an object":    `[1]`,
	} {
		if bad == s {
			t.Fatalf("%s: the test did not change the payload", name)
		}
		if _, err := usage.Parse(resign([]byte(bad)), pub); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, e := range map[string]string{
		"extra envelope member": strings.Replace(string(envs[1]), `{"format"`, `{"x":1,"format"`, 1),
		"wrong format":          strings.Replace(string(envs[1]), usage.Format, "metrum.license.v1", 1),
		"padded signature":      strings.Replace(string(envs[1]), `"}`, `=="}`, 1),
	} {
		if _, err := usage.Parse([]byte(e), pub); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// seq 1: host_key present and prev ""; and its thumbprint must be the key_id.
	p1 := payload(1, "2026-06-01T10:00:00Z", "2026-06-01T11:00:00Z", map[string]int64{"tokens": 1}, map[string]int64{"tokens": 1})
	if _, err := usage.Parse(mustSign(t, k, p1), nil); err == nil {
		t.Error("seq 1 without host_key accepted")
	}
	p1.HostKey = usage.PublicJWK(other.Public().(ed25519.PublicKey))
	if _, err := usage.Parse(mustSign(t, k, p1), nil); err == nil {
		t.Error("seq 1 whose host_key is not the signer accepted")
	}
	p1.HostKey = usage.PublicJWK(pub)
	p1.Totals = map[string]int64{"tokens": 2}
	if _, err := usage.Parse(mustSign(t, k, p1), nil); err == nil {
		t.Error("seq 1 whose totals are not its counters accepted")
	}
	long := payload(2, "2026-06-01T10:00:00Z", "2026-06-02T10:00:01Z", map[string]int64{}, map[string]int64{})
	long.Prev = usage.Hash(envs[0])
	if _, err := usage.Parse(mustSign(t, k, long), pub); err == nil {
		t.Error("a period over 24 h accepted")
	}
}

// CheckChain: every rule between reports.
func TestCheckChain(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(nil)
	_, k2, _ := ed25519.GenerateKey(nil)
	pub := k.Public().(ed25519.PublicKey)
	envs := chainOf(t, k)
	good := parseAll(t, envs, pub)
	if err := usage.CheckChain(nil, good); err != nil {
		t.Fatal(err)
	}
	if err := usage.CheckChain(good[0], good[1:]); err != nil {
		t.Fatalf("from a known head: %v", err)
	}
	p2 := func(edit func(p *usage.Payload)) *usage.Report {
		p := payload(2, "2026-06-01T11:00:00Z", "2026-06-01T12:00:00Z", map[string]int64{"tokens": 7}, map[string]int64{"tokens": 12, "requests": 1})
		p.Prev = usage.Hash(envs[0])
		edit(p)
		signer := k
		if p.InstanceID == "ins_01HZY3QK8Y0000000000000009" {
			signer = k2
		}
		r, err := usage.Parse(mustSign(t, signer, p), signer.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for name, r := range map[string]*usage.Report{
		"seq skipped":         p2(func(p *usage.Payload) { p.Seq = 3 }),
		"prev wrong":          p2(func(p *usage.Payload) { p.Prev = usage.Hash(envs[1]) }),
		"period not adjacent": p2(func(p *usage.Payload) { p.PeriodStart = "2026-06-01T11:00:01Z" }),
		"totals short":        p2(func(p *usage.Payload) { p.Totals = map[string]int64{"tokens": 11, "requests": 1} }),
		"totals drop a name":  p2(func(p *usage.Payload) { p.Totals = map[string]int64{"tokens": 12} }),
		"another license":     p2(func(p *usage.Payload) { p.LicenseID = licB }),
		"another instance":    p2(func(p *usage.Payload) { p.InstanceID = "ins_01HZY3QK8Y0000000000000009" }),
	} {
		if err := usage.CheckChain(good[0], []*usage.Report{r}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := usage.CheckChain(nil, good[1:]); err == nil {
		t.Error("a chain that does not start at seq 1 with no head")
	}
}

// Bodies: the exact envelope bytes go in, at most 1,000 reports and 4 MiB a body.
func TestBatches(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(nil)
	envs := chainOf(t, k)
	got, err := usage.ParseBatch(usage.MarshalBatch(envs))
	if err != nil || len(got) != 3 || string(got[1]) != string(envs[1]) {
		t.Fatalf("round trip: %v", err)
	}
	if one, err := usage.ParseBatch(envs[0]); err != nil || string(one[0]) != string(envs[0]) {
		t.Fatalf("a single envelope body: %v", err)
	}
	many := make([][]byte, 2500)
	for i := range many {
		many[i] = envs[i%3]
	}
	parts, err := usage.Split(many)
	if err != nil || len(parts) != 3 || len(parts[0]) != 1000 || len(parts[2]) != 500 {
		t.Fatalf("split by count: %d parts %v", len(parts), err)
	}
	big := make([][]byte, 900)
	for i := range big {
		big[i] = []byte(`{"format":"` + strings.Repeat("x", 10_000) + `"}`)
	}
	parts, _ = usage.Split(big)
	for _, p := range parts {
		if n := len(usage.MarshalBatch(p)); n > usage.MaxBatchBytes {
			t.Fatalf("a body of %d bytes", n)
		}
	}
	if len(parts) < 3 {
		t.Fatalf("9 MB in %d bodies", len(parts))
	}
	if _, err := usage.ParseBatch([]byte(`{"reports":[]}`)); err == nil {
		t.Error("an empty body accepted")
	}
}
