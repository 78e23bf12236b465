package verify_test

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

// Known-answer tests: documents signed by a tool other than our signer (openssl, with
// keys openssl made now) verify, so the verifier is held to the formats, not to our
// own signing code. A check that can't run fails in CI instead of skipping.
type opensslKAT struct {
	t   *testing.T
	dir string
	bin string
}

func newOpenSSL(t *testing.T) *opensslKAT {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is not installed: the known-answer tests can't run")
		}
		t.Skip("openssl is not installed")
	}
	return &opensslKAT{t: t, dir: t.TempDir(), bin: bin}
}

func (o *opensslKAT) run(stdin []byte, args ...string) []byte {
	o.t.Helper()
	cmd := exec.Command(o.bin, args...)
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	out, err := cmd.Output()
	if err != nil {
		o.t.Fatalf("openssl %v: %v", args, err)
	}
	return out
}

// key makes a key with openssl genpkey and returns its path and public key.
func (o *opensslKAT) key(name string, genArgs ...string) (string, any) {
	o.t.Helper()
	path := filepath.Join(o.dir, name+".pem")
	o.run(nil, append([]string{"genpkey", "-out", path}, genArgs...)...)
	pubPEM := o.run(nil, "pkey", "-in", path, "-pubout")
	block, _ := pem.Decode(pubPEM)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		o.t.Fatal(err)
	}
	return path, pub
}

// sign signs msg with SHA-256 (ECDSA: the DER signature openssl writes, converted to
// the 64-byte R‖S the formats use).
func (o *opensslKAT) sign(keyPath string, msg []byte, ecdsa bool) []byte {
	o.t.Helper()
	sig := o.run(msg, "dgst", "-sha256", "-sign", keyPath)
	if !ecdsa {
		return sig
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		o.t.Fatal(err)
	}
	out := make([]byte, 64)
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return out
}

func keySetOf(t *testing.T, keys ...signing.PublicJWK) *verify.KeySet {
	t.Helper()
	b, err := signing.KeySetJSON(keys)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := verify.ParseKeySet(b)
	if err != nil || len(ks.Dropped) > 0 {
		t.Fatalf("key set: %v %v", err, ks.Dropped)
	}
	return ks
}

func TestKnownAnswerES256EnvelopeFromOpenSSL(t *testing.T) {
	o := newOpenSSL(t)
	path, pub := o.key("ec", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
	jwk, err := signing.JWKOf(pub, verify.AlgES256, []verify.Purpose{verify.PurposeLicense}, router)
	if err != nil {
		t.Fatal(err)
	}
	payload := marshal(t, payload())
	sig := o.sign(path, verify.PAE(verify.FormatLicense, payload), true)
	env := `{"format":"metrum.license.v1","key_id":"` + jwk.Kid + `","algorithm":"ES256","payload":"` +
		verify.EncodeB64(payload) + `","signature":"` + verify.EncodeB64(sig) + `"}`
	file := filepath.Join(o.dir, "license.json")
	os.WriteFile(file, []byte(env), 0o644)
	ks := keySetOf(t, jwk)
	r := verify.Verify(verify.Options{LicensePath: file, KeySet: ks, Now: t0, Revocation: verify.RevocationOff})
	if r.Status != verify.StatusValid || r.KeyID != jwk.Kid {
		t.Fatalf("openssl-signed ES256 envelope: %s %s %s", r.Status, r.Reason, r.Detail)
	}
	// The same signature over another document type is refused (DSSE binds the type).
	bad := strings.Replace(env, "metrum.license.v1", "metrum.lease.v1", 1)
	os.WriteFile(file, []byte(bad), 0o644)
	if r := verify.Verify(verify.Options{LicensePath: file, KeySet: ks, Now: t0}); r.Reason != verify.ReasonInvalid {
		t.Fatalf("format swapped: %s %s", r.Status, r.Reason)
	}
}

func TestKnownAnswerJWSFromOpenSSL(t *testing.T) {
	o := newOpenSSL(t)
	now := time.Now().UTC()
	claims := marshal(t, map[string]any{"iss": "https://licensing.coresdk.io", "sub": "org_acme",
		"iat": now.Add(-time.Hour).Unix(), "exp": now.Add(24 * time.Hour).Unix(), "jti": licID, "plan": "team",
		"entitlements": map[string]any{"max_tenants": 50, "max_rps": 5000, "features": []string{"saml"}}})
	for _, c := range []struct {
		alg     string
		genArgs []string
		ecdsa   bool
	}{
		{verify.AlgRS256, []string{"-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"}, false},
		{verify.AlgES256, []string{"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, true},
	} {
		t.Run(c.alg, func(t *testing.T) {
			path, pub := o.key(c.alg, c.genArgs...)
			jwk, err := signing.JWKOf(pub, c.alg, []verify.Purpose{verify.PurposeLicense}, coresdk)
			if err != nil {
				t.Fatal(err)
			}
			header := `{"alg":"` + c.alg + `","kid":"` + jwk.Kid + `","typ":"coresdk-license+jwt"}`
			input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(claims)
			tok := input + "." + base64.RawURLEncoding.EncodeToString(o.sign(path, []byte(input), c.ecdsa))
			file := filepath.Join(o.dir, c.alg+".jwk")
			os.WriteFile(file, []byte(tok+"\n"), 0o644)
			r := verify.Verify(verify.Options{LicensePath: file, KeySet: keySetOf(t, jwk), Product: "coresdk", Now: now})
			if r.Status != verify.StatusValid || r.SKU != "team" {
				t.Fatalf("openssl-signed %s JWS: %s %s %s", c.alg, r.Status, r.Reason, r.Detail)
			}
		})
	}
}
