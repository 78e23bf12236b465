package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/go-json-experiment/json"
)

// ClockSkew is how far the clock may go back behind the latest time the state file
// has seen before it counts as a rollback (formats.md section 6, step 4).
const ClockSkew = 300 * time.Second

// stateMACKey keys the state file's integrity MAC. It is built into every verifier, so
// the MAC detects hand edits and corruption, not a determined attacker who reads this
// source: the signatures on licenses and bundles carry the real security, the state
// file only remembers what was already verified. See docs/verification.md.
var stateMACKey = sha256.Sum256([]byte("metrum.verifier.state.v1 integrity key"))

// State is what a verifier remembers between runs. It only ever moves forward.
type State struct {
	LatestSeen time.Time
	// The last valid observation; zero LastValidAt: none.
	LastValidLicense string
	LastValidAt      time.Time
	LastValidGrace   time.Duration
	// LastValidExpiresAt is the expires_at of the license last observed valid (v1.1):
	// grace never runs past it. Zero in a state file written by a v1 verifier.
	LastValidExpiresAt time.Time
	// The last result that ended the valid observation (v1.1): license-expired,
	// -revoked, -suspended or -superseded, for which license and when. Kept for the
	// operator; grace is already ruled out by the cleared observation.
	EndedLicense string
	EndedReason  string
	EndedAt      time.Time
	// The highest revocation bundle sequence seen and its payload hash.
	BundleSequence int64
	BundleSHA256   string
}

// stateWire is the file. Schema 1 (v1) has no expires_at in its observation and no
// ended result; schema 2 (v1.1) adds them. Both load; writes are always schema 2, so a
// v1 file is upgraded at its next write. The new members are omitempty, so the MAC of
// a v1 file is computed over exactly the members it has.
type stateWire struct {
	Schema             int64  `json:"schema"`
	LatestSeen         string `json:"latest_seen"`
	LastValidLicense   string `json:"last_valid_license_id,omitempty"`
	LastValidAt        string `json:"last_valid_at,omitempty"`
	LastValidGrace     int64  `json:"last_valid_grace_period_seconds"`
	LastValidExpiresAt string `json:"last_valid_expires_at,omitempty"`
	EndedLicense       string `json:"ended_license_id,omitempty"`
	EndedReason        string `json:"ended_reason,omitempty"`
	EndedAt            string `json:"ended_at,omitempty"`
	BundleSequence     int64  `json:"bundle_sequence"`
	BundleSHA256       string `json:"bundle_sha256,omitempty"`
	MAC                string `json:"mac,omitempty"`
}

// stateSchema is the schema this verifier writes.
const stateSchema = 2

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
// that can't be read, parsed or whose MAC does not match is ErrStateIntegrity.
func ReadState(path string) (*State, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{}, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("%w: %v", ErrStateIntegrity, err)
	}
	var w stateWire
	if err := decodeStrict(data, &w); err != nil {
		return nil, true, fmt.Errorf("%w: %v", ErrStateIntegrity, err)
	}
	if w.Schema < 1 || w.Schema > stateSchema || !hmac.Equal([]byte(w.MAC), []byte(w.mac())) {
		return nil, true, ErrStateIntegrity
	}
	if w.Schema == 1 && (w.LastValidExpiresAt != "" || w.EndedLicense != "" || w.EndedReason != "" || w.EndedAt != "") {
		return nil, true, fmt.Errorf("%w: schema 1 with schema 2 members", ErrStateIntegrity)
	}
	s := &State{LastValidLicense: w.LastValidLicense, LastValidGrace: time.Duration(w.LastValidGrace) * time.Second,
		EndedLicense: w.EndedLicense, EndedReason: w.EndedReason,
		BundleSequence: w.BundleSequence, BundleSHA256: w.BundleSHA256}
	if s.LatestSeen, err = parseTime("latest_seen", w.LatestSeen); err != nil {
		return nil, true, fmt.Errorf("%w: %v", ErrStateIntegrity, err)
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
			return nil, true, fmt.Errorf("%w: %v", ErrStateIntegrity, err)
		}
	}
	return s, true, nil
}

// WriteState writes s atomically: a 0600 temp file in the same folder, fsync, rename,
// fsync of the folder. A crash leaves the old file or the new one, never a torn one.
func WriteState(path string, s *State) error {
	w := stateWire{Schema: stateSchema, LatestSeen: FormatTime(s.LatestSeen), LastValidLicense: s.LastValidLicense,
		LastValidGrace: int64(s.LastValidGrace / time.Second), EndedLicense: s.EndedLicense, EndedReason: s.EndedReason,
		BundleSequence: s.BundleSequence, BundleSHA256: s.BundleSHA256}
	w.LastValidAt = formatOptionalTime(s.LastValidAt)
	w.LastValidExpiresAt = formatOptionalTime(s.LastValidExpiresAt)
	w.EndedAt = formatOptionalTime(s.EndedAt)
	w.MAC = w.mac()
	data, err := json.Marshal(w, json.Deterministic(true))
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(data, '\n'), 0o600)
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
