// Package verify checks Metrum licenses, revocation bundles and leases offline, exactly
// as ../shared/spec/formats.md (v1.1) says. It has no dependency on the issuer, a database
// or the network, so a router can embed the very same checks the `verifier` runs.
package verify

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"
)

// RevocationMode is `off` or `file`.
type RevocationMode string

// Revocation modes.
const (
	RevocationOff  RevocationMode = "off"
	RevocationFile RevocationMode = "file"
)

// Options are the inputs of one verification (formats.md section 6).
type Options struct {
	LicensePath         string
	Product             string // "" = no product check
	InstanceFingerprint string // the host's fingerprint
	Features            []string
	Limits              map[string]int64 // requested values
	Revocation          RevocationMode
	BundlePath          string
	RequireCurrent      bool
	FailClosed          bool
	LeasePath           string
	StatePath           string // "" = no state file
	KeySet              *KeySet
	Now                 time.Time
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

	// Detail says why, in safe words, for a human; it is not part of the JSON output.
	Detail string `json:"-"`
	// License is the parsed license when steps 1–2 passed (for human output).
	License *License `json:"-"`
}

// OK reports whether serving may go on (valid or grace).
func (r *Result) OK() bool { return r.Status == StatusValid || r.Status == StatusGrace }

type run struct {
	o        Options
	now      time.Time
	r        *Result
	st       *State // nil: no state file in use
	stateBad bool   // present but failed its integrity check
	// noGrace: the failure is evidence of tampering (a rolled-back or equivocating
	// bundle, v1.1), which grace never covers.
	noGrace bool
	// forward-moving updates to write when the run ends
	bundle *Bundle
}

// Verify runs the checks of formats.md section 6 in order; the first failing step
// decides the reason. It reads the files named in o and, when a state file is given,
// moves it forward.
func Verify(o Options) *Result {
	v := &run{o: o, now: o.Now.UTC(), r: &Result{Status: StatusBlocked, Features: []string{}, Limits: map[string]int64{}, Warnings: []string{}}}
	if v.now.IsZero() {
		v.now = time.Now().UTC()
	}
	if o.StatePath != "" {
		st, _, err := ReadState(o.StatePath)
		if err != nil {
			v.stateBad = true
		} else {
			v.st = st
		}
	}
	reason, detail := v.check()
	v.r.Reason, v.r.Detail = reason, detail
	if reason == "" {
		v.r.Status = StatusValid
	} else if v.graceApplies(reason) {
		v.r.Status, v.r.GraceActive = StatusGrace, true
		v.warn(fmt.Sprintf("grace: last valid observation %s at %s, grace period %ds",
			v.st.LastValidLicense, FormatTime(v.st.LastValidAt), int64(v.st.LastValidGrace/time.Second)))
	}
	v.saveState(reason)
	return v.r
}

func (v *run) warn(s string) { v.r.Warnings = append(v.r.Warnings, s) }

// check returns "" when every step passes, or the first failing reason.
func (v *run) check() (string, string) {
	o, now := v.o, v.now
	// 1. The file.
	data, err := readCapped(o.LicensePath, MaxLicenseSize)
	if errors.Is(err, errTooLarge) {
		return ReasonInvalid, err.Error()
	}
	if err != nil {
		return ReasonMissing, "license file absent or unreadable"
	}
	// 2. Envelope, key, signature, payload shape.
	lic, err := ParseLicenseFile(data, o.KeySet)
	if err != nil {
		return ReasonInvalid, safe(err)
	}
	v.fill(lic)
	// 3. Product.
	if o.Product != "" && lic.Product != o.Product {
		return ReasonProductMismatch, fmt.Sprintf("license is for %q, not %q", lic.Product, o.Product)
	}
	// 4. State file and clock.
	if v.stateBad {
		return ReasonClockRollback, "state file failed its integrity check"
	}
	if v.st != nil && now.Before(v.st.LatestSeen.Add(-ClockSkew)) {
		return ReasonClockRollback, fmt.Sprintf("clock is behind the latest time seen (%s)", FormatTime(v.st.LatestSeen))
	}
	// 5. Not yet valid.
	if !lic.NotBefore.IsZero() && now.Before(lic.NotBefore) {
		return ReasonNotYetValid, "license is valid from " + FormatTime(lic.NotBefore)
	}
	// 6. Instance.
	if lic.InstanceFingerprint != "" && lic.InstanceFingerprint != o.InstanceFingerprint {
		return ReasonInstanceMismatch, "license is bound to another instance"
	}
	// 7. Revocation.
	if o.Revocation == RevocationFile {
		if reason, detail := v.checkRevocation(lic); reason != "" {
			return reason, detail
		}
	}
	// 8. Expiry.
	if !now.Before(lic.ExpiresAt) {
		return ReasonExpired, "license expired at " + FormatTime(lic.ExpiresAt)
	}
	// 9. Lease.
	if lic.Lease != nil && lic.Lease.Required {
		if reason, detail := v.checkLease(lic); reason != "" {
			return reason, detail
		}
	} else if o.LeasePath != "" {
		v.warn("a lease was given but this license does not require one; it was not checked")
	}
	// 10. Features.
	for _, f := range o.Features {
		if !slices.Contains(lic.Features, f) {
			return ReasonFeatureForbidden, fmt.Sprintf("feature %q is not licensed", f)
		}
	}
	// 11. Limits (absent in the license = unlimited).
	for _, name := range sortedKeys(o.Limits) {
		if max, ok := lic.Limits[name]; ok && o.Limits[name] > max {
			return ReasonLimitExceeded, fmt.Sprintf("%s=%d exceeds the licensed %d", name, o.Limits[name], max)
		}
	}
	if left := lic.ExpiresAt.Sub(now); left < 30*24*time.Hour {
		v.warn(fmt.Sprintf("license expires in %d days (%s): renew before then", int(left.Hours()/24), FormatTime(lic.ExpiresAt)))
	}
	return "", ""
}

