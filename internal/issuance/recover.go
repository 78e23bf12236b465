package issuance

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

// RecoverActor is the audit actor of `issuer recover` (an operator command on the
// issuer's host, not a staff account).
const RecoverActor = "operator:recover"

// KnownKeySet is the verifier's view of every key this database has recorded,
// retired ones included (a published bundle may have been signed by a key retired
// since), each bound to its product.
func (s *Service) KnownKeySet(ctx context.Context) (*verify.KeySet, error) {
	keys, err := s.store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	jwks := make([]signing.PublicJWK, 0, len(keys))
	for _, k := range keys {
		jwk := k.PublicJWK
		jwk.Products = []string{k.Product}
		jwks = append(jwks, jwk)
	}
	b, err := signing.KeySetJSON(jwks)
	if err != nil {
		return nil, err
	}
	return verify.ParseKeySet(b)
}

// Recover re-applies published bundles to a database restored from a backup
// (docs/operations.md, "Restore"): each file must be an authentic bundle of this
// issuer (checked against ks), at most one per product. For each, in one transaction
// per bundle: the revocations and suspensions the database lacks are applied, the
// entries of licenses it never had are kept for every later bundle, the product's
// sequence rises above the bundle's, and a lease quarantine starts. dryRun reports
// without writing.
func (s *Service) Recover(ctx context.Context, files [][]byte, ks *verify.KeySet, dryRun bool) ([]*entitlements.RecoverReport, error) {
	var ins []entitlements.RecoverInput
	var seen []string
	for i, data := range files {
		b, err := verify.ParseBundleFile(data, ks)
		if err != nil {
			return nil, entitlements.Errorf(entitlements.EINVALID, "bundle %d is not an authentic revocation bundle: %v", i+1, err)
		}
		if b.Issuer != s.Issuer {
			return nil, entitlements.Errorf(entitlements.EINVALID, "bundle %d is from issuer %q, not %q", i+1, b.Issuer, s.Issuer)
		}
		if slices.Contains(seen, b.Product) {
			return nil, entitlements.Errorf(entitlements.EINVALID, "two bundles of %s: give only the newest of each product", b.Product)
		}
		seen = append(seen, b.Product)
		in := entitlements.RecoverInput{Product: b.Product, Sequence: b.Sequence, IssuedAt: b.IssuedAt, SHA256: b.PayloadSHA256[:],
			Actor: RecoverActor, DryRun: dryRun}
		for id, e := range b.All() {
			in.Entries = append(in.Entries, entitlements.BundleEntry{LicenseID: id, Status: e.Status, Reason: e.Reason,
				EffectiveAt: e.EffectiveAt, SupersededBy: e.SupersededBy})
		}
		ins = append(ins, in)
	}
	var out []*entitlements.RecoverReport
	for _, in := range ins {
		rep, err := s.store.Recover(ctx, in)
		if err != nil {
			return out, fmt.Errorf("recover %s from bundle #%d: %w", in.Product, in.Sequence, err)
		}
		out = append(out, rep)
		if !dryRun {
			s.logc(ctx, "recovered from a published bundle", "product", in.Product, "sequence", in.Sequence,
				"entries", len(in.Entries), "sequence_after", rep.SequenceAfter, "actor", strings.TrimPrefix(RecoverActor, "operator:"))
		}
	}
	return out, nil
}
