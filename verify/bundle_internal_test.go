package verify

import (
	"crypto/ed25519"
	"fmt"
	"runtime"
	"testing"

	"github.com/go-json-experiment/json"
)

// BenchmarkBundleMillion measures a 1M-entry bundle. Such a bundle is ~160 MiB, over
// the 64 MiB cap of formats.md (which holds ~400k entries of this shape), so it calls
// the parser below the cap. Reports the heap the parsed bundle keeps.
//
//	go test ./verify -run '^$' -bench BundleMillion -benchtime 3x
func BenchmarkBundleMillion(b *testing.B) {
	const n = 1_000_000
	env, ks := millionBundle(n)
	// The heap a parsed bundle keeps, measured once outside the timed loop (forcing
	// collections inside it would time the collector, not the parser), after one
	// throwaway parse so the heap is in its steady state.
	retained := func() float64 {
		if _, err := parseBundle(env, ks); err != nil {
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)
		kept, err := parseBundle(env, ks)
		if err != nil || kept.Len() != n {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(kept)
		return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / (1 << 20)
	}()
	runtime.GC()
	b.SetBytes(int64(len(env)))
	b.ResetTimer()
	for b.Loop() {
		bu, err := parseBundle(env, ks)
		if err != nil || bu.Len() != n {
			b.Fatal(err)
		}
		if _, ok := bu.Lookup("lic_01J00000000000000000500000"); !ok {
			b.Fatal("lookup")
		}
	}
	b.ReportMetric(float64(len(env))/(1<<20), "MiB-file")
	b.ReportMetric(retained, "MiB-retained")
}

// millionBundle builds a signed bundle of n entries; its temporaries die with it.
func millionBundle(n int) ([]byte, *KeySet) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	kid, _ := Thumbprint(pub)
	ks := &KeySet{keys: map[string]*Key{kid: {KID: kid, Alg: AlgEdDSA, Purposes: []Purpose{PurposeRevocation}, Products: []string{"genai-smart-router"}, Public: pub}}}
	entries := make([]BundleEntry, n)
	for i := range entries {
		entries[i] = BundleEntry{LicenseID: fmt.Sprintf("lic_01J%023d", i), Status: StatusRevoked, Reason: "non-payment", EffectiveAt: "2026-01-01T00:00:00Z"}
	}
	raw, _ := json.Marshal(BundlePayload{Schema: BundleSchema, Issuer: "metrum", Product: "genai-smart-router", Sequence: 1, IssuedAt: "2026-05-01T00:00:00Z", ExpiresAt: "2026-07-01T00:00:00Z", Entries: entries})
	entries = nil
	env, _ := json.Marshal(Envelope{Format: FormatRevocation, KeyID: kid, Algorithm: EnvelopeEd25519,
		Payload: EncodeB64(raw), Signature: EncodeB64(ed25519.Sign(priv, PAE(FormatRevocation, raw)))})
	raw = nil
	return env, ks
}
