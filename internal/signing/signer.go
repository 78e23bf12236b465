// Package signing holds the issuer's signing keys and produces the signed forms of
// formats.md: envelopes (Ed25519, ES256) and CoreSDK JWS tokens. A key's private part
// never leaves its backend: callers get a Signer, which signs and tells its public
// metadata, and nothing else.
package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/verify"
)

// Signer is one signing key behind any backend (file, PKCS#11, cloud KMS).
type Signer interface {
	crypto.Signer
	// KeyID is the RFC 7638 thumbprint of the public key.
	KeyID() string
	// Algorithm is the key's JWK alg: EdDSA, ES256 or RS256.
	Algorithm() string
	// Purposes the key may sign for.
	Purposes() []verify.Purpose
}

// ErrPurpose is returned when a key is asked to sign a document it has no purpose for.
var ErrPurpose = errors.New("signing: key lacks the purpose for this document")

var formatPurpose = map[string]verify.Purpose{
	verify.FormatLicense:    verify.PurposeLicense,
	verify.FormatRevocation: verify.PurposeRevocation,
	verify.FormatLease:      verify.PurposeLease,
}

// SignEnvelope signs payload as a document of the given format and returns the
// envelope file bytes (one JSON object and a newline).
func SignEnvelope(s Signer, format string, payload []byte) ([]byte, error) {
	p, ok := formatPurpose[format]
	if !ok {
		return nil, fmt.Errorf("signing: unknown format %q", format)
	}
	if !slices.Contains(s.Purposes(), p) {
		return nil, fmt.Errorf("%w: %s needs %s, key %s has %v", ErrPurpose, format, p, s.KeyID(), s.Purposes())
	}
	msg := verify.PAE(format, payload)
	var sig []byte
	var alg string
	var err error
	switch s.Algorithm() {
	case verify.AlgEdDSA:
		alg = verify.EnvelopeEd25519
		sig, err = s.Sign(rand.Reader, msg, crypto.Hash(0))
	case verify.AlgES256:
		alg = verify.EnvelopeES256
		sig, err = signES256(s, msg)
	default:
		return nil, fmt.Errorf("signing: %s keys can't sign envelopes", s.Algorithm())
	}
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	env := verify.Envelope{Format: format, KeyID: s.KeyID(), Algorithm: alg,
		Payload: verify.EncodeB64(payload), Signature: verify.EncodeB64(sig)}
	out, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// signES256 signs SHA-256(msg) and returns the 64-byte R‖S form JOSE uses, whatever
// the backend returns (crypto.Signer gives ASN.1 DER for ECDSA).
func signES256(s crypto.Signer, msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	der, err := s.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) != 0 {
		return nil, errors.New("ECDSA signature is not DER")
	}
	out := make([]byte, 64)
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return out, nil
}

// PublicJWK is one key of the public key set: the verifier's own JWK type, so the
// issuer exports exactly what the verifier parses.
type PublicJWK = verify.JWK

// JWKOf describes a public key for the key set, bound to the given products.
func JWKOf(pub crypto.PublicKey, alg string, purposes []verify.Purpose, products ...string) (PublicJWK, error) {
	kid, err := verify.Thumbprint(pub)
	if err != nil {
		return PublicJWK{}, err
	}
	j := PublicJWK{Kid: kid, Alg: alg, Use: "sig", Products: products}
	for _, p := range purposes {
		j.Purposes = append(j.Purposes, string(p))
	}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", verify.EncodeB64(k)
	case *ecdsa.PublicKey:
		b, err := k.Bytes()
		if err != nil {
			return PublicJWK{}, err
		}
		j.Kty, j.Crv, j.X, j.Y = "EC", "P-256", verify.EncodeB64(b[1:33]), verify.EncodeB64(b[33:])
	case *rsa.PublicKey:
		j.Kty, j.N, j.E = "RSA", verify.EncodeB64(k.N.Bytes()), verify.EncodeB64(big.NewInt(int64(k.E)).Bytes())
	default:
		return PublicJWK{}, fmt.Errorf("signing: unsupported public key %T", pub)
	}
	return j, nil
}

// KeySetJSON renders the public JWK Set the verifier embeds.
func KeySetJSON(keys []PublicJWK) ([]byte, error) {
	if keys == nil {
		keys = []PublicJWK{}
	}
	out, err := json.Marshal(struct {
		Keys []PublicJWK `json:"keys"`
	}{keys}, json.Deterministic(true))
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
