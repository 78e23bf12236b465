// Package verify checks Metrum licenses, revocation bundles and leases offline, exactly
// as docs/spec/formats.md (v1.2) says. It has no dependency on the issuer, a
// database or the network, so a router can embed the very same checks the `verifier`
// runs: Check verifies documents given as bytes against a State and returns the next
// State without writing anything; Verify is the same over files, for the command line.
package verify

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"time"
)

// RevocationMode is `off` or `file`.
type RevocationMode string

// Revocation modes.
const (
	RevocationOff  RevocationMode = "off"
	RevocationFile RevocationMode = "file"
)

// Options are the inputs of one verification from files (formats.md section 6), as
// the command line takes them.
type Options struct {
	LicensePath string
	// License is the license's bytes when it is not in a file (a CoreSDK token given
	// on the command line or in the environment); used only when LicensePath is "".
	// Nil with no LicensePath is license-missing.
	License []byte
	// Product is the expected product. "" means no product check, as an absent
	// --product does on the command line; the license's key must still be trusted for
	// the license's own product. An embedder knows its product and should always set it.
	Product             string
	InstanceFingerprint string // the host's fingerprint
	Features            []string
	Limits              map[string]int64 // requested values
	// Revocation is what v1.1 callers set to turn the revocation check on; new
	// callers need not set it. Revocation mode is file whenever BundlePath or
	// RequireCurrent is set (formats.md v1.2), so RevocationOff can't switch a
	// configured check off by mistake; RevocationFile with neither set only reports
	// that no bundle was checked.
	Revocation     RevocationMode
	BundlePath     string
	RequireCurrent bool
	FailClosed     bool
	LeasePath      string
	StatePath      string // "" = no state file
	KeySet         *KeySet
	Now            time.Time // zero: the system clock
}

// Result is the verdict, with the safe fields of formats.md section 8 and nothing else.
type Result struct {
	Status         string           `json:"status"`
	Reason         string           `json:"reason"`
	LicenseID      string           `json:"license_id"`
	CustomerID     string           `json:"customer_id"`
	Product        string           `json:"product"`
	SKU            string           `json:"sku"`
	KeyID          string           `json:"key_id"`
	NotBefore      string           `json:"not_before"`
	ExpiresAt      string           `json:"expires_at"`
	Features       []string         `json:"features"`
	Limits         map[string]int64 `json:"limits"`
	GraceActive    bool             `json:"grace_active"`
	BundleSequence *int64           `json:"bundle_sequence"`
	LeaseExpiresAt *string          `json:"lease_expires_at"`
	Warnings       []string         `json:"warnings"`

	// BundleIssuedAt and BundleExpiresAt are those of the bundle whose sequence is
	// BundleSequence (zero when it is null), for an embedder's bundle-age gauge and
	// recheck timer; not part of the JSON output, which spec section 8 fixes.
	BundleIssuedAt  time.Time `json:"-"`
	BundleExpiresAt time.Time `json:"-"`

	// Detail says why, in safe words, for a human; it is not part of the JSON output.
	Detail string `json:"-"`
	// License is the license the result is about when its signature verified: the
	// license file's, or in grace the kept license last observed valid (for human
	// output, and for an embedder's feature and limit gates).
	License *License `json:"-"`
}

// OK reports whether serving may go on (valid or grace).
func (r *Result) OK() bool { return r.Status == StatusValid || r.Status == StatusGrace }

// Verify reads the files named in o, runs Check, and, when a state file is given and
// something moved forward, writes the next state to it.
func Verify(o Options) *Result {
	in := Input{Product: o.Product, InstanceFingerprint: o.InstanceFingerprint, Features: o.Features,
		Limits: o.Limits, Revocation: o.Revocation == RevocationFile, RequireCurrent: o.RequireCurrent,
		FailClosed: o.FailClosed, KeySet: o.KeySet, Now: o.Now}
	// An unreadable license is license-missing, like an absent one: nil.
	if o.LicensePath != "" {
		in.License, _ = readCapped(o.LicensePath, MaxLicenseSize)
	} else if o.License != nil {
		in.License = o.License
	}
	if o.BundlePath != "" {
		in.Revocation = true
		in.Bundle, in.BundleErr = readOptional(o.BundlePath, MaxBundleSize)
	}
	if o.LeasePath != "" {
		in.Lease, in.LeaseErr = readOptional(o.LeasePath, MaxLeaseSize)
	}
	if o.StatePath != "" {
		in.State, _, in.StateErr = ReadState(o.StatePath)
	}
	r, next := Check(in)
	if next != nil && o.StatePath != "" {
		if err := WriteState(o.StatePath, next); err != nil {
			r.Warnings = append(r.Warnings, "state file not written: "+safe(err))
		}
	}
	return r
}

// readOptional reads a file that may be absent: absent is nil data and no error, so
// that only a file that exists and can't be read is an error.
func readOptional(path string, max int64) ([]byte, error) {
	data, err := readCapped(path, max)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// readCapped reads at most max+1 bytes: a larger file comes back one byte over the
// cap, for the parser to refuse as too large without reading it all. An existing
// file's data is never nil, so an empty file is not mistaken for an absent one.
func readCapped(path string, max int64) ([]byte, error) {
	if path == "" {
		return nil, fs.ErrNotExist
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadCapped(f, max)
}

// ReadCapped reads a document from r the way Verify reads its files: at most max+1
// bytes, so that a larger document comes back one byte over the cap for the parser to
// refuse as too large (license-invalid, a bundle not authentic) without reading it
// all. What it returns is never nil, so an empty document is not mistaken for an
// absent one. Use MaxLicenseSize, MaxBundleSize or MaxLeaseSize as max.
func ReadCapped(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}
