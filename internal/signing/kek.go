package signing

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"crypto/rand"
)

// KEK is the key-encryption key that wraps every file key's data key. It comes from
// the environment (METRUM_KEK, base64 of 32 bytes) or a 0600 file, never from the
// database or the config file.
type KEK struct{ key [32]byte }

// String never shows the key.
func (*KEK) String() string { return "KEK(redacted)" }

// ParseKEK reads a base64 (standard or URL, padded or not) 32-byte key.
func ParseKEK(s string) (*KEK, error) {
	s = strings.TrimSpace(s)
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil || len(raw) != 32 {
		return nil, errors.New("signing: the KEK must be base64 of exactly 32 bytes")
	}
	k := &KEK{}
	copy(k.key[:], raw)
	clear(raw)
	return k, nil
}

// LoadKEKFile reads a KEK from a file that only its owner can read.
func LoadKEKFile(path string) (*KEK, error) {
	b, err := ReadSecretFile("KEK", path)
	if err != nil {
		return nil, err
	}
	return ParseKEK(string(b))
}

// ReadSecretFile reads a secret (the KEK, a PKCS#11 PIN) from a file that only its
// owner can read: a file group or others can read is refused, not read.
func ReadSecretFile(what, path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing: %s file: %w", what, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s file %s is %v", ErrKeyFileMode, what, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing: %s file: %w", what, err)
	}
	return b, nil
}

// NewKEKFile creates a random KEK in a new 0600 file (dev and first setup only).
func NewKEKFile(path string) (*KEK, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	s := base64.StdEncoding.EncodeToString(raw)
	clear(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("signing: KEK file: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return ParseKEK(s)
}

// ErrWeakKEK: the key-encryption key can't have come from a random source.
var ErrWeakKEK = errors.New("the key-encryption key is not random (all one byte, a counting sequence, or few distinct bytes): make one with `head -c 32 /dev/urandom | base64`")

// CheckStrength refuses a KEK that can't have been drawn at random: every byte the
// same (an all-zero key), bytes in a counting sequence (0, 1, 2, …), or fewer than 16
// distinct bytes among 32 (a random key has about 30; fewer than 16 happens with
// odds below one in 10^20).
func (k *KEK) CheckStrength() error {
	b := k.key[:]
	distinct := map[byte]bool{}
	counting := true
	for i, x := range b {
		distinct[x] = true
		if i > 0 && x != b[i-1]+1 && x != b[i-1]-1 {
			counting = false
		}
	}
	if len(distinct) < 16 || counting {
		return ErrWeakKEK
	}
	return nil
}
