package verify_test

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

// BenchmarkLicense compares a full license verification (strict parse, key lookup,
// signature, payload rules) with the bare Ed25519 check of the same bytes, in one run.
//
//	go test ./verify -run '^$' -bench 'License' -benchmem
func BenchmarkLicense(b *testing.B) {
	f := newFixture(b)
	file := f.sign(f.lic, verify.FormatLicense, marshal(b, payload()))
	payloadBytes := marshal(b, payload())
	msg := verify.PAE(verify.FormatLicense, payloadBytes)
	sig, _ := f.lic.Sign(nil, msg, cryptoHash0)
	pub := f.lic.Public().(ed25519.PublicKey)
	b.Run("bare-ed25519", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("bad")
			}
		}
	})
	b.Run("parse-license-file", func(b *testing.B) {
		for b.Loop() {
			if _, err := verify.ParseLicenseFile(file, f.ks); err != nil {
				b.Fatal(err)
			}
		}
	})
	path := f.write("l.json", file)
	b.Run("verify-from-disk", func(b *testing.B) {
		o := f.opts(path)
		for b.Loop() {
			if r := verify.Verify(o); r.Status != V {
				b.Fatal(r.Reason)
			}
		}
	})
}

// BenchmarkBundle parses and checks revocation bundles of growing size.
//
//	go test ./verify -run '^$' -bench 'Bundle' -benchmem -benchtime 3x
func BenchmarkBundle(b *testing.B) {
	f := newFixture(b)
	for _, n := range []int{1_000, 100_000} {
		data := bigBundle(b, f, n)
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				bu, err := verify.ParseBundleFile(data, f.ks)
				if err != nil || bu.Len() != n {
					b.Fatal(err)
				}
				if _, ok := bu.Lookup(licID); ok {
					b.Fatal("unexpected entry")
				}
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(len(data))/(1<<20), "MiB-file")
		})
	}
}

// bigBundle builds (and caches under the OS temp folder) a bundle of n entries.
func bigBundle(b *testing.B, f *fixture, n int) []byte {
	entries := make([]verify.BundleEntry, n)
	for i := range entries {
		entries[i] = verify.BundleEntry{LicenseID: fmt.Sprintf("lic_01J%023d", i), Status: "revoked", Reason: "non-payment",
			EffectiveAt: "2026-01-01T00:00:00Z"}
	}
	raw := marshal(b, verify.BundlePayload{Schema: verify.BundleSchema, Issuer: "metrum", Product: router, Sequence: 1, IssuedAt: "2026-05-01T00:00:00Z",
		ExpiresAt: future, Entries: entries})
	env, err := signing.SignEnvelope(f.rev, verify.FormatRevocation, raw)
	if err != nil {
		b.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(b.TempDir(), "bundle.json"), env, 0o644)
	return env
}
