package verify

import (
	"fmt"
	"slices"
	"time"
)

// Input is one verification from bytes (formats.md section 6): what a router that
// reads its own files, or keeps them in memory, gives Check.
type Input struct {
	// License is the license file (envelope or compact JWS); nil: absent or
	// unreadable (license-missing).
	License []byte
	// Product is the expected product; "" means no product check (see Options).
	Product             string
	InstanceFingerprint string
	Features            []string         // required features (step 10)
	Limits              map[string]int64 // requested limit values (step 11)
	// Revocation turns revocation mode file on with no bundle (an absent bundle is
	// then skipped with a warning, or license-revocation-required). It is on anyway
	// when Bundle, BundleErr or RequireCurrent is set: a configured bundle is always
	// checked.
	Revocation bool
	// Bundle is the revocation bundle file; nil: absent.
	Bundle []byte
	// BundleErr says a bundle exists but could not be read (step 7b), as opposed to
	// an absent one.
	BundleErr      error
	RequireCurrent bool
	FailClosed     bool
	// Lease is the lease file; nil: absent. LeaseErr: it exists but could not be read.
	Lease    []byte
	LeaseErr error
	// State is the state file's content; nil: no state file in use (no clock-rollback
	// memory, no grace). A state file that does not exist yet is an empty State.
	State *State
	// StateErr is ReadState's error: the state file exists but can't be trusted, so
	// the result is license-clock-rollback and no next state is returned.
	StateErr error
	KeySet   *KeySet
	Now      time.Time // zero: the system clock
}

// revocationOn is formats.md v1.2 step 7's mode file: a bundle given, or a current
// one required.
func (in *Input) revocationOn() bool {
	return in.Revocation || in.Bundle != nil || in.BundleErr != nil || in.RequireCurrent
}

// Check runs the checks of formats.md section 6 in order; the first failing step
// decides the reason. It reads and writes nothing: next is the state to keep for the
// following call, or nil when nothing moved forward (or no trusted state is in use).
// Persisting next is the caller's choice of when; losing it loses only memory of
// facts (latest time, observation, sequences, revocations) that protect the host.
func Check(in Input) (r *Result, next *State) {
	v := &run{in: in, now: in.Now.UTC(), r: newResult()}
	if in.Now.IsZero() {
		v.now = time.Now().UTC()
	}
	switch {
	case in.StateErr != nil:
		v.stateBad = true
	case in.State != nil:
		v.st = in.State
	}
	reason, detail := v.check()
	v.r.Reason, v.r.Detail = reason, detail
	if reason == "" {
		v.r.Status = StatusValid
	} else if g := v.grace(reason); g != nil {
		v = g
		reason = v.r.Reason
	}
	if v.st == nil || reason == ReasonClockRollback {
		// Nothing is recorded over an untrusted state file or a clock that went back.
		return v.r, nil
	}
	return v.r, v.next(reason)
}

func newResult() *Result {
	return &Result{Status: StatusBlocked, Features: []string{}, Limits: map[string]int64{}, Warnings: []string{}}
}

type run struct {
	in       Input
	now      time.Time
	r        *Result
	st       *State // nil: no trusted state file in use
	stateBad bool   // present but failed its integrity check
	// noGrace: the failure is evidence of tampering (a substituted, rolled-back or
	// equivocating bundle), which grace never covers.
	noGrace bool
	// bundle is the bundle that passed steps 7b and 7c: the only one whose sequence
	// moves the state forward.
	bundle  *Bundle
	licData []byte // the bytes of the license checked
	// parsed is the bundle's parse, shared with the grace run: a large bundle is
	// parsed once.
	parsed *parsedBundle
	// graceTry: this run puts the kept license through steps 3–11 for grace.
	graceTry bool
	// endReason and endLicense: the kept license, tried for grace, showed a
	// revocation, suspension or supersession; the state records it as if the license
	// file had shown it.
	endReason  string
	endLicense *License
}

func (v *run) warn(s string) { v.r.Warnings = append(v.r.Warnings, s) }

type parsedBundle struct {
	b   *Bundle
	err error
}

// parseBundle is ParseBundleFile of the input's bundle, once per Check.
func (v *run) parseBundle() (*Bundle, error) {
	if v.parsed == nil {
		b, err := ParseBundleFile(v.in.Bundle, v.in.KeySet)
		v.parsed = &parsedBundle{b, err}
	}
	return v.parsed.b, v.parsed.err
}

