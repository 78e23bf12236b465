// Package usage meters what a router host serves and reports it to the issuer, as
// spec/usage.md (v1) says: a Recorder counts tokens, requests and any named counter
// lock-free per request, enforces a license's token_budget (over its term, or over a
// rolling usage_window_seconds) from its own totals, closes a period every hour,
// writes each closed period as a report signed by the host's own Ed25519 key into a
// chain (seq, prev, totals), keeps the reports durably until the issuer has accepted
// them, and uploads them when online. Air-gapped hosts carry them out as a file
// (Export, `verifier usage export`).
//
// The package reads and writes files but opens no network connection itself: uploads
// go through an Uploader (package usage/usagehttp is the HTTP one), so the offline
// verifier can link this package for its export command without an HTTP client.
package usage

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/oklog/ulid/v2"

	"github.com/metrum/licensing/verify"
)

// Format is the envelope format of a usage report (spec/usage.md section 2).
const Format = "metrum.usage.v1"

// MaxPeriod is the longest period one report may cover.
const MaxPeriod = 24 * time.Hour

// Counter names the issuer knows; any other `[a-z0-9_]+` name may be counted too.
const (
	Tokens   = "tokens"
	Requests = "requests"
)

var counterName = regexp.MustCompile(`^[a-z0-9_]+$`)

// HostKey is the public JWK a chain's first report carries: exactly kty, crv and x.
type HostKey struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
}

// Payload is the wire form of a report's payload, member for member.
type Payload struct {
	Schema              int64            `json:"schema"`
	LicenseID           string           `json:"license_id"`
	Product             string           `json:"product"`
	InstanceID          string           `json:"instance_id"`
	InstanceFingerprint string           `json:"instance_fingerprint,omitempty"`
	Seq                 int64            `json:"seq"`
	Prev                string           `json:"prev"`
	HostKey             *HostKey         `json:"host_key,omitempty"`
	PeriodStart         string           `json:"period_start"`
	PeriodEnd           string           `json:"period_end"`
	Counters            map[string]int64 `json:"counters"`
	Totals              map[string]int64 `json:"totals"`
	Reporter            string           `json:"reporter"`
}

// payloadWire mirrors Payload with pointers, so that absence is visible.
type payloadWire struct {
	Schema              *int64            `json:"schema"`
	LicenseID           *string           `json:"license_id"`
	Product             *string           `json:"product"`
	InstanceID          *string           `json:"instance_id"`
	InstanceFingerprint *string           `json:"instance_fingerprint"`
	Seq                 *int64            `json:"seq"`
	Prev                *string           `json:"prev"`
	HostKey             *HostKey          `json:"host_key"`
	PeriodStart         *string           `json:"period_start"`
	PeriodEnd           *string           `json:"period_end"`
	Counters            *map[string]int64 `json:"counters"`
	Totals              *map[string]int64 `json:"totals"`
	Reporter            *string           `json:"reporter"`
}

// Report is one verified report: its exact envelope bytes and what they say.
type Report struct {
	// Envelope is the exact signed bytes; prev of the next report is their SHA-256.
	Envelope []byte
	Payload
	KeyID string
	// Start and End are the period, parsed.
	Start, End time.Time
	// Key is the public key that signed it (the chain's host key).
	Key ed25519.PublicKey
}

// Hash is hex SHA-256 of the exact envelope bytes: the next report's prev.
func (r *Report) Hash() string { return Hash(r.Envelope) }

// Hash is hex SHA-256 of envelope bytes, as prev names the previous report.
func Hash(envelope []byte) string {
	h := sha256.Sum256(envelope)
	return hex.EncodeToString(h[:])
}

// PublicJWK is the host key as a report's host_key.
func PublicJWK(pub ed25519.PublicKey) *HostKey {
	return &HostKey{Kty: "OKP", Crv: "Ed25519", X: verify.EncodeB64(pub)}
}

// KeyID is the RFC 7638 thumbprint of a host key, as formats.md computes key IDs.
func KeyID(pub ed25519.PublicKey) string {
	kid, err := verify.Thumbprint(pub)
	if err != nil {
		panic("usage: thumbprint of an Ed25519 key: " + err.Error()) // can't happen
	}
	return kid
}

