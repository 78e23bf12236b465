package verify_test

import (
	"strings"
	"testing"

	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

func claims() map[string]any {
	return map[string]any{
		"iss": "https://licensing.coresdk.io", "sub": "org_acme", "iat": t0.AddDate(0, -1, 0).Unix(),
		"exp": t0.AddDate(1, 0, 0).Unix(), "jti": licID, "plan": "team",
		"entitlements": map[string]any{"max_tenants": 50, "max_rps": 5000, "features": []string{"feature_flags", "audit_trails", "saml", "scim"}},
	}
}

func (f *fixture) jws(k *signing.FileKey, c map[string]any) string {
	f.t.Helper()
	tok, err := signing.SignJWS(k, marshal(f.t, c))
	if err != nil {
		f.t.Fatal(err)
	}
	return f.write("license.jwk", []byte(tok+"\n"))
}

// forgeJWS builds a token with any header, signed by k over the exact input.
func (f *fixture) forgeJWS(k *signing.FileKey, header string, c map[string]any) string {
	f.t.Helper()
	good, err := signing.SignJWS(k, marshal(f.t, c))
	if err != nil {
		f.t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	return f.write("license.jwk", []byte(verify.EncodeB64([]byte(header))+"."+parts[1]+"."+parts[2]))
}

func TestJWS(t *testing.T) {
	jwsOpts := func(f *fixture, path string) verify.Options {
		o := f.opts(path)
		o.Product = "coresdk"
		return o
	}
	hdr := func(f *fixture, k *signing.FileKey, extra string) string {
		return `{"alg":"` + k.Algorithm() + `","kid":"` + k.KeyID() + `","typ":"coresdk-license+jwt"` + extra + `}`
	}
	run(t, []tc{
		{"RS256", func(f *fixture) verify.Options { return jwsOpts(f, f.jws(f.rsa, claims())) }, V, ""},
		{"ES256", func(f *fixture) verify.Options { return jwsOpts(f, f.jws(f.es, claims())) }, V, ""},
		{"EdDSA", func(f *fixture) verify.Options { return jwsOpts(f, f.jws(f.edJWS, claims())) }, V, ""},
		{"product is coresdk", func(f *fixture) verify.Options {
			o := jwsOpts(f, f.jws(f.es, claims()))
			o.Product = "genai-smart-router"
			return o
		}, B, verify.ReasonProductMismatch},
		{"expired", func(f *fixture) verify.Options {
			o := jwsOpts(f, f.jws(f.es, claims()))
			o.Now = t0.AddDate(2, 0, 0)
			return o
		}, B, verify.ReasonExpired},
		{"nbf in the future", func(f *fixture) verify.Options {
			c := claims()
			c["nbf"] = t0.Add(3600e9).Unix()
			return jwsOpts(f, f.jws(f.es, c))
		}, B, verify.ReasonNotYetValid},
		{"tenants over the plan", func(f *fixture) verify.Options {
			o := jwsOpts(f, f.jws(f.es, claims()))
			o.Limits = map[string]int64{"max_tenants": 51}
			return o
		}, B, verify.ReasonLimitExceeded},
		{"enterprise: tenants unlimited", func(f *fixture) verify.Options {
			c := claims()
			c["plan"], c["entitlements"] = "enterprise", map[string]any{"max_rps": 20000, "features": []string{"saml"}}
			o := jwsOpts(f, f.jws(f.es, c))
			o.Limits = map[string]int64{"max_tenants": 100000}
			return o
		}, V, ""},
		{"feature not in entitlements", func(f *fixture) verify.Options {
			o := jwsOpts(f, f.jws(f.es, claims()))
			o.Features = []string{"hsm"}
			return o
		}, B, verify.ReasonFeatureForbidden},
		{"unknown plan", func(f *fixture) verify.Options {
			c := claims()
			c["plan"] = "gold"
			return jwsOpts(f, f.jws(f.es, c))
		}, B, verify.ReasonInvalid},
		{"exp missing", func(f *fixture) verify.Options { return jwsOpts(f, f.jws(f.es, with(claims(), "exp", nil))) }, B, verify.ReasonInvalid},
		{"unknown claim", func(f *fixture) verify.Options { return jwsOpts(f, f.jws(f.es, with(claims(), "admin", true))) }, B, verify.ReasonInvalid},
		{"crit header", func(f *fixture) verify.Options {
			return jwsOpts(f, f.forgeJWS(f.es, hdr(f, f.es, `,"crit":["exp"]`), claims()))
		}, B, verify.ReasonInvalid},
		{"embedded jwk header", func(f *fixture) verify.Options {
			return jwsOpts(f, f.forgeJWS(f.es, hdr(f, f.es, `,"jwk":{"kty":"EC"}`), claims()))
		}, B, verify.ReasonInvalid},
		{"jku header", func(f *fixture) verify.Options {
			return jwsOpts(f, f.forgeJWS(f.es, hdr(f, f.es, `,"jku":"https://evil/"`), claims()))
		}, B, verify.ReasonInvalid},
		{"b64 header", func(f *fixture) verify.Options {
			return jwsOpts(f, f.forgeJWS(f.es, hdr(f, f.es, `,"b64":false`), claims()))
		}, B, verify.ReasonInvalid},
		{"duplicate header member", func(f *fixture) verify.Options {
			return jwsOpts(f, f.forgeJWS(f.es, hdr(f, f.es, `,"typ":"coresdk-license+jwt"`), claims()))
		}, B, verify.ReasonInvalid},
		{"typ missing", func(f *fixture) verify.Options {
			return jwsOpts(f, f.forgeJWS(f.es, `{"alg":"ES256","kid":"`+f.es.KeyID()+`"}`, claims()))
		}, B, verify.ReasonInvalid},
		{"typ JWT", func(f *fixture) verify.Options {
			return jwsOpts(f, f.forgeJWS(f.es, `{"alg":"ES256","kid":"`+f.es.KeyID()+`","typ":"JWT"}`, claims()))
		}, B, verify.ReasonInvalid},
		{"alg none", func(f *fixture) verify.Options {
			h := verify.EncodeB64([]byte(`{"alg":"none","kid":"` + f.es.KeyID() + `","typ":"coresdk-license+jwt"}`))
			return jwsOpts(f, f.write("license.jwk", []byte(h+"."+verify.EncodeB64(marshal(f.t, claims()))+".")))
		}, B, verify.ReasonInvalid},
		{"alg HS256 with the public key as secret", func(f *fixture) verify.Options {
			return jwsOpts(f, f.forgeJWS(f.es, `{"alg":"HS256","kid":"`+f.es.KeyID()+`","typ":"coresdk-license+jwt"}`, claims()))
		}, B, verify.ReasonInvalid},
		{"alg differs from the key's", func(f *fixture) verify.Options {
			return jwsOpts(f, f.forgeJWS(f.es, `{"alg":"RS256","kid":"`+f.es.KeyID()+`","typ":"coresdk-license+jwt"}`, claims()))
		}, B, verify.ReasonInvalid},
		{"key trusted for revocation only", func(f *fixture) verify.Options {
			return jwsOpts(f, f.jws(f.trustedAs(verify.PurposeRevocation), claims()))
		}, B, verify.ReasonInvalid},
		{"tampered claims", func(f *fixture) verify.Options {
			p := f.jws(f.es, claims())
			c := claims()
			c["plan"] = "enterprise"
			b := readFile(f, p)
			parts := strings.Split(strings.TrimSpace(b), ".")
			return jwsOpts(f, f.write("license.jwk", []byte(parts[0]+"."+verify.EncodeB64(marshal(f.t, c))+"."+parts[2])))
		}, B, verify.ReasonInvalid},
		{"four parts", func(f *fixture) verify.Options {
			return jwsOpts(f, f.write("license.jwk", []byte(strings.TrimSpace(readFile(f, f.jws(f.es, claims())))+".x")))
		}, B, verify.ReasonInvalid},
	})
}