// check returns "" when every step passes, or the first failing reason.
func (v *run) check() (string, string) {
	// 1. The file.
	if v.in.License == nil {
		return ReasonMissing, "license file absent or unreadable"
	}
	// 2. Envelope, key (trusted for the license's product), signature, payload shape.
	lic, err := ParseLicenseFile(v.in.License, v.in.KeySet)
	if err != nil {
		return ReasonInvalid, safe(err)
	}
	v.licData = v.in.License
	return v.checkLicense(lic)
}

// checkLicense runs steps 3–11 on a license whose signature verified: the license
// file's, or in grace the kept one.
func (v *run) checkLicense(lic *License) (string, string) {
	in, now := v.in, v.now
	v.fill(lic)
	// 3. Product.
	if in.Product != "" && lic.Product != in.Product {
		return ReasonProductMismatch, fmt.Sprintf("license is for %q, not %q", lic.Product, in.Product)
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
	if lic.InstanceFingerprint != "" && lic.InstanceFingerprint != in.InstanceFingerprint {
		return ReasonInstanceMismatch, "license is bound to another instance"
	}
	// 7. Revocation.
	if reason, detail := v.checkRevocation(lic); reason != "" {
		// Grace covers a transient bundle fault (not a substituted bundle): trying the
		// kept license for grace, the steps after it still apply.
		if !v.graceTry || reason != ReasonRevocationCheckFailed || v.noGrace {
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
	} else if in.Lease != nil || in.LeaseErr != nil {
		v.warn("a lease was given but this license does not require one; it was not checked")
	}
	// 10. Features.
	for _, f := range in.Features {
		if !slices.Contains(lic.Features, f) {
			return ReasonFeatureForbidden, fmt.Sprintf("feature %q is not licensed", f)
		}
	}
	// 11. Limits (absent in the license = unlimited).
	for _, name := range sortedKeys(in.Limits) {
		max, ok := lic.Limits[name]
		if !ok {
			// Unlimited, so it passes; said, because a misspelt name passes too.
			v.warn(fmt.Sprintf("limit %q is not in the license (unlimited): nothing was checked", name))
			continue
		}
		if in.Limits[name] > max {
			return ReasonLimitExceeded, fmt.Sprintf("%s=%d exceeds the licensed %d", name, in.Limits[name], max)
		}
	}
	if left := lic.ExpiresAt.Sub(now); left < 30*24*time.Hour {
		when := fmt.Sprintf("in %d days", DaysUntil(now, lic.ExpiresAt))
		switch DaysUntil(now, lic.ExpiresAt) {
		case 0:
			when = "today"
		case 1:
			when = "tomorrow"
		}
		v.warn(fmt.Sprintf("license expires %s (%s): renew before then", when, FormatTime(lic.ExpiresAt)))
	}
	return "", ""
}

func (v *run) fill(l *License) {
	r := v.r
	r.License = l
	r.LicenseID, r.CustomerID, r.Product, r.SKU, r.KeyID = l.LicenseID, l.CustomerID, l.Product, l.SKU, l.KeyID
	r.NotBefore = ""
	if !l.NotBefore.IsZero() {
		r.NotBefore = FormatTime(l.NotBefore)
	}
	r.ExpiresAt = FormatTime(l.ExpiresAt)
	r.Features = slices.Clone(l.Features)
	r.Limits = make(map[string]int64, len(l.Limits))
	for k, val := range l.Limits {
		r.Limits[k] = val
	}
}

func (v *run) checkLease(lic *License) (string, string) {
	in := v.in
	if in.LeaseErr != nil {
		return ReasonLeaseInvalid, "lease unreadable: " + safe(in.LeaseErr)
	}
	if in.Lease == nil {
		return ReasonLeaseRequired, "this license requires an online lease; none was given"
	}
	ls, err := ParseLeaseFile(in.Lease, in.KeySet)
	if err != nil {
		return ReasonLeaseInvalid, safe(err)
	}
	switch {
	case !ls.KeyTrusts(lic.Product):
		// formats.md v1.2: badly signed, for this license's product.
		return ReasonLeaseInvalid, fmt.Sprintf("lease signed by key %s, which is not trusted for product %q", ls.KeyID, lic.Product)
	case ls.LicenseID != lic.LicenseID:
		return ReasonLeaseInvalid, "lease is for another license"
	case in.InstanceFingerprint == "":
		return ReasonLeaseInvalid, "no host instance fingerprint given to check the lease against"
	case ls.InstanceFingerprint != in.InstanceFingerprint:
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

func sortedKeys(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