func (v *run) fill(l *License) {
	r := v.r
	r.License = l
	r.LicenseID, r.CustomerID, r.Product, r.SKU, r.KeyID = l.LicenseID, l.CustomerID, l.Product, l.SKU, l.KeyID
	if !l.NotBefore.IsZero() {
		r.NotBefore = FormatTime(l.NotBefore)
	}
	r.ExpiresAt = FormatTime(l.ExpiresAt)
	r.Features = slices.Clone(l.Features)
	for k, val := range l.Limits {
		r.Limits[k] = val
	}
}

func (v *run) checkRevocation(lic *License) (string, string) {
	o, now := v.o, v.now
	fail := func(why string) (string, string) {
		if o.FailClosed {
			return ReasonRevocationCheckFailed, why
		}
		v.warn("revocation bundle not used (" + why + "): revocation was not checked")
		return "", ""
	}
	// tampered: a bundle older than one already seen, or a second bundle under a
	// sequence already seen. Fail-closed, it blocks whatever the state file's last
	// valid observation says (formats.md v1.1).
	tampered := func(why string) (string, string) {
		if o.FailClosed {
			v.noGrace = true
		}
		return fail(why)
	}
	data, err := readCapped(o.BundlePath, MaxBundleSize)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && o.BundlePath == "") {
		if o.RequireCurrent {
			return ReasonRevocationRequired, "no revocation bundle at the configured path"
		}
		v.warn("no revocation bundle: revocation was not checked")
		return "", ""
	}
	if err != nil {
		return fail("bundle unreadable: " + safe(err))
	}
	b, err := ParseBundleFile(data, o.KeySet)
	if err != nil {
		return fail("bundle invalid: " + safe(err))
	}
	if !now.Before(b.ExpiresAt) {
		if o.RequireCurrent {
			return fail("bundle expired at " + FormatTime(b.ExpiresAt))
		}
		v.warn("revocation bundle expired at " + FormatTime(b.ExpiresAt) + "; its entries still apply")
	}
	if v.st != nil {
		if b.Sequence < v.st.BundleSequence {
			return tampered(fmt.Sprintf("bundle rolled back: sequence %d is below %d already seen", b.Sequence, v.st.BundleSequence))
		}
		if b.Sequence == v.st.BundleSequence && v.st.BundleSHA256 != "" && hex.EncodeToString(b.PayloadSHA256[:]) != v.st.BundleSHA256 {
			return tampered(fmt.Sprintf("bundle equivocation: another bundle with sequence %d was seen", b.Sequence))
		}
	}
	v.bundle = b
	seq := b.Sequence
	v.r.BundleSequence = &seq
	e, ok := b.Lookup(lic.LicenseID)
	if !ok {
		return "", ""
	}
	if now.Before(e.EffectiveAt) {
		v.warn(fmt.Sprintf("license is listed as %s from %s", e.Status, FormatTime(e.EffectiveAt)))
		return "", ""
	}
	switch e.Status {
	case StatusRevoked:
		return ReasonRevoked, "license revoked: " + e.Reason
	case StatusSuspended:
		return ReasonSuspended, "license suspended: " + e.Reason
	default:
		return ReasonSuperseded, "license superseded by " + e.SupersededBy
	}
}

