//go:build pkcs11

package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ThalesGroup/crypto11"

	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

// Available reports whether this binary was built with PKCS#11 support.
const Available = true

// labelPrefix starts the CKA_LABEL of every key this backend makes; the purposes
// follow, so a key's purposes live on the token with it and are checked on open.
const labelPrefix = "metrum|"

func label(purposes []string) string { return labelPrefix + strings.Join(purposes, ",") }

// Backend is a PKCS#11 token.
type Backend struct {
	ctx *crypto11.Context
}

var _ signing.Backend = (*Backend)(nil)

// New opens the token and logs in; the returned func closes it.
func New(c Config) (signing.Backend, func() error, error) {
	if c.Module == "" || c.TokenLabel == "" || c.Pin == "" {
		return nil, nil, errors.New("pkcs11: module, token label and PIN are required")
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: c.Module, TokenLabel: c.TokenLabel, Pin: c.Pin})
	if err != nil {
		return nil, nil, fmt.Errorf("pkcs11: open token %q: %w", c.TokenLabel, err)
	}
	return &Backend{ctx: ctx}, ctx.Close, nil
}

// Name implements signing.Backend.
func (*Backend) Name() string { return Name }

// Generate implements signing.Backend: a P-256 key pair made on the token, private
// half sensitive and non-extractable, labelled with its purposes.
func (b *Backend) Generate(alg string, purposes []verify.Purpose) (signing.Signer, string, error) {
	if alg != verify.AlgES256 {
		return nil, "", fmt.Errorf("pkcs11: this backend makes ES256 keys, not %s", alg)
	}
	if len(purposes) == 0 {
		return nil, "", errors.New("pkcs11: a key needs at least one purpose")
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, "", err
	}
	k, err := b.ctx.GenerateECDSAKeyPairWithLabel(id, []byte(label(names(purposes))), elliptic.P256())
	if err != nil {
		return nil, "", fmt.Errorf("pkcs11: generate: %w", err)
	}
	s, err := wrap(k, purposes)
	if err != nil {
		return nil, "", err
	}
	return s, hex.EncodeToString(id), nil
}

// Destroy implements signing.Backend: the key pair with the token object ID ref.Ref is
// deleted from the token.
func (b *Backend) Destroy(ref signing.KeyRef) error {
	id, err := hex.DecodeString(ref.Ref)
	if err != nil || len(id) == 0 {
		return fmt.Errorf("pkcs11: key %s has no valid token object ID", ref.KID)
	}
	k, err := b.ctx.FindKeyPair(id, nil)
	if err != nil {
		return fmt.Errorf("pkcs11: find key %s: %w", ref.KID, err)
	}
	if k == nil {
		return nil
	}
	if err := k.Delete(); err != nil {
		return fmt.Errorf("pkcs11: delete key %s: %w", ref.KID, err)
	}
	return nil
}

// Open implements signing.Backend: the key pair with the token object ID ref.Ref,
// whose label must carry exactly the purposes of the record.
func (b *Backend) Open(ref signing.KeyRef) (signing.Signer, error) {
	id, err := hex.DecodeString(ref.Ref)
	if err != nil || len(id) == 0 {
		return nil, fmt.Errorf("pkcs11: key %s has no valid token object ID", ref.KID)
	}
	k, err := b.ctx.FindKeyPair(id, nil)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: find key %s: %w", ref.KID, err)
	}
	if k == nil {
		return nil, fmt.Errorf("pkcs11: key %s is not on the token", ref.KID)
	}
	attr, err := b.ctx.GetAttribute(k, crypto11.CkaLabel)
	if err != nil || attr == nil {
		return nil, fmt.Errorf("pkcs11: key %s: read label: %v", ref.KID, err)
	}
	purposes, ok := parseLabel(string(attr.Value))
	if !ok {
		return nil, fmt.Errorf("pkcs11: key %s was not made by this issuer (label %q)", ref.KID, attr.Value)
	}
	return wrap(k, purposes)
}

func parseLabel(l string) ([]verify.Purpose, bool) {
	rest, ok := strings.CutPrefix(l, labelPrefix)
	if !ok || rest == "" {
		return nil, false
	}
	var ps []verify.Purpose
	for _, p := range strings.Split(rest, ",") {
		ps = append(ps, verify.Purpose(p))
	}
	return ps, true
}

func names(ps []verify.Purpose) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	slices.Sort(out)
	return out
}

// tokenKey is a key on the token as a signing.Signer.
type tokenKey struct {
	k        crypto11.Signer
	kid      string
	purposes []verify.Purpose
}

func wrap(k crypto11.Signer, purposes []verify.Purpose) (*tokenKey, error) {
	pub, ok := k.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("pkcs11: key is %T, not a P-256 key", k.Public())
	}
	kid, err := verify.Thumbprint(pub)
	if err != nil {
		return nil, err
	}
	return &tokenKey{k: k, kid: kid, purposes: purposes}, nil
}

func (t *tokenKey) KeyID() string              { return t.kid }
func (t *tokenKey) Algorithm() string          { return verify.AlgES256 }
func (t *tokenKey) Purposes() []verify.Purpose { return t.purposes }
func (t *tokenKey) Public() crypto.PublicKey   { return t.k.Public() }
func (t *tokenKey) String() string             { return "PKCS11Key(ES256 " + t.kid + ")" }
func (t *tokenKey) GoString() string           { return t.String() }

// Sign implements crypto.Signer: the token signs (ASN.1 DER, as crypto.Signer
// promises; signing.SignEnvelope turns it into R‖S).
func (t *tokenKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return t.k.Sign(r, digest, opts)
}

// Context is the underlying crypto11 context (tests inspect key attributes with it).
func (b *Backend) Context() *crypto11.Context { return b.ctx }
