package verify

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Entry statuses of a revocation bundle.
const (
	StatusRevoked    = "revoked"
	StatusSuspended  = "suspended"
	StatusSuperseded = "superseded"
)

// BundleEntry is one listed license in a revocation bundle.
type BundleEntry struct {
	LicenseID    string `json:"license_id"`
	Status       string `json:"status"`
	Reason       string `json:"reason"`
	EffectiveAt  string `json:"effective_at"`
	SupersededBy string `json:"superseded_by,omitempty"`
}

// BundleSchema is the only revocation bundle schema a v1.2 verifier accepts: schema 1
// has no product, and so no way to tell a router's bundle from another product's.
const BundleSchema = 2

// BundlePayload is the wire form of a `metrum.revocation.v1` payload.
type BundlePayload struct {
	Schema    int64         `json:"schema"`
	Issuer    string        `json:"issuer"`
	Product   string        `json:"product"`
	Sequence  int64         `json:"sequence"`
	IssuedAt  string        `json:"issued_at"`
	ExpiresAt string        `json:"expires_at"`
	Entries   []BundleEntry `json:"entries"`
}

// Entry is a parsed bundle entry.
type Entry struct {
	Status       string
	Reason       string
	EffectiveAt  time.Time
	SupersededBy string
}

// Bundle is a verified revocation bundle.
type Bundle struct {
	Issuer string
	// Product is the product whose licenses the bundle covers; its key is trusted for it.
	Product   string
	Sequence  int64
	IssuedAt  time.Time
	ExpiresAt time.Time
	// PayloadSHA256 identifies the bundle's content: two bundles with one sequence and
	// different hashes are equivocation. It hashes the signed payload, not the file, so
	// the same content re-wrapped or re-signed (ES256 signatures differ each time) is
	// not mistaken for a different bundle.
	PayloadSHA256 [32]byte
	KeyID         string
	// Entries is sorted by license ID; Lookup searches it. IDs are kept as fixed-size
	// keys in one slice: a million entries are two allocations, not a million.
	ids     []licenseKey
	entries []Entry
}

// licenseKey is a license ID ("lic_" + 26-character ULID) as a fixed-size value.
type licenseKey [30]byte

// Len is the number of entries.
func (b *Bundle) Len() int { return len(b.ids) }

// Lookup returns the entry for a license ID, if listed.
func (b *Bundle) Lookup(id string) (Entry, bool) {
	var k licenseKey
	if len(id) != len(k) {
		return Entry{}, false
	}
	copy(k[:], id)
	i, found := slices.BinarySearchFunc(b.ids, k, func(a, t licenseKey) int { return bytes.Compare(a[:], t[:]) })
	if !found {
		return Entry{}, false
	}
	return b.entries[i], true
}

// Count returns how many entries have the given status.
func (b *Bundle) Count(status string) int {
	n := 0
	for _, e := range b.entries {
		if e.Status == status {
			n++
		}
	}
	return n
}

// ParseBundleFile verifies a revocation bundle's signature and shape: schema 2, and a
// `product` among its key's products. That it covers the right license, and is not
// rolled back, is for the caller to check (Check does).
func ParseBundleFile(data []byte, ks *KeySet) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("bundle larger than %d bytes", MaxBundleSize)
	}
	return parseBundle(data, ks)
}

// parseBundle is ParseBundleFile without the size cap (benchmarks of bundles larger
// than the format allows use it).
//
// A large bundle's signature check (a SHA-512 over the whole payload) and content
// hash run on another core while the entries are parsed. The signature still decides
// first: a badly signed bundle is reported as such, and what was parsed of it is
// dropped.
func parseBundle(data []byte, ks *KeySet) (*Bundle, error) {
	env, err := readEnvelope(data, FormatRevocation, ks)
	if err != nil {
		return nil, err
	}
	b := &Bundle{KeyID: env.key.KID}
	var sigErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		if sigErr = env.verify(); sigErr == nil {
			b.PayloadSHA256 = sha256.Sum256(env.payload)
		}
	}()
	perr := parseBundlePayload(env.payload, b)
	<-done
	if sigErr != nil {
		return nil, sigErr
	}
	if perr != nil {
		return nil, fmt.Errorf("bundle payload: %w", perr)
	}
	key := env.key
	if b.Issuer == "" || b.Product == "" {
		return nil, errors.New("bundle payload: issuer and product must not be empty")
	}
	if !key.Trusts(b.Product) {
		return nil, fmt.Errorf("bundle of product %q signed by key %s, which is not trusted for it", b.Product, key.KID)
	}
	if b.Sequence < 1 {
		return nil, errors.New("bundle payload: sequence must be ≥ 1")
	}
	if !b.IssuedAt.Before(b.ExpiresAt) {
		return nil, errors.New("bundle payload: issued_at must be before expires_at")
	}
	if !key.NotAfter.IsZero() && b.IssuedAt.After(key.NotAfter) {
		return nil, errors.New("bundle signed by a key past its not_after")
	}
	return b, nil
}