func (v *run) checkLease(lic *License) (string, string) {
	o := v.o
	if o.LeasePath == "" {
		return ReasonLeaseRequired, "this license requires an online lease"
	}
	data, err := readCapped(o.LeasePath, MaxLeaseSize)
	if errors.Is(err, fs.ErrNotExist) {
		return ReasonLeaseRequired, "this license requires an online lease; none at the configured path"
	}
	if err != nil {
		return ReasonLeaseInvalid, "lease unreadable: " + safe(err)
	}
	ls, err := ParseLeaseFile(data, o.KeySet)
	if err != nil {
		return ReasonLeaseInvalid, safe(err)
	}
	switch {
	case !ls.KeyTrusts(lic.Product):
		// formats.md v1.2: badly signed, for this license's product.
		return ReasonLeaseInvalid, fmt.Sprintf("lease signed by key %s, which is not trusted for product %q", ls.KeyID, lic.Product)
	case ls.LicenseID != lic.LicenseID:
		return ReasonLeaseInvalid, "lease is for another license"
	case o.InstanceFingerprint == "":
		return ReasonLeaseInvalid, "no host instance fingerprint given to check the lease against"
	case ls.InstanceFingerprint != o.InstanceFingerprint:
		return ReasonLeaseInvalid, "lease is for another instance"
	case ls.ExpiresAt.After(lic.ExpiresAt):
		return ReasonLeaseInvalid, "lease outlives its license"
	}
	exp := FormatTime(ls.ExpiresAt)
	v.r.LeaseExpiresAt = &exp
	if !v.now.Before(ls.ExpiresAt) {
		return ReasonLeaseExpired, "lease expired at " + exp
	}
	return "", ""
}

// graceApplies: formats.md section 6, Grace (v1.1). Only a trusted state file's last
// valid observation, of this license when it could be read, younger than its grace
// period and never past that license's expires_at; never for a rolled-back or
// equivocating bundle.
func (v *run) graceApplies(reason string) bool {
	st := v.st
	if !graceable[reason] || v.noGrace || st == nil || st.LastValidAt.IsZero() || st.LastValidGrace <= 0 {
		return false
	}
	if !st.LastValidExpiresAt.IsZero() && !v.now.Before(st.LastValidExpiresAt) {
		return false // v1.1: grace never outlives the license it remembers
	}
	if v.now.Before(st.LatestSeen.Add(-ClockSkew)) || v.now.Before(st.LastValidAt) {
		return false // the clock went back: no grace on a rolled-back clock
	}
	if v.r.LicenseID != "" && v.r.LicenseID != st.LastValidLicense {
		return false
	}
	return v.now.Sub(st.LastValidAt) < st.LastValidGrace
}

// saveState moves the state file forward. It never writes over a state file that
// failed its integrity check, nor records anything when the clock went back.
func (v *run) saveState(reason string) {
	if v.o.StatePath == "" || v.stateBad || reason == ReasonClockRollback {
		return
	}
	st := *v.st
	if v.now.After(st.LatestSeen) {
		st.LatestSeen = v.now
	}
	switch {
	case v.r.Status == StatusValid:
		st.LastValidLicense, st.LastValidAt, st.LastValidGrace = v.r.LicenseID, v.now, v.r.License.GracePeriod
		st.LastValidExpiresAt = v.r.License.ExpiresAt
	case endsObservation[reason]:
		// v1.1: an expired, revoked, suspended or superseded result is recorded and ends
		// the last valid observation, so deleting or corrupting the file afterwards
		// can't fall back on grace.
		st.LastValidLicense, st.LastValidAt, st.LastValidGrace, st.LastValidExpiresAt = "", time.Time{}, 0, time.Time{}
		if st.EndedLicense != v.r.LicenseID || st.EndedReason != reason {
			st.EndedLicense, st.EndedReason, st.EndedAt = v.r.LicenseID, reason, v.now
		}
	}
	if b := v.bundle; b != nil && b.Sequence > st.BundleSequence {
		st.BundleSequence, st.BundleSHA256 = b.Sequence, hex.EncodeToString(b.PayloadSHA256[:])
	} else if b != nil && st.BundleSHA256 == "" && b.Sequence == st.BundleSequence {
		st.BundleSHA256 = hex.EncodeToString(b.PayloadSHA256[:])
	}
	if st == *v.st {
		return
	}
	if err := WriteState(v.o.StatePath, &st); err != nil {
		v.warn("state file not written: " + safe(err))
	}
}

var errTooLarge = errors.New("file is larger than the format allows")

// readCapped reads at most max bytes; a larger file is errTooLarge.
func readCapped(path string, max int64) ([]byte, error) {
	if path == "" {
		return nil, fs.ErrNotExist
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, errTooLarge
	}
	return data, nil
}

func sortedKeys(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
