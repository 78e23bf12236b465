package verify

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-json-experiment/json"
)

// stateMACKey keys the state file's integrity MAC. It is built into every verifier, so
// the MAC detects hand edits and corruption, not a determined attacker who reads this
// source: the signatures on licenses and bundles carry the real security, the state
// file only remembers what was already verified. See docs/verification.md.
var stateMACKey = sha256.Sum256([]byte("metrum.verifier.state.v1 integrity key"))

// stateWire is the file. Schema 1 (v1) has no expires_at in its observation and no
// ended result; schema 2 (v1.1) adds them; schema 3 (v1.2) adds the kept license, the
// per-(issuer, product) bundle marks and the revoked licenses. All three load; writes
// are always schema 3, so an older file is upgraded at its next write. Every member
// newer than schema 1 is omitempty, so the MAC of an older file is computed over
// exactly the members it has. In schema 3, bundle_sequence and bundle_sha256 are the
// legacy mark carried over from a v1 or v1.1 file (State.Legacy), 0 and absent in a
// file born v1.2.
type stateWire struct {
	Schema             int64            `json:"schema"`
	LatestSeen         string           `json:"latest_seen"`
	LastValidLicense   string           `json:"last_valid_license_id,omitempty"`
	LastValidAt        string           `json:"last_valid_at,omitempty"`
	LastValidGrace     int64            `json:"last_valid_grace_period_seconds"`
	LastValidExpiresAt string           `json:"last_valid_expires_at,omitempty"`
	LastValidFile      string           `json:"last_valid_license_file,omitempty"`
	EndedLicense       string           `json:"ended_license_id,omitempty"`
	EndedReason        string           `json:"ended_reason,omitempty"`
	EndedAt            string           `json:"ended_at,omitempty"`
	BundleSequence     int64            `json:"bundle_sequence"`
	BundleSHA256       string           `json:"bundle_sha256,omitempty"`
	Bundles            []bundleMarkWire `json:"bundles,omitempty"`
	Revoked            []revokedWire    `json:"revoked,omitempty"`
	MAC                string           `json:"mac,omitempty"`
}

type bundleMarkWire struct {
	Issuer   string `json:"issuer"`
	Product  string `json:"product"`
	Sequence int64  `json:"sequence"`
	SHA256   string `json:"sha256"`
}

