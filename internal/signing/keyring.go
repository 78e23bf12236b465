package signing

import (
	"fmt"
	"sync"
)

// FileKeyRing opens file keys from one folder on demand and keeps them in memory.
type FileKeyRing struct {
	dir   string
	kek   *KEK
	mu    sync.Mutex
	cache map[string]Signer
}

// NewFileKeyRing serves the sealed keys in dir, opened with kek.
func NewFileKeyRing(dir string, kek *KEK) *FileKeyRing {
	return &FileKeyRing{dir: dir, kek: kek, cache: map[string]Signer{}}
}

// Dir is where the ring keeps its key files.
func (r *FileKeyRing) Dir() string { return r.dir }

// Signer returns the key with this ID.
func (r *FileKeyRing) Signer(kid string) (Signer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.cache[kid]; ok {
		return s, nil
	}
	k, err := LoadFileKey(KeyPath(r.dir, kid), r.kek, kid)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", kid, err)
	}
	r.cache[kid] = k
	return k, nil
}

// Store seals a new key into the ring's folder.
func (r *FileKeyRing) Store(k *FileKey) error {
	if err := SaveFileKey(r.dir, k, r.kek); err != nil {
		return err
	}
	r.mu.Lock()
	r.cache[k.KeyID()] = k
	r.mu.Unlock()
	return nil
}
