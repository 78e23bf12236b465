package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json/jsontext"
)

// Purpose is what a key may sign.
type Purpose string

// The three purposes of formats.md section 1.
const (
	PurposeLicense    Purpose = "license"
	PurposeRevocation Purpose = "revocation"
	PurposeLease      Purpose = "lease"
)

// Key algorithms as they appear in a JWK Set (`alg`).
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
)

// Key is one public key of the key set.
type Key struct {
	KID      string
	Alg      string // EdDSA, ES256 or RS256
	Purposes []Purpose
	// Products are the products whose documents the key may vouch for (formats.md
	// v1.2). Empty: the key set gave none, and the key trusts nothing.
	Products []string
	NotAfter time.Time // zero: none
	Public   crypto.PublicKey
}

// Has reports whether the key may sign documents of purpose p.
func (k *Key) Has(p Purpose) bool { return slices.Contains(k.Purposes, p) }

// Trusts reports whether the key may vouch for documents of the given product. A key
// without products trusts nothing, so that one product's key can never vouch for
// another's documents (formats.md v1.2).
func (k *Key) Trusts(product string) bool {
	return product != "" && slices.Contains(k.Products, product)
}

// KeySet is the set of public keys a verifier trusts, by key ID.
type KeySet struct {
	keys  map[string]*Key
	order []string
	// Dropped names keys in the file that were not trusted, and why.
	Dropped []string
}

// Lookup returns the key with the given ID, or nil.
func (ks *KeySet) Lookup(kid string) *Key {
	if ks == nil {
		return nil
	}
	return ks.keys[kid]
}

// NoProducts names the keys of the set that carry no `products` and so trust nothing
// (formats.md v1.2), for a warning: a set exported before v1.2 loads but verifies
// nothing.
func (ks *KeySet) NoProducts() []string {
	var out []string
	if ks == nil {
		return nil
	}
	for _, kid := range ks.order {
		if len(ks.keys[kid].Products) == 0 {
			out = append(out, kid)
		}
	}
	return out
}

// Keys returns the keys in file order.
func (ks *KeySet) Keys() []*Key {
	out := make([]*Key, 0, len(ks.order))
	for _, kid := range ks.order {
		out = append(out, ks.keys[kid])
	}
	return out
}

type jwkSetWire struct {
	Keys []jsontext.Value `json:"keys"`
}

// JWK is one key of a key set, member for member (formats.md section 1): what the
// verifier parses and what the issuer exports. Private members (d, p, q, …) are
// unknown members and so refuse the key: a key set never carries private material.
type JWK struct {
	Kty      string   `json:"kty"`
	Crv      string   `json:"crv,omitempty"`
	X        string   `json:"x,omitempty"`
	Y        string   `json:"y,omitempty"`
	N        string   `json:"n,omitempty"`
	E        string   `json:"e,omitempty"`
	Kid      string   `json:"kid"`
	Alg      string   `json:"alg"`
	Use      string   `json:"use,omitempty"`
	KeyOps   []string `json:"key_ops,omitempty"`
	Purposes []string `json:"purposes"`
	Products []string `json:"products,omitempty"`
	NotAfter string   `json:"not_after,omitempty"`
}

// ParseKeySet reads a JWK Set (RFC 7517) with the `purposes`, `products` and
// `not_after` members of formats.md section 1. A file that is not a JWK Set is an
// error. A single key that is malformed, carries private material, names an unknown
// purpose, lists a product twice or an empty one, has an `alg` that does not fit its
// key type, or whose `kid` is not its RFC 7638 thumbprint is not trusted (listed in
// Dropped); documents naming it then fail as signed by an unknown key. A key without
// `products` is kept (a v1.2 verifier loads such a set rather than refusing it) but
// trusts nothing: see Key.Trusts and NoProducts.
func ParseKeySet(data []byte) (*KeySet, error) {
	var set jwkSetWire
	if err := decodeStrict(data, &set); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	ks := &KeySet{keys: map[string]*Key{}}
	seen := map[string]bool{}
	for i, raw := range set.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			ks.Dropped = append(ks.Dropped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		if seen[k.KID] {
			// Two entries with one kid: trust neither, the set is ambiguous.
			delete(ks.keys, k.KID)
			ks.order = slices.DeleteFunc(ks.order, func(s string) bool { return s == k.KID })
			ks.Dropped = append(ks.Dropped, fmt.Sprintf("key %d: duplicate kid %s", i, k.KID))
			continue
		}
		seen[k.KID] = true
		ks.keys[k.KID] = k
		ks.order = append(ks.order, k.KID)
	}
	return ks, nil
}

