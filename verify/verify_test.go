package verify_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metrum/licensing/verify"
)

type tc struct {
	name   string
	setup  func(f *fixture) verify.Options
	status string
	reason string
}

func run(t *testing.T, cases []tc) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			r := verify.Verify(c.setup(f))
			if r.Status != c.status || r.Reason != c.reason {
				t.Fatalf("got %s/%q (%s), want %s/%q", r.Status, r.Reason, r.Detail, c.status, c.reason)
			}
		})
	}
}

const (
	V = verify.StatusValid
	B = verify.StatusBlocked
	G = verify.StatusGrace
)

func TestPAEIsDSSEv1(t *testing.T) {
	got := string(verify.PAE("metrum.license.v1", []byte(`{"a":1}`)))
	if want := `DSSEv1 17 metrum.license.v1 7 {"a":1}`; got != want {
		t.Fatalf("PAE = %q, want %q", got, want)
	}
}

// Step 1 and 2: the file, the envelope, the key, the signature, the payload shape.
func TestEnvelopeAndShape(t *testing.T) {
	envelopeWith := func(f *fixture, mutate func(string) string) verify.Options {
		b := string(f.sign(f.lic, verify.FormatLicense, marshal(f.t, payload())))
		return f.opts(f.write("l.json", []byte(mutate(b))))
	}
	signedPayload := func(raw string) func(f *fixture) verify.Options {
		return func(f *fixture) verify.Options {
			return f.opts(f.write("l.json", f.sign(f.lic, verify.FormatLicense, []byte(raw))))
		}
	}
	run(t, []tc{
		{"valid", func(f *fixture) verify.Options { return f.opts(f.license(payload())) }, V, ""},
		{"absent file", func(f *fixture) verify.Options { return f.opts(filepath.Join(f.dir, "nope.json")) }, B, verify.ReasonMissing},
		{"unreadable (a folder)", func(f *fixture) verify.Options { return f.opts(f.dir) }, B, verify.ReasonMissing},
		{"empty file", func(f *fixture) verify.Options { return f.opts(f.write("l.json", nil)) }, B, verify.ReasonInvalid},
		{"not JSON", func(f *fixture) verify.Options { return f.opts(f.write("l.json", []byte("{nope"))) }, B, verify.ReasonInvalid},
		{"truncated", func(f *fixture) verify.Options {
			b := f.sign(f.lic, verify.FormatLicense, marshal(f.t, payload()))
			return f.opts(f.write("l.json", b[:len(b)/2]))
		}, B, verify.ReasonInvalid},
		{"oversized", func(f *fixture) verify.Options {
			return f.opts(f.write("l.json", append(f.sign(f.lic, verify.FormatLicense, marshal(f.t, payload())), bytes.Repeat([]byte(" "), verify.MaxLicenseSize)...)))
		}, B, verify.ReasonInvalid},
		{"top level array", func(f *fixture) verify.Options { return f.opts(f.write("l.json", []byte("[]"))) }, B, verify.ReasonInvalid},
		{"extra envelope member", func(f *fixture) verify.Options {
			return envelopeWith(f, func(s string) string { return strings.Replace(s, `{"format"`, `{"x":1,"format"`, 1) })
		}, B, verify.ReasonInvalid},
		{"duplicate envelope member", func(f *fixture) verify.Options {
			return envelopeWith(f, func(s string) string {
				return strings.Replace(s, `{"format":"metrum.license.v1"`, `{"format":"metrum.license.v1","format":"metrum.license.v1"`, 1)
			})
		}, B, verify.ReasonInvalid},
		{"case-variant envelope member", func(f *fixture) verify.Options {
			return envelopeWith(f, func(s string) string { return strings.Replace(s, `"format"`, `"Format"`, 1) })
		}, B, verify.ReasonInvalid},
		{"null envelope member", func(f *fixture) verify.Options {
			return envelopeWith(f, func(s string) string { return strings.Replace(s, `{"format"`, `{"key_id":null,"format"`, 1) })
		}, B, verify.ReasonInvalid},
		{"wrong format type (lease format)", func(f *fixture) verify.Options {
			return f.opts(f.write("l.json", f.sign(f.lease, verify.FormatLease, marshal(f.t, payload()))))
		}, B, verify.ReasonInvalid},
		{"format rewritten to license over a lease signature", func(f *fixture) verify.Options {
			b := string(f.sign(f.lease, verify.FormatLease, marshal(f.t, payload())))
			return f.opts(f.write("l.json", []byte(strings.Replace(b, verify.FormatLease, verify.FormatLicense, 1))))
		}, B, verify.ReasonInvalid},
		{"algorithm not allowed", func(f *fixture) verify.Options {
			return envelopeWith(f, func(s string) string { return strings.Replace(s, `"Ed25519"`, `"HS256"`, 1) })
		}, B, verify.ReasonInvalid},
		{"algorithm none", func(f *fixture) verify.Options {
			return envelopeWith(f, func(s string) string { return strings.Replace(s, `"Ed25519"`, `"none"`, 1) })
		}, B, verify.ReasonInvalid},
		{"algorithm differs from the key's", func(f *fixture) verify.Options {
			return envelopeWith(f, func(s string) string { return strings.Replace(s, `"Ed25519"`, `"ES256"`, 1) })
		}, B, verify.ReasonInvalid},
		{"unknown key", func(f *fixture) verify.Options {
			return f.opts(f.write("l.json", f.sign(f.bad, verify.FormatLicense, marshal(f.t, payload()))))
		}, B, verify.ReasonInvalid},
		{"key lacks the license purpose", func(f *fixture) verify.Options {
			k := mustKey(f.t, verify.AlgEdDSA, verify.PurposeLicense)
			b := string(f.sign(k, verify.FormatLicense, marshal(f.t, payload())))
			// Claim the revocation key's ID: the key set says it may not sign licenses.
			return f.opts(f.write("l.json", []byte(strings.Replace(b, k.KeyID(), f.rev.KeyID(), 1))))
		}, B, verify.ReasonInvalid},
		{"bad signature", func(f *fixture) verify.Options {
			return envelopeWith(f, func(s string) string {
				i := strings.Index(s, `"signature":"`) + len(`"signature":"`)
				c := byte('A')
				if s[i] == 'A' {
					c = 'B'
				}
				return s[:i] + string(c) + s[i+1:]
			})
		}, B, verify.ReasonInvalid},
		{"payload padded base64", func(f *fixture) verify.Options {
			return envelopeWith(f, func(s string) string { return strings.Replace(s, `","signature"`, `==","signature"`, 1) })
		}, B, verify.ReasonInvalid},
		{"payload base64 with a newline", func(f *fixture) verify.Options {
			return envelopeWith(f, func(s string) string { return strings.Replace(s, `"payload":"ey`, `"payload":"e\ny`, 1) })
		}, B, verify.ReasonInvalid},
		{"payload standard base64 alphabet", func(f *fixture) verify.Options {
			raw := marshal(f.t, with(payload(), "customer_name", "??>>??>>"))
			b := string(f.sign(f.lic, verify.FormatLicense, raw))
			return f.opts(f.write("l.json", []byte(strings.NewReplacer("-", "+", "_", "/").Replace(b))))
		}, B, verify.ReasonInvalid},
		{"unknown payload member", signedPayload(`{"schema":1,"x":1}`), B, verify.ReasonInvalid},
		{"unknown payload member, otherwise valid", func(f *fixture) verify.Options { return f.opts(f.license(with(payload(), "max_magic", 1))) }, B, verify.ReasonInvalid},
		{"case-variant payload member", func(f *fixture) verify.Options {
			p := with(payload(), "product", nil, "Product", "genai-smart-router")
			return f.opts(f.license(p))
		}, B, verify.ReasonInvalid},
		{"duplicate payload member", func(f *fixture) verify.Options {
			raw := string(marshal(f.t, payload()))
			raw = strings.Replace(raw, `{`, `{"product":"coresdk",`, 1)
			return f.opts(f.write("l.json", f.sign(f.lic, verify.FormatLicense, []byte(raw))))
		}, B, verify.ReasonInvalid},
		{"null payload member", func(f *fixture) verify.Options {
			raw := strings.Replace(string(marshal(f.t, payload())), `{`, `{"supersedes":null,`, 1)
			return f.opts(f.write("l.json", f.sign(f.lic, verify.FormatLicense, []byte(raw))))
		}, B, verify.ReasonInvalid},
		{"payload not an object", signedPayload(`[1]`), B, verify.ReasonInvalid},
		{"payload not UTF-8", signedPayload("{\"schema\":1,\"product\":\"\xff\"}"), B, verify.ReasonInvalid},
		{"schema 2", func(f *fixture) verify.Options { return f.opts(f.license(with(payload(), "schema", 2))) }, B, verify.ReasonInvalid},
		{"missing member", func(f *fixture) verify.Options {
			return f.opts(f.license(with(payload(), "grace_period_seconds", nil)))
		}, B, verify.ReasonInvalid},
		{"bad license_id", func(f *fixture) verify.Options { return f.opts(f.license(with(payload(), "license_id", "lic_1"))) }, B, verify.ReasonInvalid},
		{"time not UTC", func(f *fixture) verify.Options {
			return f.opts(f.license(with(payload(), "expires_at", "2027-01-01T00:00:00+01:00")))
		}, B, verify.ReasonInvalid},
		{"time with fraction", func(f *fixture) verify.Options {
			return f.opts(f.license(with(payload(), "expires_at", "2027-01-01T00:00:00.5Z")))
		}, B, verify.ReasonInvalid},
		{"not_before not before expires_at", func(f *fixture) verify.Options {
			return f.opts(f.license(with(payload(), "not_before", "2027-01-01T00:00:00Z")))
		}, B, verify.ReasonInvalid},
		{"features unsorted", func(f *fixture) verify.Options {
			return f.opts(f.license(with(payload(), "features", []string{"routing", "admin_reports"})))
		}, B, verify.ReasonInvalid},
		{"features duplicated", func(f *fixture) verify.Options {
			return f.opts(f.license(with(payload(), "features", []string{"routing", "routing"})))
		}, B, verify.ReasonInvalid},
		{"feature name outside [a-z0-9_]", func(f *fixture) verify.Options {
			return f.opts(f.license(with(payload(), "features", []string{"Routing"})))
		}, B, verify.ReasonInvalid},
		{"negative limit", func(f *fixture) verify.Options {
			return f.opts(f.license(with(payload(), "limits", map[string]any{"seats": -1})))
		}, B, verify.ReasonInvalid},
		{"fractional limit", func(f *fixture) verify.Options {
			return f.opts(f.license(with(payload(), "limits", map[string]any{"seats": 1.5})))
		}, B, verify.ReasonInvalid},
		{"negative grace", func(f *fixture) verify.Options { return f.opts(f.license(with(payload(), "grace_period_seconds", -1))) }, B, verify.ReasonInvalid},
		{"lease renew_url not https", func(f *fixture) verify.Options {
			return f.opts(f.license(with(payload(), "lease", map[string]any{"required": true, "ttl_seconds": 60, "renew_url": "http://x/v1/leases"})))
		}, B, verify.ReasonInvalid},
		{"lease with unknown member", func(f *fixture) verify.Options {
			return f.opts(f.license(with(payload(), "lease", map[string]any{"required": true, "ttl_seconds": 60, "renew_url": "https://x/", "x": 1})))
		}, B, verify.ReasonInvalid},
		{"ES256 envelope", func(f *fixture) verify.Options {
			return f.opts(f.write("l.json", f.sign(f.es, verify.FormatLicense, marshal(f.t, payload()))))
		}, V, ""},
		{"ES256 signature of the wrong length", func(f *fixture) verify.Options {
			b := string(f.sign(f.es, verify.FormatLicense, marshal(f.t, payload())))
			return f.opts(f.write("l.json", []byte(strings.Replace(b, `"}`, `AAAA"}`, 1))))
		}, B, verify.ReasonInvalid},
	})
}

