package signing

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/verify"
)

// FileKey is a signing key held in a file, encrypted at rest. It satisfies Signer; its
// private key is unexported and never serialised except sealed by SaveFileKey.
type FileKey struct {
	kid      string
	alg      string
	purposes []verify.Purpose
	priv     crypto.Signer
}

var _ Signer = (*FileKey)(nil)

// KeyID implements Signer.
func (k *FileKey) KeyID() string { return k.kid }

// Algorithm implements Signer.
func (k *FileKey) Algorithm() string { return k.alg }

// Purposes implements Signer.
func (k *FileKey) Purposes() []verify.Purpose { return k.purposes }

// Public implements crypto.Signer.
func (k *FileKey) Public() crypto.PublicKey { return k.priv.Public() }

// Sign implements crypto.Signer.
func (k *FileKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.priv.Sign(r, digest, opts)
}

// String never shows key material, whatever prints the key.
func (k *FileKey) String() string { return fmt.Sprintf("FileKey(%s %s %v)", k.alg, k.kid, k.purposes) }

// GoString is String, so %#v can't dump the private key either.
func (k *FileKey) GoString() string { return k.String() }

// GenerateKey makes a new key of the given algorithm (EdDSA, ES256, RS256).
func GenerateKey(alg string, purposes []verify.Purpose) (*FileKey, error) {
	if len(purposes) == 0 {
		return nil, errors.New("signing: a key needs at least one purpose")
	}
	var priv crypto.Signer
	var err error
	switch alg {
	case verify.AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case verify.AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case verify.AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 3072)
	default:
		return nil, fmt.Errorf("signing: unsupported algorithm %q (EdDSA, ES256, RS256)", alg)
	}
	if err != nil {
		return nil, err
	}
	return newFileKey(priv, alg, purposes)
}

// NewFileKey wraps a private key made elsewhere (an import, or a test that must know
// the key to prove it never leaks). The algorithm must fit the key.
func NewFileKey(priv crypto.Signer, alg string, purposes []verify.Purpose) (*FileKey, error) {
	if len(purposes) == 0 {
		return nil, errors.New("signing: a key needs at least one purpose")
	}
	want := map[string]bool{verify.AlgEdDSA: false, verify.AlgES256: false, verify.AlgRS256: false}
	switch priv.Public().(type) {
	case ed25519.PublicKey:
		want[verify.AlgEdDSA] = true
	case *ecdsa.PublicKey:
		want[verify.AlgES256] = true
	case *rsa.PublicKey:
		want[verify.AlgRS256] = true
	}
	if !want[alg] {
		return nil, fmt.Errorf("signing: a %T key can't be %s", priv.Public(), alg)
	}
	return newFileKey(priv, alg, purposes)
}

func newFileKey(priv crypto.Signer, alg string, purposes []verify.Purpose) (*FileKey, error) {
	kid, err := verify.Thumbprint(priv.Public())
	if err != nil {
		return nil, err
	}
	return &FileKey{kid: kid, alg: alg, purposes: purposes, priv: priv}, nil
}

// sealedKey is the on-disk form: the private key (PKCS#8) sealed with a fresh data key,
// and the data key wrapped by the key-encryption key. Both AES-256-GCM, both with the
// slot (kid, alg, purposes) as associated data, so a sealed key copied into another
// slot's file, or edited to claim other purposes, fails to open.
type sealedKey struct {
	Version    int      `json:"version"`
	KID        string   `json:"kid"`
	Alg        string   `json:"alg"`
	Purposes   []string `json:"purposes"`
	CreatedAt  string   `json:"created_at"`
	WrappedDEK string   `json:"wrapped_dek"` // base64url
	Sealed     string   `json:"sealed_key"`  // base64url
}

func (s *sealedKey) aad() []byte {
	return []byte("metrum.signing-key.v1|" + s.KID + "|" + s.Alg + "|" + strings.Join(s.Purposes, ","))
}

// KeyPath is where a key with this ID lives in dir.
func KeyPath(dir, kid string) string { return filepath.Join(dir, kid+".key") }

// SaveFileKey seals k with kek and writes it to dir as <kid>.key, mode 0600, atomically.
func SaveFileKey(dir string, k *FileKey, kek *KEK) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return err
	}
	defer clear(der)
	s := &sealedKey{Version: 1, KID: k.kid, Alg: k.alg, CreatedAt: verify.FormatTime(time.Now())}
	for _, p := range k.purposes {
		s.Purposes = append(s.Purposes, string(p))
	}
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		return err
	}
	defer clear(dek)
	sealed, err := seal(dek, der, s.aad())
	if err != nil {
		return err
	}
	wrapped, err := seal(kek.key[:], dek, s.aad())
	if err != nil {
		return err
	}
	s.Sealed, s.WrappedDEK = verify.EncodeB64(sealed), verify.EncodeB64(wrapped)
	out, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return verify.WriteFileAtomic(KeyPath(dir, k.kid), append(out, '\n'), 0o600)
}

// listKeyFiles returns the key IDs of the sealed key files in dir.
func listKeyFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	var kids []string
	for _, e := range entries {
		if name := e.Name(); !e.IsDir() && strings.HasSuffix(name, ".key") && !strings.HasPrefix(name, ".") {
			kids = append(kids, strings.TrimSuffix(name, ".key"))
		}
	}
	return kids, nil
}

// ErrKeyFileMode refuses a key file that group or others could read.
var ErrKeyFileMode = errors.New("signing: key file is readable by group or others (want 0600)")

// LoadFileKey opens a sealed key file. The file must not be group- or world-accessible,
// and it must open under its own slot: the kid in the file must be the key's thumbprint
// and match wantKID when given.
func LoadFileKey(path string, kek *KEK, wantKID string) (*FileKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is %v", ErrKeyFileMode, path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	var s sealedKey
	if err := json.Unmarshal(data, &s, json.RejectUnknownMembers(true)); err != nil {
		return nil, fmt.Errorf("signing: key file %s: %w", path, err)
	}
	if wantKID != "" && s.KID != wantKID {
		return nil, fmt.Errorf("signing: key file %s holds %s, not %s", path, s.KID, wantKID)
	}
	wrapped, err1 := base64.RawURLEncoding.DecodeString(s.WrappedDEK)
	sealed, err2 := base64.RawURLEncoding.DecodeString(s.Sealed)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("signing: key file %s is corrupt", path)
	}
	dek, err := open(kek.key[:], wrapped, s.aad())
	if err != nil {
		return nil, fmt.Errorf("signing: key file %s does not open under this KEK and slot", path)
	}
	defer clear(dek)
	der, err := open(dek, sealed, s.aad())
	if err != nil {
		return nil, fmt.Errorf("signing: key file %s is corrupt", path)
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing: key file %s: %w", path, err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing: key file %s: not a signing key", path)
	}
	purposes := make([]verify.Purpose, len(s.Purposes))
	for i, p := range s.Purposes {
		purposes[i] = verify.Purpose(p)
	}
	k, err := newFileKey(priv, s.Alg, purposes)
	if err != nil {
		return nil, err
	}
	if k.kid != s.KID {
		return nil, fmt.Errorf("signing: key file %s: kid is not the key's thumbprint", path)
	}
	return k, nil
}

func seal(key, plain, aad []byte) ([]byte, error) {
	g, err := gcm(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, plain, aad), nil
}

func open(key, sealed, aad []byte) ([]byte, error) {
	g, err := gcm(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize() {
		return nil, errors.New("sealed data too short")
	}
	return g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], aad)
}

func gcm(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