// Sign makes the envelope of a report: compact JSON, no trailing newline, so that the
// bytes a host hashes for prev are exactly the bytes it sends inside an upload body.
func Sign(priv ed25519.PrivateKey, p *Payload) ([]byte, error) {
	raw, err := json.Marshal(p, json.Deterministic(true))
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(priv, verify.PAE(Format, raw))
	return json.Marshal(verify.Envelope{Format: Format, KeyID: KeyID(priv.Public().(ed25519.PublicKey)),
		Algorithm: verify.EnvelopeEd25519, Payload: verify.EncodeB64(raw), Signature: verify.EncodeB64(sig)})
}

// Parse verifies one report envelope and its payload's shape. bound is the key bound
// to the report's chain; nil means none is known yet, and then the report must be a
// chain's first and is checked against the host_key it carries, whose thumbprint must
// be the envelope's key_id. Rules between reports (seq, prev, periods, totals) are
// CheckChain's.
func Parse(envelope []byte, bound ed25519.PublicKey) (*Report, error) {
	var env struct {
		Format    *string `json:"format"`
		KeyID     *string `json:"key_id"`
		Algorithm *string `json:"algorithm"`
		Payload   *string `json:"payload"`
		Signature *string `json:"signature"`
	}
	if err := verify.DecodeStrict(envelope, &env); err != nil {
		return nil, fmt.Errorf("report envelope: %s", verify.SafeError(err))
	}
	if env.Format == nil || env.KeyID == nil || env.Algorithm == nil || env.Payload == nil || env.Signature == nil {
		return nil, errors.New("report envelope: format, key_id, algorithm, payload and signature are required")
	}
	if *env.Format != Format || *env.Algorithm != verify.EnvelopeEd25519 {
		return nil, fmt.Errorf("report envelope: format must be %s and algorithm Ed25519", Format)
	}
	raw, err := verify.DecodeB64("payload", *env.Payload)
	if err != nil {
		return nil, err
	}
	sig, err := verify.DecodeB64("signature", *env.Signature)
	if err != nil {
		return nil, err
	}
	r := &Report{Envelope: envelope, KeyID: *env.KeyID}
	if err := r.parsePayload(raw); err != nil {
		return nil, err
	}
	key := bound
	if key == nil {
		if r.HostKey == nil {
			return nil, errors.New("report: no key is bound to this chain and the report carries no host_key")
		}
		if key, err = parseHostKey(r.HostKey); err != nil {
			return nil, err
		}
	} else if r.HostKey != nil {
		if k, err := parseHostKey(r.HostKey); err != nil || !k.Equal(bound) {
			return nil, errors.New("report: host_key is not the key bound to this chain")
		}
	}
	if KeyID(key) != r.KeyID {
		return nil, errors.New("report: key_id is not the thumbprint of the chain's host key")
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(key, verify.PAE(Format, raw), sig) {
		return nil, errors.New("report: bad signature")
	}
	r.Key = key
	return r, nil
}

func parseHostKey(k *HostKey) (ed25519.PublicKey, error) {
	x, err := verify.DecodeB64("host_key.x", k.X)
	if err != nil || k.Kty != "OKP" || k.Crv != "Ed25519" || len(x) != ed25519.PublicKeySize {
		return nil, errors.New("report: host_key is not an Ed25519 public JWK")
	}
	return ed25519.PublicKey(x), nil
}

func isID(prefix, s string) bool {
	if len(s) != len(prefix)+ulid.EncodedSize || s[:len(prefix)] != prefix {
		return false
	}
	_, err := ulid.ParseStrict(s[len(prefix):])
	return err == nil
}

func (r *Report) parsePayload(raw []byte) error {
	var w payloadWire
	if err := verify.DecodeStrict(raw, &w); err != nil {
		return fmt.Errorf("report payload: %s", verify.SafeError(err))
	}
	if w.Schema == nil || w.LicenseID == nil || w.Product == nil || w.InstanceID == nil || w.Seq == nil || w.Prev == nil ||
		w.PeriodStart == nil || w.PeriodEnd == nil || w.Counters == nil || w.Totals == nil || w.Reporter == nil {
		return errors.New("report payload: a required member is missing")
	}
	p := Payload{Schema: *w.Schema, LicenseID: *w.LicenseID, Product: *w.Product, InstanceID: *w.InstanceID,
		Seq: *w.Seq, Prev: *w.Prev, HostKey: w.HostKey, PeriodStart: *w.PeriodStart, PeriodEnd: *w.PeriodEnd,
		Counters: *w.Counters, Totals: *w.Totals, Reporter: *w.Reporter}
	switch {
	case p.Schema != 1:
		return errors.New("report payload: schema is not 1")
	case !isID("lic_", p.LicenseID):
		return errors.New("report payload: license_id is not lic_ + ULID")
	case !isID("ins_", p.InstanceID):
		return errors.New("report payload: instance_id is not ins_ + ULID")
	case p.Product == "":
		return errors.New("report payload: product is empty")
	case w.InstanceFingerprint != nil && *w.InstanceFingerprint == "":
		return errors.New("report payload: instance_fingerprint is present but empty")
	case p.Seq < 1:
		return errors.New("report payload: seq must be ≥ 1")
	case p.Seq == 1 && (p.Prev != "" || p.HostKey == nil):
		return errors.New("report payload: seq 1 has prev \"\" and carries host_key")
	case p.Seq > 1 && (!isHash(p.Prev) || p.HostKey != nil):
		return errors.New("report payload: after seq 1, prev is a hex SHA-256 and host_key is absent")
	}
	if w.InstanceFingerprint != nil {
		p.InstanceFingerprint = *w.InstanceFingerprint
	}
	var err error
	if r.Start, err = verify.ParseTime("period_start", p.PeriodStart); err != nil {
		return err
	}
	if r.End, err = verify.ParseTime("period_end", p.PeriodEnd); err != nil {
		return err
	}
	if !r.Start.Before(r.End) || r.End.Sub(r.Start) > MaxPeriod {
		return errors.New("report payload: a period starts before it ends and lasts at most 24 hours")
	}
	for _, m := range []map[string]int64{p.Counters, p.Totals} {
		for k, v := range m {
			if !counterName.MatchString(k) || v < 0 {
				return fmt.Errorf("report payload: counter %q is not a [a-z0-9_]+ name with a non-negative value", k)
			}
		}
	}
	if p.Seq == 1 {
		if err := checkTotals(nil, p.Counters, p.Totals); err != nil {
			return err
		}
	}
	r.Payload = p
	return nil
}

func isHash(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && hex.EncodeToString(b) == s
}

// checkTotals: totals = the previous totals + this period's counters, name by name
// (an absent name is 0).
func checkTotals(prev, counters, totals map[string]int64) error {
	names := map[string]bool{}
	for _, m := range []map[string]int64{prev, counters, totals} {
		for k := range m {
			names[k] = true
		}
	}
	for k := range names {
		if prev[k] > prev[k]+counters[k] || totals[k] != prev[k]+counters[k] {
			return fmt.Errorf("report payload: totals.%s is not the running sum of counters.%s", k, k)
		}
	}
	return nil
}

// CheckChain checks that reports, in order, continue one chain from the first of them
// (spec/usage.md sections 2 and 3): the same license, product and instance, seq one
// more each time, prev the hash of the report before, each period starting where the
// previous one ended, and totals the running sums. prev is the report before the
// first (nil: the first must be seq 1). Each report must already be verified (Parse)
// with the chain's key.
func CheckChain(prev *Report, reports []*Report) error {
	for i, r := range reports {
		if prev == nil {
			if r.Seq != 1 {
				return fmt.Errorf("report %d: seq %d with no report before it", i, r.Seq)
			}
			prev = r
			continue
		}
		switch {
		case r.LicenseID != prev.LicenseID || r.Product != prev.Product || r.InstanceID != prev.InstanceID:
			return fmt.Errorf("report %d: another chain's report (license, product or instance differ)", i)
		case !r.Key.Equal(prev.Key):
			return fmt.Errorf("report %d: signed by another key than the chain's", i)
		case r.Seq != prev.Seq+1:
			return fmt.Errorf("report %d: seq %d after %d", i, r.Seq, prev.Seq)
		case r.Prev != prev.Hash():
			return fmt.Errorf("report %d: prev is not the hash of report seq %d", i, prev.Seq)
		case !r.Start.Equal(prev.End):
			return fmt.Errorf("report %d: period_start is not the previous period_end", i)
		}
		if err := checkTotals(prev.Totals, r.Counters, r.Totals); err != nil {
			return fmt.Errorf("report %d: %w", i, err)
		}
		prev = r
	}
	return nil
}