// Steps 3–12 and their order.
func TestOrderAndReasons(t *testing.T) {
	state := func(f *fixture) string { return filepath.Join(f.dir, "state.json") }
	run(t, []tc{
		{"product mismatch", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.Product = "coresdk"
			return o
		}, B, verify.ReasonProductMismatch},
		{"product mismatch before expiry", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.Product, o.Now = "coresdk", t0.AddDate(5, 0, 0)
			return o
		}, B, verify.ReasonProductMismatch},
		{"not yet valid", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.Now = t0.AddDate(-1, 0, 0)
			return o
		}, B, verify.ReasonNotYetValid},
		{"not yet valid before instance mismatch", func(f *fixture) verify.Options {
			o := f.opts(f.license(with(payload(), "instance_fingerprint", "host-a")))
			o.Now, o.InstanceFingerprint = t0.AddDate(-1, 0, 0), "host-b"
			return o
		}, B, verify.ReasonNotYetValid},
		{"instance mismatch", func(f *fixture) verify.Options {
			o := f.opts(f.license(with(payload(), "instance_fingerprint", "host-a")))
			o.InstanceFingerprint = "host-b"
			return o
		}, B, verify.ReasonInstanceMismatch},
		{"instance bound, host gives none", func(f *fixture) verify.Options {
			return f.opts(f.license(with(payload(), "instance_fingerprint", "host-a")))
		}, B, verify.ReasonInstanceMismatch},
		{"instance match", func(f *fixture) verify.Options {
			o := f.opts(f.license(with(payload(), "instance_fingerprint", "host-a")))
			o.InstanceFingerprint = "host-a"
			return o
		}, V, ""},
		{"expired", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.Now = t0.AddDate(1, 0, 0)
			return o
		}, B, verify.ReasonExpired},
		{"expired at exactly expires_at", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.Now = mustTime("2027-01-01T00:00:00Z")
			return o
		}, B, verify.ReasonExpired},
		{"expired before feature", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.Now, o.Features = t0.AddDate(1, 0, 0), []string{"pii_filtering"}
			return o
		}, B, verify.ReasonExpired},
		{"feature forbidden", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.Features = []string{"routing", "pii_filtering"}
			return o
		}, B, verify.ReasonFeatureForbidden},
		{"feature before limit", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.Features, o.Limits = []string{"pii_filtering"}, map[string]int64{"max_instances": 99}
			return o
		}, B, verify.ReasonFeatureForbidden},
		{"limit exceeded", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.Limits = map[string]int64{"max_instances": 6}
			return o
		}, B, verify.ReasonLimitExceeded},
		{"limit at the maximum", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.Limits = map[string]int64{"max_instances": 5}
			return o
		}, V, ""},
		{"absent limit is unlimited", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.Limits = map[string]int64{"seats": 1 << 40}
			return o
		}, V, ""},
		{"clock rollback", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.StatePath = state(f)
			verify.Verify(o)
			o.Now = t0.Add(-301e9)
			return o
		}, B, verify.ReasonClockRollback},
		{"clock back within skew", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.StatePath = state(f)
			verify.Verify(o)
			o.Now = t0.Add(-299e9)
			return o
		}, V, ""},
		{"clock rollback before not-yet-valid", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.StatePath = state(f)
			verify.Verify(o)
			o.Now = t0.AddDate(-1, 0, 0)
			return o
		}, B, verify.ReasonClockRollback},
		{"product mismatch before clock rollback", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.StatePath = state(f)
			verify.Verify(o)
			o.Now, o.Product = t0.AddDate(-1, 0, 0), "coresdk"
			return o
		}, B, verify.ReasonProductMismatch},
		{"tampered state file", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.StatePath = state(f)
			verify.Verify(o)
			b, _ := os.ReadFile(o.StatePath)
			os.WriteFile(o.StatePath, bytes.Replace(b, []byte(`"bundle_sequence":0`), []byte(`"bundle_sequence":1`), 1), 0o600)
			return o
		}, B, verify.ReasonClockRollback},
		{"garbage state file", func(f *fixture) verify.Options {
			o := f.opts(f.license(payload()))
			o.StatePath = f.write("state.json", []byte("{}"))
			return o
		}, B, verify.ReasonClockRollback},
	})
}

func mustTime(s string) (t0 timeT) {
	t, err := parse(s)
	if err != nil {
		panic(err)
	}
	return t
}
