package usage_test

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/usage"
)

// fakeIssuer is POST /v1/usage as spec/usage.md section 3 has the issuer check it:
// the bearer token, the body's limits, then each report in order (envelope and
// signature by the chain's bound key, or for seq 1 its own host_key; the license
// belongs to the credential; seq, prev, periods and totals continue the chain; the
// period ends no later than the issuer's clock + 300 s), answering 200 or the first
// failure as a problem with report_index (and next_seq for a gap), keeping the
// reports before it. It is the contract the real endpoint implements; the host's
// client is written against it only through the spec.
type fakeIssuer struct {
	t        *testing.T
	token    string
	licenses map[string]bool // licenses the token may report for
	now      func() time.Time

	mu      sync.Mutex
	chains  map[string]*fakeChain // by license_id + instance_id
	bodies  int
	reports int
	// fail, when set, answers the next request with this status (and Retry-After).
	fail       int
	retryAfter string
	// loseAnswer accepts the next body, then answers 500 as if the answer was lost.
	loseAnswer bool
}

type fakeChain struct {
	key     ed25519.PublicKey
	reports []*usage.Report // accepted, seq 1..n
}

func newFakeIssuer(t *testing.T, token string, licenses ...string) *fakeIssuer {
	f := &fakeIssuer{t: t, token: token, licenses: map[string]bool{}, chains: map[string]*fakeChain{}, now: time.Now}
	for _, l := range licenses {
		f.licenses[l] = true
	}
	return f
}

func (f *fakeIssuer) problem(w http.ResponseWriter, status int, code string, index int, nextSeq int64, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	p := map[string]any{"type": "https://metrum.ai/problems/" + code, "title": code, "status": status,
		"detail": detail, "request_id": "req_test", "report_index": index}
	if nextSeq > 0 {
		p["next_seq"] = nextSeq
	}
	json.MarshalWrite(w, p)
}

func (f *fakeIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("upload: %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	if f.fail != 0 {
		status := f.fail
		f.fail = 0
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		f.problem(w, status, "unavailable", 0, 0, "try later")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		f.problem(w, 401, "unauthorized", 0, 0, "")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, usage.MaxBatchBytes+1))
	envs, err := usage.ParseBatch(body)
	if err != nil {
		f.t.Errorf("the host sent a body the spec does not allow: %v", err)
		f.problem(w, 400, "malformed", 0, 0, err.Error())
		return
	}
	f.bodies++
	accepted, dups := 0, 0
	touched := map[string]*fakeChain{}
	for i, env := range envs {
		code, next, detail := f.take(env, touched)
		switch code {
		case "":
			accepted++
		case "duplicate":
			dups++
		default:
			status := 409
			if code == usage.CodeInvalid {
				status = 422
			}
			f.problem(w, status, code, i, next, detail)
			return
		}
	}
	f.reports += accepted
	if f.loseAnswer {
		f.loseAnswer = false
		w.WriteHeader(500)
		return
	}
	chains := []map[string]any{}
	for _, c := range touched {
		last := c.reports[len(c.reports)-1]
		chains = append(chains, map[string]any{"license_id": last.LicenseID, "instance_id": last.InstanceID, "last_seq": last.Seq})
	}
	w.Header().Set("Content-Type", "application/json")
	json.MarshalWrite(w, map[string]any{"accepted": accepted, "duplicates": dups, "chains": chains})
}

// take checks one report and keeps it: "" accepted, "duplicate", or a problem code.
func (f *fakeIssuer) take(env []byte, touched map[string]*fakeChain) (string, int64, string) {
	// Find the chain from the unverified payload, then verify with its bound key.
	probe, err := usage.Parse(env, nil)
	var id string
	if err == nil {
		id = probe.LicenseID + "/" + probe.InstanceID
	} else {
		// Not seq 1 (or not valid): read the chain from the payload through a bound key.
		for k, c := range f.chains {
			if r, err := usage.Parse(env, c.key); err == nil && k == r.LicenseID+"/"+r.InstanceID {
				id, probe = k, r
				break
			}
		}
		if id == "" {
			return usage.CodeInvalid, 0, "malformed or badly signed: " + err.Error()
		}
	}
	if !f.licenses[probe.LicenseID] {
		return usage.CodeInvalid, 0, "foreign license"
	}
	c := f.chains[id]
	if c == nil {
		if probe.Seq != 1 {
			return usage.CodeGap, 1, "unknown chain"
		}
		c = &fakeChain{key: probe.Key}
		f.chains[id] = c
	}
	rep, err := usage.Parse(env, c.key)
	if err != nil {
		return usage.CodeInvalid, 0, err.Error()
	}
	n := int64(len(c.reports))
	switch {
	case rep.Seq <= n:
		if string(c.reports[rep.Seq-1].Envelope) == string(env) {
			return "duplicate", 0, ""
		}
		return usage.CodeFork, 0, fmt.Sprintf("seq %d was accepted with other bytes", rep.Seq)
	case rep.Seq > n+1:
		return usage.CodeGap, n + 1, "gap"
	}
	if n > 0 {
		if rep.Prev != c.reports[n-1].Hash() {
			return usage.CodeFork, 0, "prev is not the accepted report before it"
		}
		if err := usage.CheckChain(c.reports[n-1], []*usage.Report{rep}); err != nil {
			return usage.CodeInvalid, 0, err.Error()
		}
	}
	if rep.End.After(f.now().Add(300 * time.Second)) {
		return usage.CodeInvalid, 0, "period ends in the future"
	}
	c.reports = append(c.reports, rep)
	touched[id] = c
	return "", 0, ""
}

// tokens is what the issuer counts for a license: the sum of tokens over its chains.
func (f *fakeIssuer) tokens(license string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for id, c := range f.chains {
		if strings.HasPrefix(id, license+"/") {
			for _, r := range c.reports {
				n += r.Counters[usage.Tokens]
			}
		}
	}
	return n
}

// forget drops the last n accepted reports of every chain, as an issuer restored
// from a backup would have.
func (f *fakeIssuer) forget(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.chains {
		c.reports = c.reports[:max(0, len(c.reports)-n)]
	}
}

func (f *fakeIssuer) chainCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.chains)
}
