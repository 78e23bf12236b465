package verify

import (
	"bytes"
	"maps"
	"time"
)

// ClockSkew is how far the clock may go back behind the latest time the state file
// has seen before it counts as a rollback (formats.md section 6, step 4).
const ClockSkew = 300 * time.Second

// State is what a verifier remembers between runs. It only ever moves forward. Check
// takes one and returns the next; ReadState and WriteState keep it in a file.
type State struct {
	LatestSeen time.Time
	// The last valid observation; zero LastValidAt: none.
	LastValidLicense string
	LastValidAt      time.Time
	LastValidGrace   time.Duration
	// LastValidExpiresAt is the expires_at of the license last observed valid (v1.1):
	// grace never runs past it. Zero in a state file written by a v1 verifier.
	LastValidExpiresAt time.Time
	// LastValidFile is the exact signed bytes of the license last observed valid
	// (v1.2): a grace result re-verifies and serves them, not whatever file is there.
	// Nil in a state file written before v1.2, which therefore gives no grace until its
	// next valid observation.
	LastValidFile []byte
	// The last result that ended the valid observation (v1.1): license-expired,
	// -revoked, -suspended or -superseded, for which license and when. Kept for the
	// operator; grace is already ruled out by the cleared observation.
	EndedLicense string
	EndedReason  string
	EndedAt      time.Time
	// Bundles holds the highest revocation bundle sequence seen, and that bundle's
	// payload hash, per issuer and product (v1.2).
	Bundles map[BundleScope]BundleMark
	// Legacy is the single bundle sequence of a v1 or v1.1 state file, whose product
	// nobody recorded. It is the floor of every (issuer, product) that has no entry of
	// its own in Bundles: nothing is ever lowered by the upgrade.
	Legacy BundleMark
	// Revoked holds the licenses seen revoked on this host, each with its license's
	// expires_at (zero: unknown, as for a revocation carried over from a v1.1 file).
	// A revocation is final (v1.2): such a license stays license-revoked whatever a
	// later bundle says. Entries are dropped once their license has expired.
	Revoked map[string]time.Time
}

// BundleScope is what a bundle sequence counts within (formats.md v1.2).
type BundleScope struct {
	Issuer  string
	Product string
}

// BundleMark is the highest sequence seen in one scope and the SHA-256 (hex) of that
// bundle's payload.
type BundleMark struct {
	Sequence int64
	SHA256   string
}

// mark returns the sequence a bundle of this scope must not go below: its own entry,
// or else the legacy one.
func (s *State) mark(sc BundleScope) BundleMark {
	if m, ok := s.Bundles[sc]; ok {
		return m
	}
	return s.Legacy
}

// revoked reports whether the license was recorded as revoked and, at now, has not
// expired since (the record is kept until then, formats.md v1.2).
func (s *State) revoked(licenseID string, now time.Time) bool {
	if s == nil {
		return false
	}
	exp, ok := s.Revoked[licenseID]
	return ok && (exp.IsZero() || now.Before(exp))
}

// Clone returns a deep copy, so a caller can keep one State while Check computes the
// next.
func (s *State) Clone() *State {
	c := *s
	c.LastValidFile = bytes.Clone(s.LastValidFile)
	c.Bundles = maps.Clone(s.Bundles)
	c.Revoked = maps.Clone(s.Revoked)
	return &c
}

// Equal reports whether two states hold the same facts.
func (s *State) Equal(o *State) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.LatestSeen.Equal(o.LatestSeen) && s.LastValidLicense == o.LastValidLicense &&
		s.LastValidAt.Equal(o.LastValidAt) && s.LastValidGrace == o.LastValidGrace &&
		s.LastValidExpiresAt.Equal(o.LastValidExpiresAt) && bytes.Equal(s.LastValidFile, o.LastValidFile) &&
		s.EndedLicense == o.EndedLicense && s.EndedReason == o.EndedReason && s.EndedAt.Equal(o.EndedAt) &&
		maps.Equal(s.Bundles, o.Bundles) && s.Legacy == o.Legacy &&
		maps.EqualFunc(s.Revoked, o.Revoked, time.Time.Equal)
}

// next computes the state after a run: the clock, the observation, a revocation, the
// accepted bundle. It never moves anything backwards; callers have already ruled out
// an untrusted state file and a clock rollback.
func (v *run) next(reason string) *State {
	st := v.st.Clone()
	if v.now.After(st.LatestSeen) {
		st.LatestSeen = v.now
	}
	lic := v.r.License
	if v.endReason != "" {
		reason, lic = v.endReason, v.endLicense
	}
	switch {
	case v.r.Status == StatusValid:
		st.LastValidLicense, st.LastValidAt, st.LastValidGrace = lic.LicenseID, v.now, lic.GracePeriod
		st.LastValidExpiresAt, st.LastValidFile = lic.ExpiresAt, bytes.Clone(v.licData)
	case endsObservation[reason]:
		// v1.1: an expired, revoked, suspended or superseded result is recorded and ends
		// the last valid observation, so deleting or corrupting the file afterwards
		// can't fall back on grace.
		st.LastValidLicense, st.LastValidAt, st.LastValidGrace, st.LastValidExpiresAt = "", time.Time{}, 0, time.Time{}
		st.LastValidFile = nil
		if st.EndedLicense != lic.LicenseID || st.EndedReason != reason {
			st.EndedLicense, st.EndedReason, st.EndedAt = lic.LicenseID, reason, v.now
		}
	}
	if reason == ReasonRevoked && lic != nil {
		if st.Revoked == nil {
			st.Revoked = map[string]time.Time{}
		}
		st.Revoked[lic.LicenseID] = lic.ExpiresAt
	}
	for id, exp := range st.Revoked {
		// An expired license fails on its own (step 8); an unknown expiry stays.
		if !exp.IsZero() && !st.LatestSeen.Before(exp) {
			delete(st.Revoked, id)
		}
	}
	if b := v.bundle; b != nil {
		sc := BundleScope{Issuer: b.Issuer, Product: b.Product}
		m := st.mark(sc)
		if _, own := st.Bundles[sc]; b.Sequence > m.Sequence || !own || m.SHA256 == "" {
			// Only an accepted bundle gets here: it is at or above the mark and, at the
			// mark, has its content (or the mark had none).
			if st.Bundles == nil {
				st.Bundles = map[BundleScope]BundleMark{}
			}
			st.Bundles[sc] = BundleMark{Sequence: b.Sequence, SHA256: b.sha256Hex()}
		}
	}
	if len(st.Revoked) == 0 {
		st.Revoked = nil
	}
	if st.Equal(v.st) {
		return nil
	}
	return st
}
