package signing

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"

	"github.com/metrum/licensing/verify"
)

// KeyRef names a key for its backend: the public metadata the database keeps (kid,
// alg, purposes) and the backend's own handle (Ref: empty for file keys, the token
// object ID for PKCS#11). Nothing in it is secret.
type KeyRef struct {
	KID      string
	Alg      string
	Purposes []verify.Purpose
	Backend  string
	Ref      string
}

// Backend holds private keys and hands out Signers; the private part never leaves it.
// A file folder, a PKCS#11 token or a cloud KMS each implement it, so issuance does
// not change when keys move into hardware.
type Backend interface {
	// Name is how key records refer to the backend ("file", "pkcs11").
	Name() string
	// Generate makes a new key inside the backend and returns its signer and the
	// backend's handle for it.
	Generate(alg string, purposes []verify.Purpose) (Signer, string, error)
	// Open returns the signer of an existing key. It fails unless the key the backend
	// holds is the one the reference describes: same thumbprint, algorithm and purposes.
	Open(ref KeyRef) (Signer, error)
	// Destroy removes a key that Generate made and that was never recorded (its
	// record failed to insert): no orphaned key file or token object is left.
	Destroy(ref KeyRef) error
}

// ErrNoBackend is returned for a key whose backend is not configured here.
var ErrNoBackend = errors.New("signing: backend not configured")

// Keys is the issuer's set of backends, with the signers it opened kept in memory
// (opening a file key runs two AES-GCM opens; a PKCS#11 find is a round trip).
type Keys struct {
	backends map[string]Backend
	mu       sync.Mutex
	open     map[string]Signer
}

// NewKeys serves keys from the given backends.
func NewKeys(backends ...Backend) *Keys {
	k := &Keys{backends: map[string]Backend{}, open: map[string]Signer{}}
	for _, b := range backends {
		k.backends[b.Name()] = b
	}
	return k
}

// Backend returns the named backend.
func (k *Keys) Backend(name string) (Backend, error) {
	b, ok := k.backends[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoBackend, name)
	}
	return b, nil
}

// Generate makes a key in the named backend.
func (k *Keys) Generate(backend, alg string, purposes []verify.Purpose) (Signer, string, error) {
	b, err := k.Backend(backend)
	if err != nil {
		return nil, "", err
	}
	s, ref, err := b.Generate(alg, purposes)
	if err != nil {
		return nil, "", err
	}
	k.mu.Lock()
	k.open[s.KeyID()] = s
	k.mu.Unlock()
	return s, ref, nil
}

// Destroy removes a never-recorded key from its backend and from memory.
func (k *Keys) Destroy(ref KeyRef) error {
	b, err := k.Backend(ref.Backend)
	if err != nil {
		return err
	}
	k.mu.Lock()
	delete(k.open, ref.KID)
	k.mu.Unlock()
	return b.Destroy(ref)
}

// Open returns the signer for ref, from memory when it was opened before.
func (k *Keys) Open(ref KeyRef) (Signer, error) {
	k.mu.Lock()
	s, ok := k.open[ref.KID]
	k.mu.Unlock()
	if ok {
		if err := matches(s, ref); err != nil {
			return nil, err
		}
		return s, nil
	}
	b, err := k.Backend(ref.Backend)
	if err != nil {
		return nil, err
	}
	if s, err = b.Open(ref); err != nil {
		return nil, err
	}
	if err := matches(s, ref); err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.open[ref.KID] = s
	k.mu.Unlock()
	return s, nil
}

// matches checks that a signer is the key its reference describes.
func matches(s Signer, ref KeyRef) error {
	if s.KeyID() != ref.KID {
		return fmt.Errorf("signing: backend returned key %s for %s", s.KeyID(), ref.KID)
	}
	if s.Algorithm() != ref.Alg {
		return fmt.Errorf("signing: key %s is %s, its record says %s", ref.KID, s.Algorithm(), ref.Alg)
	}
	if !samePurposes(s.Purposes(), ref.Purposes) {
		return fmt.Errorf("signing: key %s is bound to purposes %v, its record says %v", ref.KID, s.Purposes(), ref.Purposes)
	}
	return nil
}

func samePurposes(a, b []verify.Purpose) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// FileBackend keeps each key sealed in its own file in one folder (see filekey.go).
type FileBackend struct {
	dir string
	kek *KEK
}

var _ Backend = (*FileBackend)(nil)

// NewFileBackend serves the sealed keys in dir, opened with kek.
func NewFileBackend(dir string, kek *KEK) *FileBackend { return &FileBackend{dir: dir, kek: kek} }

// Name implements Backend.
func (*FileBackend) Name() string { return "file" }

// Dir is the folder of the key files.
func (b *FileBackend) Dir() string { return b.dir }

// Generate implements Backend: a new key, sealed under the KEK into <kid>.key.
func (b *FileBackend) Generate(alg string, purposes []verify.Purpose) (Signer, string, error) {
	k, err := GenerateKey(alg, purposes)
	if err != nil {
		return nil, "", err
	}
	if err := b.Save(k); err != nil {
		return nil, "", err
	}
	return k, "", nil
}

// Save seals a key made elsewhere (an import, or a test that must know the key) into
// the folder.
func (b *FileBackend) Save(k *FileKey) error { return SaveFileKey(b.dir, k, b.kek) }

// Open implements Backend.
func (b *FileBackend) Open(ref KeyRef) (Signer, error) {
	return LoadFileKey(KeyPath(b.dir, ref.KID), b.kek, ref.KID)
}

// Destroy implements Backend: the sealed file goes.
func (b *FileBackend) Destroy(ref KeyRef) error {
	if err := os.Remove(KeyPath(b.dir, ref.KID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Rewrap re-seals every key in the folder under a new KEK, one file at a time and
// atomically, and returns the key IDs it re-sealed. A key that does not open under
// the current KEK stops the run: nothing is half-done per file, and running it again
// after fixing the cause re-seals the rest.
func (b *FileBackend) Rewrap(next *KEK, progress func(kid string)) ([]string, error) {
	kids, err := listKeyFiles(b.dir)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, kid := range kids {
		k, err := LoadFileKey(KeyPath(b.dir, kid), b.kek, kid)
		if err != nil {
			if _, nerr := LoadFileKey(KeyPath(b.dir, kid), next, kid); nerr == nil {
				continue // already under the new KEK (a resumed run)
			}
			return done, err
		}
		if err := SaveFileKey(b.dir, k, next); err != nil {
			return done, err
		}
		done = append(done, kid)
		if progress != nil {
			progress(kid)
		}
	}
	b.kek = next
	return done, nil
}