// LeasePayload is the wire form of a `metrum.lease.v1` payload.
type LeasePayload struct {
	Schema              int64  `json:"schema"`
	LeaseID             string `json:"lease_id"`
	LicenseID           string `json:"license_id"`
	InstanceFingerprint string `json:"instance_fingerprint"`
	IssuedAt            string `json:"issued_at"`
	ExpiresAt           string `json:"expires_at"`
}

// Lease is a verified lease.
type Lease struct {
	LeaseID             string
	LicenseID           string
	InstanceFingerprint string
	IssuedAt            time.Time
	ExpiresAt           time.Time
	KeyID               string
	key                 *Key
}

// KeyTrusts reports whether the lease's key is trusted for product, which must be the
// product of the license the lease is for (formats.md v1.2: a lease names no product of
// its own, so only its license says which keys may sign it).
func (l *Lease) KeyTrusts(product string) bool { return l.key != nil && l.key.Trusts(product) }

// ParseLeaseFile verifies a lease's signature and shape. Its key's products can only
// be checked against the license it is for: see KeyTrusts.
func ParseLeaseFile(data []byte, ks *KeySet) (*Lease, error) {
	if len(data) > MaxLeaseSize {
		return nil, fmt.Errorf("lease larger than %d bytes", MaxLeaseSize)
	}
	payload, key, err := openEnvelope(data, FormatLease, ks)
	if err != nil {
		return nil, err
	}
	var w struct {
		Schema              *int64  `json:"schema"`
		LeaseID             *string `json:"lease_id"`
		LicenseID           *string `json:"license_id"`
		InstanceFingerprint *string `json:"instance_fingerprint"`
		IssuedAt            *string `json:"issued_at"`
		ExpiresAt           *string `json:"expires_at"`
	}
	if err := decodeStrict(payload, &w); err != nil {
		return nil, fmt.Errorf("lease payload: %w", err)
	}
	if w.Schema == nil || w.LeaseID == nil || w.LicenseID == nil || w.InstanceFingerprint == nil || w.IssuedAt == nil || w.ExpiresAt == nil {
		return nil, errors.New("lease payload: a required member is missing")
	}
	if *w.Schema != 1 {
		return nil, errors.New("lease payload: schema is not 1")
	}
	if !leaseID.MatchString(*w.LeaseID) || !licenseID.MatchString(*w.LicenseID) || *w.InstanceFingerprint == "" {
		return nil, errors.New("lease payload: lease_id, license_id or instance_fingerprint malformed")
	}
	ls := &Lease{LeaseID: *w.LeaseID, LicenseID: *w.LicenseID, InstanceFingerprint: *w.InstanceFingerprint, KeyID: key.KID, key: key}
	if ls.IssuedAt, err = parseTime("issued_at", *w.IssuedAt); err != nil {
		return nil, err
	}
	if ls.ExpiresAt, err = parseTime("expires_at", *w.ExpiresAt); err != nil {
		return nil, err
	}
	if !ls.IssuedAt.Before(ls.ExpiresAt) {
		return nil, errors.New("lease payload: issued_at must be before expires_at")
	}
	if !key.NotAfter.IsZero() && ls.IssuedAt.After(key.NotAfter) {
		return nil, errors.New("lease signed by a key past its not_after")
	}
	return ls, nil
}
