package verify

import (
	"fmt"
	"slices"
)

// grace applies formats.md section 6's grace (v1, v1.1 and v1.2 rules) to a failed
// run. It returns the run that replaces v, or nil when grace does not apply and v's
// blocked result, with its original reason, stands.
//
// Grace serves the license last observed valid, kept in the state file, and nothing
// else: those bytes are verified again (envelope or JWS, key, purpose, product) and
// then put through steps 3–11 as if they were the license file, a transient bundle
// fault (which grace covers) aside. A required feature or requested limit the kept
// license lacks (steps 10, 11) is the result, blocked. Any other failure (instance,
// revocation, lease) means no grace and the original reason stands; a revocation,
// suspension or supersession the kept license shows still ends the observation, as it
// would have with the file present.
func (v *run) grace(reason string) *run {
	st := v.st
	if !graceable[reason] || v.noGrace || st == nil || st.LastValidAt.IsZero() || st.LastValidGrace <= 0 {
		return nil
	}
	if !st.LastValidExpiresAt.IsZero() && !v.now.Before(st.LastValidExpiresAt) {
		return nil // v1.1: grace never outlives the license it remembers
	}
	if v.now.Before(st.LatestSeen.Add(-ClockSkew)) || v.now.Before(st.LastValidAt) {
		return nil // the clock went back: no grace on a rolled-back clock
	}
	if v.r.LicenseID != "" && v.r.LicenseID != st.LastValidLicense {
		return nil // a readable license that is not the one observed valid
	}
	if v.now.Sub(st.LastValidAt) >= st.LastValidGrace || st.revoked(st.LastValidLicense, v.now) {
		return nil
	}
	if len(st.LastValidFile) == 0 {
		v.warn("grace not applied: the state file keeps no license to serve (it was written before v1.2; the next valid run keeps one)")
		return nil
	}
	kept, err := ParseLicenseFile(st.LastValidFile, v.in.KeySet)
	if err != nil || kept.LicenseID != st.LastValidLicense {
		v.warn("grace not applied: the license kept in the state file does not verify")
		return nil
	}
	if !v.now.Before(kept.ExpiresAt) {
		return nil // v1.1: the kept license's own expires_at bounds grace too
	}
	g := &run{in: v.in, now: v.now, r: newResult(), st: st, licData: st.LastValidFile, graceTry: true, parsed: v.parsed}
	gr, gd := g.checkLicense(kept)
	g.r.Warnings = merge(v.r.Warnings, g.r.Warnings)
	switch {
	case gr == "":
		g.r.Status, g.r.Reason, g.r.Detail, g.r.GraceActive = StatusGrace, reason, v.r.Detail, true
		g.warn(fmt.Sprintf("grace: serving %s, last observed valid at %s, grace period %ds",
			st.LastValidLicense, FormatTime(st.LastValidAt), int64(st.LastValidGrace.Seconds())))
		return g
	case gr == ReasonFeatureForbidden || gr == ReasonLimitExceeded:
		// formats.md v1.2: steps 10 and 11 are checked against the kept license, and
		// grace never covers a feature or limit result.
		g.r.Status, g.r.Reason, g.r.Detail = StatusBlocked, gr, gd
		g.warn("grace not applied: the license last observed valid does not license this (" + gr + ")")
		return g
	}
	v.warn("grace not applied: the license last observed valid fails here on its own (" + gr + ")")
	if endsObservation[gr] {
		v.endReason, v.endLicense = gr, kept
	}
	if v.bundle == nil {
		v.bundle = g.bundle
	}
	return nil
}

// merge appends the warnings of b not already in a.
func merge(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