type revokedWire struct {
	LicenseID string `json:"license_id"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

// stateSchema is the schema this verifier writes.
const stateSchema = 3

// MaxStateSize caps a state file: the kept license (1 MiB, as base64) and room for the
// bundle marks and revoked licenses of one deployment.
const MaxStateSize = 4 << 20

// ErrStateIntegrity is returned when a state file exists but can't be trusted.
var ErrStateIntegrity = errors.New("state file failed its integrity check")

func (w stateWire) mac() string {
	w.MAC = ""
	b, _ := json.Marshal(w, json.Deterministic(true))
	m := hmac.New(sha256.New, stateMACKey[:])
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// ReadState loads a state file. A missing file is an empty state and no error; a file
// that can't be read, parsed or whose MAC does not match is ErrStateIntegrity. The
// bool reports whether the file exists.
func ReadState(path string) (*State, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{}, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("%w: %v", ErrStateIntegrity, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxStateSize+1))
	if err != nil {
		return nil, true, fmt.Errorf("%w: %v", ErrStateIntegrity, err)
	}
	if len(data) > MaxStateSize {
		return nil, true, fmt.Errorf("%w: larger than %d bytes", ErrStateIntegrity, MaxStateSize)
	}
	s, err := ParseState(data)
	return s, true, err
}

// ParseState is ReadState for a state the caller keeps elsewhere than in a file.
func ParseState(data []byte) (*State, error) {
	s, err := parseState(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStateIntegrity, err)
	}
	return s, nil
}

func parseState(data []byte) (*State, error) {
	var w stateWire
	if err := decodeStrict(data, &w); err != nil {
		return nil, err
	}
	if w.Schema < 1 || w.Schema > stateSchema || !hmac.Equal([]byte(w.MAC), []byte(w.mac())) {
		return nil, errors.New("bad schema or MAC")
	}
	if w.Schema < 2 && (w.LastValidExpiresAt != "" || w.EndedLicense != "" || w.EndedReason != "" || w.EndedAt != "") {
		return nil, errors.New("schema 1 with schema 2 members")
	}
	if w.Schema < 3 && (w.LastValidFile != "" || w.Bundles != nil || w.Revoked != nil) {
		return nil, errors.New("schema 1 or 2 with schema 3 members")
	}
	s := &State{LastValidLicense: w.LastValidLicense, LastValidGrace: time.Duration(w.LastValidGrace) * time.Second,
		EndedLicense: w.EndedLicense, EndedReason: w.EndedReason,
		Legacy: BundleMark{Sequence: w.BundleSequence, SHA256: w.BundleSHA256}}
	var err error
	if s.LatestSeen, err = parseTime("latest_seen", w.LatestSeen); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		in   string
		out  *time.Time
	}{{"last_valid_at", w.LastValidAt, &s.LastValidAt}, {"last_valid_expires_at", w.LastValidExpiresAt, &s.LastValidExpiresAt}, {"ended_at", w.EndedAt, &s.EndedAt}} {
		if f.in == "" {
			continue
		}
		if *f.out, err = parseTime(f.name, f.in); err != nil {
			return nil, err
		}
	}
	if w.LastValidFile != "" {
		if s.LastValidFile, err = decodeB64("last_valid_license_file", w.LastValidFile); err != nil {
			return nil, err
		}
		if len(s.LastValidFile) > MaxLicenseSize {
			return nil, errors.New("last_valid_license_file larger than a license")
		}
	}
	for i, m := range w.Bundles {
		if h, err := hex.DecodeString(m.SHA256); err != nil || len(h) != sha256.Size || hex.EncodeToString(h) != m.SHA256 || m.Issuer == "" || m.Product == "" || m.Sequence < 1 {
			return nil, fmt.Errorf("bundles[%d] malformed", i)
		}
		if i > 0 && cmpMark(w.Bundles[i-1], m) >= 0 {
			return nil, errors.New("bundles not sorted by unique issuer and product")
		}
		if s.Bundles == nil {
			s.Bundles = map[BundleScope]BundleMark{}
		}
		s.Bundles[BundleScope{m.Issuer, m.Product}] = BundleMark{m.Sequence, m.SHA256}
	}
	for i, r := range w.Revoked {
		if !licenseID.MatchString(r.LicenseID) || (i > 0 && w.Revoked[i-1].LicenseID >= r.LicenseID) {
			return nil, errors.New("revoked not sorted unique license IDs")
		}
		var exp time.Time
		if r.ExpiresAt != "" {
			if exp, err = parseTime("revoked.expires_at", r.ExpiresAt); err != nil {
				return nil, err
			}
		}
		if s.Revoked == nil {
			s.Revoked = map[string]time.Time{}
		}
		s.Revoked[r.LicenseID] = exp
	}
	if w.Schema < 3 && w.EndedReason == ReasonRevoked && licenseID.MatchString(w.EndedLicense) {
		// A v1.1 file that saw a revocation recorded it as its ended result: carried
		// over as final, with the license's expiry unknown until it is seen again.
		s.Revoked = map[string]time.Time{w.EndedLicense: {}}
	}
	return s, nil
}

func cmpMark(a, b bundleMarkWire) int {
	return cmp.Or(cmp.Compare(a.Issuer, b.Issuer), cmp.Compare(a.Product, b.Product))
}

// MarshalState renders s as a state file: schema 3, with its MAC.
func MarshalState(s *State) ([]byte, error) {
	w := stateWire{Schema: stateSchema, LatestSeen: FormatTime(s.LatestSeen), LastValidLicense: s.LastValidLicense,
		LastValidGrace: int64(s.LastValidGrace / time.Second), EndedLicense: s.EndedLicense, EndedReason: s.EndedReason,
		BundleSequence: s.Legacy.Sequence, BundleSHA256: s.Legacy.SHA256}
	w.LastValidAt = formatOptionalTime(s.LastValidAt)
	w.LastValidExpiresAt = formatOptionalTime(s.LastValidExpiresAt)
	w.EndedAt = formatOptionalTime(s.EndedAt)
	if len(s.LastValidFile) > 0 {
		w.LastValidFile = EncodeB64(s.LastValidFile)
	}
	for sc, m := range s.Bundles {
		w.Bundles = append(w.Bundles, bundleMarkWire{sc.Issuer, sc.Product, m.Sequence, m.SHA256})
	}
	slices.SortFunc(w.Bundles, cmpMark)
	for id, exp := range s.Revoked {
		w.Revoked = append(w.Revoked, revokedWire{LicenseID: id, ExpiresAt: formatOptionalTime(exp)})
	}
	slices.SortFunc(w.Revoked, func(a, b revokedWire) int { return cmp.Compare(a.LicenseID, b.LicenseID) })
	w.MAC = w.mac()
	data, err := json.Marshal(w, json.Deterministic(true))
	if err != nil {
		return nil, err
	}
	if len(data) >= MaxStateSize {
		return nil, errors.New("state larger than a state file may be")
	}
	return append(data, '\n'), nil
}

// WriteState writes s atomically: a 0600 temp file in the same folder, fsync, rename,
// fsync of the folder. A crash leaves the old file or the new one, never a torn one.
func WriteState(path string, s *State) error {
	data, err := MarshalState(s)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, data, 0o600)
}

func formatOptionalTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return FormatTime(t)
}

// WriteFileAtomic writes data to path through a temp file, fsync and rename.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// sha256Hex is the bundle's content hash as the state file keeps it.
func (b *Bundle) sha256Hex() string { return hex.EncodeToString(b.PayloadSHA256[:]) }
