package verify

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// JWSType is the only `typ` a CoreSDK license token may carry.
const JWSType = "coresdk-license+jwt"

// ProductCoreSDK is the product of every JWS-form license.
const ProductCoreSDK = "coresdk"

// CoreSDK plans.
var coreSDKPlans = map[string]bool{"free": true, "team": true, "enterprise": true}

// JWSClaims is the claim set of a CoreSDK license token (formats.md section 7).
type JWSClaims struct {
	Iss          string          `json:"iss"`
	Sub          string          `json:"sub"`
	Iat          int64           `json:"iat"`
	Exp          int64           `json:"exp"`
	Nbf          int64           `json:"nbf,omitzero"`
	Jti          string          `json:"jti"`
	Plan         string          `json:"plan"`
	Entitlements JWSEntitlements `json:"entitlements"`
}

// JWSEntitlements is the `entitlements` claim; a nil limit is unlimited.
type JWSEntitlements struct {
	MaxTenants *int64   `json:"max_tenants,omitempty"`
	MaxRPS     *int64   `json:"max_rps,omitempty"`
	Features   []string `json:"features"`
}

// isJWS tells a compact JWS from a JSON envelope: an envelope is a JSON object.
func isJWS(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] != '{'
}

// parseJWS verifies a CoreSDK compact JWS. The header is checked by hand before the
// signature because the spec is stricter than JOSE: exactly alg, kid and typ, nothing
// else (no crit, jku, jwk, x5u, x5c, b64), no duplicates. go-jose then checks the
// signature with the key the kid names, restricted to that key's one algorithm.
func parseJWS(data []byte, ks *KeySet) (*License, error) {
	token := strings.TrimSpace(string(data)) // a license.jwk file may end with a newline
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("jws: not a compact JWS of three parts")
	}
	hdrBytes, err := decodeB64("jws header", parts[0])
	if err != nil {
		return nil, err
	}
	payload, err := decodeB64("jws payload", parts[1])
	if err != nil {
		return nil, err
	}
	if _, err := decodeB64("jws signature", parts[2]); err != nil {
		return nil, err
	}
	var hdr struct {
		Alg *string `json:"alg"`
		Kid *string `json:"kid"`
		Typ *string `json:"typ"`
	}
	if err := decodeStrict(hdrBytes, &hdr); err != nil {
		return nil, fmt.Errorf("jws header: %w", err)
	}
	if hdr.Alg == nil || hdr.Kid == nil || hdr.Typ == nil {
		return nil, errors.New("jws header: alg, kid and typ are required")
	}
	if *hdr.Typ != JWSType {
		return nil, fmt.Errorf("jws header: typ %q is not %s", *hdr.Typ, JWSType)
	}
	switch *hdr.Alg {
	case AlgRS256, AlgES256, AlgEdDSA:
	default:
		return nil, fmt.Errorf("jws header: alg %q is not allowed", *hdr.Alg)
	}
	key := ks.Lookup(*hdr.Kid)
	if key == nil {
		return nil, fmt.Errorf("jws: unknown kid %q", *hdr.Kid)
	}
	if key.Alg != *hdr.Alg {
		return nil, fmt.Errorf("jws: alg %s does not match key %s (%s)", *hdr.Alg, key.KID, key.Alg)
	}
	if !key.Has(PurposeLicense) {
		return nil, fmt.Errorf("jws: key %s lacks the license purpose", key.KID)
	}
	if !key.Trusts(ProductCoreSDK) {
		return nil, fmt.Errorf("jws: key %s is not trusted for product %s", key.KID, ProductCoreSDK)
	}
	obj, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(key.Alg)})
	if err != nil {
		return nil, fmt.Errorf("jws: %w", err)
	}
	signed, err := obj.Verify(key.Public)
	if err != nil || !bytes.Equal(signed, payload) {
		return nil, errors.New("jws: bad signature")
	}
	l, err := parseJWSClaims(payload)
	if err != nil {
		return nil, err
	}
	if !key.NotAfter.IsZero() && l.IssuedAt.After(key.NotAfter) {
		return nil, fmt.Errorf("jws: issued by key %s past its not_after", key.KID)
	}
	l.KeyID, l.Algorithm = key.KID, key.Alg
	return l, nil
}

func parseJWSClaims(payload []byte) (*License, error) {
	var w struct {
		Iss          *string `json:"iss"`
		Sub          *string `json:"sub"`
		Iat          *int64  `json:"iat"`
		Exp          *int64  `json:"exp"`
		Nbf          *int64  `json:"nbf"`
		Jti          *string `json:"jti"`
		Plan         *string `json:"plan"`
		Entitlements *struct {
			MaxTenants *int64    `json:"max_tenants"`
			MaxRPS     *int64    `json:"max_rps"`
			Features   *[]string `json:"features"`
		} `json:"entitlements"`
	}
	if err := decodeStrict(payload, &w); err != nil {
		return nil, fmt.Errorf("jws claims: %w", err)
	}
	if w.Iss == nil || w.Sub == nil || w.Iat == nil || w.Exp == nil || w.Jti == nil || w.Plan == nil || w.Entitlements == nil {
		return nil, errors.New("jws claims: iss, sub, iat, exp, jti, plan and entitlements are required")
	}
	if *w.Iss == "" || *w.Sub == "" {
		return nil, errors.New("jws claims: iss and sub must not be empty")
	}
	if !licenseID.MatchString(*w.Jti) {
		return nil, errors.New("jws claims: jti is not lic_ + ULID")
	}
	if !coreSDKPlans[*w.Plan] {
		return nil, fmt.Errorf("jws claims: unknown plan %q", *w.Plan)
	}
	l := &License{
		Form: "jws", LicenseID: *w.Jti, Product: ProductCoreSDK, Issuer: *w.Iss, CustomerID: *w.Sub,
		SKU: *w.Plan, Plan: *w.Plan, IssuedAt: time.Unix(*w.Iat, 0).UTC(), ExpiresAt: time.Unix(*w.Exp, 0).UTC(),
		Limits: map[string]int64{}, Features: []string{},
	}
	if w.Nbf != nil {
		l.NotBefore = time.Unix(*w.Nbf, 0).UTC()
		if *w.Nbf >= *w.Exp {
			return nil, errors.New("jws claims: nbf must be before exp")
		}
	}
	if *w.Iat >= *w.Exp {
		return nil, errors.New("jws claims: iat must be before exp")
	}
	e := w.Entitlements
	if e.Features != nil {
		l.Features = *e.Features
	}
	if err := checkFeatures(l.Features, false); err != nil {
		return nil, err
	}
	if e.MaxTenants != nil {
		l.Limits["max_tenants"] = *e.MaxTenants
	}
	if e.MaxRPS != nil {
		l.Limits["max_rps"] = *e.MaxRPS
	}
	if err := checkLimits(l.Limits); err != nil {
		return nil, err
	}
	return l, nil
}
