package issuance

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/internal/templates"
	"github.com/metrum/licensing/verify"
)

// Bundle defaults: a week's lifetime, re-published at half; entries of licenses that
// expired more than 90 days ago are pruned (an expired license fails on its own).
const (
	DefaultBundleTTL       = 7 * 24 * time.Hour
	DefaultBundleRetention = 90 * 24 * time.Hour
)

func (s *Service) bundleTTL() time.Duration {
	if s.BundleTTL > 0 {
		return s.BundleTTL
	}
	return DefaultBundleTTL
}

func (s *Service) bundleRetention() time.Duration {
	if s.BundleRetention > 0 {
		return s.BundleRetention
	}
	return DefaultBundleRetention
}

// PublishBundle signs and stores a new revocation bundle for a product now, whatever
// changed (staff asked for it). Approvers and above may publish.
func (s *Service) PublishBundle(ctx context.Context, product string, by *entitlements.Staff) (*entitlements.Bundle, error) {
	if err := entitlements.Require(by, entitlements.RoleApprover, "publishing a revocation bundle"); err != nil {
		return nil, err
	}
	return s.publish(ctx, product, by.Email, "manual", false)
}

// PublishDue publishes, for each product with an active revocation key, a bundle when
// one is due: none yet, a license status changed since the last, or the last has less
// than half its lifetime left. It is what the issuer's scheduler runs; several
// replicas may run it at once (the counter lock lets one publish, the others then find
// nothing due).
func (s *Service) PublishDue(ctx context.Context) ([]*entitlements.Bundle, error) {
	var out []*entitlements.Bundle
	var errs []error
	for _, product := range []string{templates.ProductRouter, templates.ProductCoreSDK} {
		if _, err := s.store.ActiveKey(ctx, product, string(verify.PurposeRevocation)); entitlements.ErrorCode(err) == entitlements.ENOTFOUND {
			continue
		}
		b, err := s.publish(ctx, product, entitlements.System.Email, "", true)
		switch {
		case errors.Is(err, storage.ErrNotDue):
		case err != nil:
			errs = append(errs, err)
		default:
			out = append(out, b)
		}
	}
	return out, errors.Join(errs...)
}

func (s *Service) publish(ctx context.Context, product, actor, reason string, onlyIfDue bool) (*entitlements.Bundle, error) {
	if templates.FormOf(product) == "" {
		return nil, entitlements.Invalid(map[string]string{"product": "genai-smart-router or coresdk"})
	}
	signer, err := s.signerFor(ctx, product, verify.PurposeRevocation)
	if err != nil {
		return nil, err
	}
	b, err := s.store.PublishBundle(ctx, storage.PublishOptions{Product: product, TTL: s.bundleTTL(), Retention: s.bundleRetention(),
		Actor: actor, Reason: reason, OnlyIfDue: onlyIfDue}, func(in storage.BundleInput) (*storage.SignedBundle, error) {
		return s.signBundle(signer, in)
	})
	if err != nil {
		return nil, err
	}
	s.logc(ctx, "revocation bundle published", "product", product, "sequence", b.Sequence, "entries", b.Entries, "reason", b.Reason, "key_id", b.KeyID)
	return b, nil
}

// signBundle renders the payload of formats.md section 4 and signs it, then checks
// the result with the verifier's own parser.
func (s *Service) signBundle(signer signing.Signer, in storage.BundleInput) (*storage.SignedBundle, error) {
	p := verify.BundlePayload{Schema: 2, Issuer: s.Issuer, Product: in.Product, Sequence: in.Sequence, IssuedAt: verify.FormatTime(in.IssuedAt),
		ExpiresAt: verify.FormatTime(in.ExpiresAt), Entries: make([]verify.BundleEntry, 0, len(in.Entries))}
	for _, e := range in.Entries {
		be := verify.BundleEntry{LicenseID: e.LicenseID, Status: e.Status, Reason: e.Reason, EffectiveAt: verify.FormatTime(e.EffectiveAt)}
		if e.Status == entitlements.LicenseSuperseded {
			be.SupersededBy = e.SupersededBy
		}
		p.Entries = append(p.Entries, be)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, errorf("bundle payload: %w", err)
	}
	file, err := signing.SignEnvelope(signer, verify.FormatRevocation, raw)
	if err != nil {
		return nil, errorf("sign bundle: %w", err)
	}
	jwk, err := signing.JWKOf(signer.Public(), signer.Algorithm(), signer.Purposes(), in.Product)
	if err != nil {
		return nil, err
	}
	set, _ := signing.KeySetJSON([]signing.PublicJWK{jwk})
	ks, err := verify.ParseKeySet(set)
	if err != nil {
		return nil, err
	}
	if _, err := verify.ParseBundleFile(file, ks); err != nil {
		return nil, errorf("the signed bundle does not verify: %w", err)
	}
	sum := sha256.Sum256(raw)
	return &storage.SignedBundle{File: file, PayloadSHA256: sum[:], KeyID: signer.KeyID()}, nil
}

// RunBundleScheduler publishes due bundles (and rolls up closed hours of lease
// events for the console, and prunes old bulk jobs) every interval until ctx ends.
// Errors are logged and retried at the next tick: a bundle that can't be published
// now must not stop the issuer.
func (s *Service) RunBundleScheduler(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.PublishDue(ctx); err != nil && ctx.Err() == nil && s.Log != nil {
			s.Log.Error("bundle scheduler", "err", err)
		}
		// The console's hourly lease plot reads rollups of closed hours.
		if err := s.store.RollupLeaseHours(ctx); err != nil && ctx.Err() == nil && s.Log != nil {
			s.Log.Error("lease rollup", "err", err)
		}
		if err := s.store.PruneJobs(ctx, s.now().Add(-jobRetention)); err != nil && ctx.Err() == nil && s.Log != nil {
			s.Log.Error("bulk job pruning", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
