package verify

import (
	"fmt"
)

// checkRevocation is step 7 of formats.md v1.2, sub-steps a–e in that order. A bundle
// that fails 7b or 7c is never kept in v.bundle, so it never moves the state.
func (v *run) checkRevocation(lic *License) (string, string) {
	in, now := v.in, v.now
	// skip is a bundle fault: blocking when fail-closed, otherwise said and skipped.
	skip := func(why string) (string, string) {
		if in.FailClosed {
			return ReasonRevocationCheckFailed, why
		}
		v.warn("revocation bundle not used (" + why + "): revocation was not checked")
		return "", ""
	}
	// substituted (7c) is evidence of tampering, not a transient fault: fail-closed,
	// it blocks whatever the state file's last valid observation says.
	substituted := func(why string) (string, string) {
		if in.FailClosed {
			v.noGrace = true
		}
		return skip(why)
	}
	var b *Bundle
	switch {
	case !in.revocationOn():
	case in.Bundle == nil && in.BundleErr == nil: // a. Absent.
		if in.RequireCurrent {
			return ReasonRevocationRequired, "no revocation bundle at the configured path"
		}
		v.warn("no revocation bundle: revocation was not checked")
	case in.BundleErr != nil: // b. Not authentic: unreadable.
		if reason, detail := skip("bundle unreadable: " + safe(in.BundleErr)); reason != "" {
			return reason, detail
		}
	default:
		var err error
		if b, err = v.parseBundle(); err != nil { // b. Not authentic.
			b = nil
			if reason, detail := skip("bundle invalid: " + safe(err)); reason != "" {
				return reason, detail
			}
			break
		}
		if why := v.substitution(b, lic); why != "" { // c. Substituted.
			b = nil
			if reason, detail := substituted(why); reason != "" {
				return reason, detail
			}
			break
		}
		v.bundle = b
		seq := b.Sequence
		v.r.BundleSequence = &seq
		v.r.BundleIssuedAt, v.r.BundleExpiresAt = b.IssuedAt, b.ExpiresAt
	}
	// d. An effective entry, from this bundle current or stale; and a revocation this
	// host recorded, which no later bundle (nor a skipped or absent one, nor mode off)
	// undoes.
	if v.st.revoked(lic.LicenseID, now) {
		return ReasonRevoked, "license was revoked (recorded in the state file; a revocation is final)"
	}
	if b == nil {
		return "", ""
	}
	if e, ok := b.Lookup(lic.LicenseID); ok {
		if now.Before(e.EffectiveAt) {
			v.warn(fmt.Sprintf("license is listed as %s from %s", e.Status, FormatTime(e.EffectiveAt)))
		} else {
			switch e.Status {
			case StatusRevoked:
				return ReasonRevoked, "license revoked: " + e.Reason
			case StatusSuspended:
				return ReasonSuspended, "license suspended: " + e.Reason
			default:
				return ReasonSuperseded, "license superseded by " + e.SupersededBy
			}
		}
	}
	// e. Stale.
	if !now.Before(b.ExpiresAt) {
		if in.RequireCurrent {
			if in.FailClosed {
				return ReasonRevocationCheckFailed, "bundle expired at " + FormatTime(b.ExpiresAt) + "; a current one is required"
			}
			v.warn("revocation bundle expired at " + FormatTime(b.ExpiresAt) + " though a current one is required; its entries were applied")
		} else {
			v.warn("revocation bundle expired at " + FormatTime(b.ExpiresAt) + "; its entries still apply")
		}
	}
	return "", ""
}

// substitution says why an authentic bundle can't be used for this license (7c), or
// "": another product's bundle, or one older than, or different from, a bundle already
// seen for the same issuer and product.
func (v *run) substitution(b *Bundle, lic *License) string {
	if b.Product != lic.Product {
		return fmt.Sprintf("bundle substituted: it covers product %q, the license is for %q", b.Product, lic.Product)
	}
	if v.st == nil {
		return ""
	}
	m := v.st.mark(BundleScope{Issuer: b.Issuer, Product: b.Product})
	if b.Sequence < m.Sequence {
		return fmt.Sprintf("bundle rolled back: sequence %d is below %d already seen for %s", b.Sequence, m.Sequence, b.Product)
	}
	if b.Sequence == m.Sequence && m.SHA256 != "" && b.sha256Hex() != m.SHA256 {
		return fmt.Sprintf("bundle equivocation: another bundle with sequence %d was seen for %s", b.Sequence, b.Product)
	}
	return ""
}
