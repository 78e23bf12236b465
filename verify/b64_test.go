package verify

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"testing"
)

// TestParallelBase64MatchesSerial: the split decode gives exactly the strict
// decoder's verdict and bytes, around the threshold and for corruptions on either
// side of the split.
func TestParallelBase64MatchesSerial(t *testing.T) {
	for _, n := range []int{parallelDecodeMin / 4 * 3, parallelDecodeMin/4*3 + 1, parallelDecodeMin/4*3 + 2, parallelDecodeMin + 7} {
		raw := make([]byte, n)
		rand.Read(raw)
		enc := []byte(base64.RawURLEncoding.EncodeToString(raw))
		mutations := map[string]func([]byte) []byte{
			"none":                   func(b []byte) []byte { return b },
			"std alphabet, 2nd half": func(b []byte) []byte { b[len(b)*3/4] = '+'; return b },
			"padding, 1st half":      func(b []byte) []byte { b[len(b)/4] = '='; return b },
			"padding at the end":     func(b []byte) []byte { return append(b, '=') },
			"junk at the split":      func(b []byte) []byte { b[len(b)/2&^3] = '!'; return b },
			"one more character":     func(b []byte) []byte { return append(b, 'B') },
			"one fewer character":    func(b []byte) []byte { return b[:len(b)-1] },
		}
		for name, mutate := range mutations {
			e := mutate(bytes.Clone(enc))
			want := make([]byte, b64.DecodedLen(len(e)))
			got, serr := b64.Decode(want, e)
			serialOK := serr == nil && got == len(want)
			dst := make([]byte, len(want))
			perr := decodeB64Into(dst, e)
			if (perr == nil) != serialOK || (serialOK && !bytes.Equal(dst, want)) {
				t.Fatalf("n=%d %s: split err %v, serial ok %v (%v)", n, name, perr, serialOK, serr)
			}
		}
	}
}
