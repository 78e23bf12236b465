package usage_test

import (
	"crypto/ed25519"
	"testing"

	"github.com/metrum/licensing/usage"
)

// FuzzReport: the report and upload-body parsers never panic, and whatever Parse
// accepts is a report a bound key signed, whose shape holds (seq 1 carries its key).
func FuzzReport(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	envs := chainOf(f, seed)
	for _, e := range envs {
		f.Add(e)
	}
	f.Add(usage.MarshalBatch(envs))
	f.Add([]byte(`{"reports":[{"format":"metrum.usage.v1"}]}`))
	pub := seed.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, data []byte) {
		usage.ParseBatch(data)
		for _, key := range []ed25519.PublicKey{nil, pub} {
			r, err := usage.Parse(data, key)
			if err != nil {
				continue
			}
			if !r.Key.Equal(pub) || r.KeyID != usage.KeyID(pub) || (r.Seq == 1) != (r.HostKey != nil) || !r.Start.Before(r.End) {
				t.Fatalf("accepted an inconsistent report: %+v", r.Payload)
			}
		}
	})
}