func parseJWK(raw []byte) (*Key, error) {
	var w JWK
	if err := decodeStrict(raw, &w); err != nil {
		return nil, err
	}
	k := &Key{KID: w.Kid, Alg: w.Alg}
	var err error
	switch {
	case w.Kty == "OKP" && w.Crv == "Ed25519" && w.Alg == AlgEdDSA && w.Y == "" && w.N == "" && w.E == "":
		var x []byte
		if x, err = decodeB64("x", w.X); err == nil && len(x) != ed25519.PublicKeySize {
			err = errors.New("x: wrong length for Ed25519")
		}
		k.Public = ed25519.PublicKey(x)
	case w.Kty == "EC" && w.Crv == "P-256" && w.Alg == AlgES256 && w.N == "" && w.E == "":
		k.Public, err = parseP256(w.X, w.Y)
	case w.Kty == "RSA" && w.Alg == AlgRS256 && w.Crv == "" && w.X == "" && w.Y == "":
		k.Public, err = parseRSA(w.N, w.E)
	default:
		return nil, fmt.Errorf("unsupported key type/curve/alg %q/%q/%q", w.Kty, w.Crv, w.Alg)
	}
	if err != nil {
		return nil, err
	}
	if w.Use != "" && w.Use != "sig" {
		return nil, fmt.Errorf("use %q is not sig", w.Use)
	}
	if len(w.Purposes) == 0 {
		return nil, errors.New("no purposes")
	}
	for _, p := range w.Purposes {
		switch Purpose(p) {
		case PurposeLicense, PurposeRevocation, PurposeLease:
			if k.Has(Purpose(p)) {
				return nil, fmt.Errorf("purpose %q listed twice", p)
			}
			k.Purposes = append(k.Purposes, Purpose(p))
		default:
			return nil, fmt.Errorf("unknown purpose %q", p)
		}
	}
	for _, p := range w.Products {
		if p == "" || slices.Contains(k.Products, p) {
			return nil, fmt.Errorf("product %q is empty or listed twice", p)
		}
		k.Products = append(k.Products, p)
	}
	if w.NotAfter != "" {
		if k.NotAfter, err = parseTime("not_after", w.NotAfter); err != nil {
			return nil, err
		}
	}
	tp, err := Thumbprint(k.Public)
	if err != nil {
		return nil, err
	}
	if tp != w.Kid {
		return nil, fmt.Errorf("kid %q is not the key's RFC 7638 thumbprint", w.Kid)
	}
	return k, nil
}

func parseP256(xs, ys string) (*ecdsa.PublicKey, error) {
	x, err := decodeB64("x", xs)
	if err != nil {
		return nil, err
	}
	y, err := decodeB64("y", ys)
	if err != nil {
		return nil, err
	}
	if len(x) != 32 || len(y) != 32 {
		return nil, errors.New("x, y: wrong length for P-256")
	}
	// ParseUncompressedPublicKey checks the point is on the curve.
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return nil, errors.New("point is not on P-256")
	}
	return pub, nil
}

func parseRSA(ns, es string) (*rsa.PublicKey, error) {
	n, err := decodeB64("n", ns)
	if err != nil {
		return nil, err
	}
	e, err := decodeB64("e", es)
	if err != nil {
		return nil, err
	}
	if len(n) == 0 || n[0] == 0 || len(e) == 0 || len(e) > 4 || e[0] == 0 {
		return nil, errors.New("n, e: not minimal big-endian integers")
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if pub.N.BitLen() < 2048 {
		return nil, fmt.Errorf("RSA key of %d bits: 2048 or more required", pub.N.BitLen())
	}
	if pub.E < 3 || pub.E%2 == 0 {
		return nil, errors.New("RSA exponent is not an odd number ≥ 3")
	}
	return pub, nil
}

// Thumbprint returns the RFC 7638 SHA-256 JWK thumbprint of a public key, base64url
// without padding: the only key ID the formats allow.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return EncodeB64(tp), nil
}
