package leases

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

var fingerprintRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,200}$`)

// ErrUnauthorized is the one answer for an unknown license, a license without
// leases, and a wrong token: nothing tells them apart.
var ErrUnauthorized = entitlements.Errorf(entitlements.EUNAUTHORIZED, "bad or missing lease token")

// Grant renews the host's lease, or takes a slot for it, and returns the signed lease.
// Refusals are *entitlements.Error with the reason code of formats.md section 6.
func (s *Service) Grant(ctx context.Context, tokenHash []byte, licenseID, fingerprint string) (*Lease, error) {
	f := map[string]string{}
	if !entitlements.ValidID(entitlements.PrefixLicense, licenseID) {
		f["license_id"] = "not a license ID (lic_…)"
	}
	if !fingerprintRe.MatchString(fingerprint) {
		f["instance_fingerprint"] = "1–200 characters of letters, digits and . _ : -"
	}
	if err := entitlements.Invalid(f); err != nil {
		return nil, err
	}
	key := slotKey{licenseID, fingerprint}
	req := entitlements.LeaseRequest{TokenHash: tokenHash, LicenseID: licenseID, Fingerprint: fingerprint,
		NewLeaseID: entitlements.NewID(entitlements.PrefixLease), Exclusive: !s.expectRenewal(key)}
	r, err := s.batches.Submit(ctx, req)
	if err == nil && r.d.Outcome == OutcomeRetry {
		// The host has no live slot after all: decide again under the exclusive lock.
		req.Exclusive = true
		r, err = s.batches.Submit(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	s.remember(key, &r.d)
	d := r.d
	switch {
	case d.Reason == reasonUnauthorized:
		return nil, ErrUnauthorized
	case d.Outcome == OutcomeLimited:
		return nil, rateLimited(d.RetryAfter)
	case d.Outcome == OutcomeNoKey:
		return nil, &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "no lease signing key may sign now: retry later",
			Err: fmt.Errorf("leases: no usable active lease key for %s", d.Product)}
	case d.Reason != "":
		return nil, entitlements.Errorf(d.Reason, "%s", refusal[d.Reason])
	}
	file := r.file
	if file == nil {
		var err error
		if file, err = signLease(r.key, &req, &d); err != nil {
			return nil, fmt.Errorf("leases: sign lease %s: %w", d.LeaseID, err)
		}
	}
	return &Lease{LeaseID: d.LeaseID, LicenseID: licenseID, Renewed: d.Outcome == OutcomeRenewed, ExpiresAt: d.ExpiresAt, File: file}, nil
}

// refusal is the safe text of each refusal.
var refusal = map[string]string{
	verify.ReasonRevoked:          "the license is revoked",
	verify.ReasonSuspended:        "the license is suspended",
	verify.ReasonSuperseded:       "the license was superseded: install its replacement",
	verify.ReasonExpired:          "the license has expired",
	verify.ReasonNotYetValid:      "the license is not valid yet",
	verify.ReasonInstanceMismatch: "the license is bound to another instance",
	verify.ReasonLimitExceeded:    "every instance slot of the license is taken: release one or wait for a lease to expire",
}

// ERateLimited is the code of a request over its license's rate limit (HTTP 429).
const ERateLimited = entitlements.ERATELIMITED

func rateLimited(wait time.Duration) error {
	return entitlements.RateLimited(wait, "too many lease requests for this license: retry after the Retry-After delay")
}

// Release releases a lease (lease-api.md v1.1): it is never renewed again, and its
// slot is freed at once only within the license's release budget. Idempotent: an
// unknown or already released lease is not an error; only a bad token is. A bad
// token is checked before the lease ID's shape, so an unauthenticated caller learns
// nothing, and leaves no row.
func (s *Service) Release(ctx context.Context, tokenHash []byte, leaseID string) (*entitlements.ReleaseResult, error) {
	if !entitlements.ValidID(entitlements.PrefixLease, leaseID) {
		leaseID = "" // matches no lease; the token is still checked
	}
	var admit func(string) time.Duration
	if s.opts.Limiter != nil {
		admit = s.opts.Limiter.Wait
	}
	res, err := s.store.ReleaseLease(ctx, tokenHash, leaseID, admit)
	if err != nil {
		return nil, err
	}
	if !res.Known {
		return nil, ErrUnauthorized
	}
	if leaseID == "" {
		return nil, entitlements.Invalid(map[string]string{"lease_id": "not a lease ID (lea_…)"})
	}
	return res, nil
}

func unavailable(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "the lease service is busy or the database is unreachable: retry", Err: err}
}
