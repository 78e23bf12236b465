package issuance

import (
	"context"
	"fmt"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/templates"
	"github.com/metrum/licensing/verify"
)

// Issue signs and stores the license of an approved entitlement. The license row, its
// exact bytes and the audit event commit together; on any error nothing is written.
func (s *Service) Issue(ctx context.Context, entitlementID string, by *entitlements.Staff) (*entitlements.License, error) {
	if err := require(by, entitlements.RoleIssuer, "issuing a license"); err != nil {
		return nil, err
	}
	l, err := s.Store.IssueLicense(ctx, entitlementID, by.Email, func(e *entitlements.Entitlement, c *entitlements.Customer) (*entitlements.License, error) {
		return s.build(ctx, e, c)
	})
	if err != nil {
		return nil, err
	}
	s.logf("license issued", "license_id", l.ID, "customer_id", l.CustomerID, "sku", l.SKU, "key_id", l.KeyID, "actor", by.Email)
	return l, nil
}

// build renders the payload from the template version the entitlement names, signs it
// with the product's active license key, and checks the result with the verifier's own
// parser before it can be stored.
func (s *Service) build(ctx context.Context, e *entitlements.Entitlement, c *entitlements.Customer) (*entitlements.License, error) {
	t, err := templates.Get(e.TemplateName, e.TemplateVersion)
	if err != nil {
		return nil, err
	}
	signer, err := s.signerFor(ctx, e.Product, verify.PurposeLicense)
	if err != nil {
		return nil, err
	}
	now := s.now()
	id := entitlements.NewID(entitlements.PrefixLicense)
	payload, err := t.Render(e, templates.Input{LicenseID: id, Issuer: s.Issuer, CustomerName: c.Name, IssuedAt: now, RenewURL: s.RenewURL})
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, errorf("payload: %w", err)
	}
	file, err := signing.SignEnvelope(signer, verify.FormatLicense, raw)
	if err != nil {
		return nil, errorf("sign: %w", err)
	}
	parsed, err := selfCheck(file, signer)
	if err != nil {
		return nil, errorf("the signed license does not verify: %w", err)
	}
	return &entitlements.License{
		ID: id, CustomerID: e.CustomerID, Product: e.Product, SKU: t.Name, TemplateVersion: t.Version,
		KeyID: signer.KeyID(), IssuedAt: parsed.IssuedAt, NotBefore: parsed.NotBefore, ExpiresAt: parsed.ExpiresAt,
		Supersedes: e.Supersedes, File: file, FileName: "license.json", ContentType: "application/json",
		Summary: Summary(parsed, s.Issuer),
	}, nil
}

// selfCheck parses a freshly signed file with the verifier, trusting only its signer.
func selfCheck(file []byte, signer signing.Signer) (*verify.License, error) {
	jwk, err := signing.JWKOf(signer.Public(), signer.Algorithm(), signer.Purposes())
	if err != nil {
		return nil, err
	}
	set, err := signing.KeySetJSON([]signing.PublicJWK{jwk})
	if err != nil {
		return nil, err
	}
	ks, err := verify.ParseKeySet(set)
	if err != nil {
		return nil, err
	}
	if len(ks.Dropped) > 0 {
		return nil, fmt.Errorf("signer's own key not trusted: %v", ks.Dropped)
	}
	return verify.ParseLicenseFile(file, ks)
}

// Summary is the safe summary of a license: scalar metadata only (formats.md allows
// features and limits as names and numbers); never payload bytes or the signature.
func Summary(l *verify.License, issuer string) map[string]any {
	m := map[string]any{
		"license_id": l.LicenseID, "customer_id": l.CustomerID, "customer_name": l.CustomerName,
		"product": l.Product, "sku": l.SKU, "template_version": l.TemplateVersion, "key_id": l.KeyID,
		"algorithm": l.Algorithm, "issuer": issuer, "issued_at": verify.FormatTime(l.IssuedAt),
		"expires_at": verify.FormatTime(l.ExpiresAt), "features": l.Features, "limits": l.Limits,
		"grace_period_seconds": int64(l.GracePeriod.Seconds()),
	}
	if !l.NotBefore.IsZero() {
		m["not_before"] = verify.FormatTime(l.NotBefore)
	}
	if l.InstanceFingerprint != "" {
		m["instance_fingerprint"] = l.InstanceFingerprint
	}
	if l.Supersedes != "" {
		m["supersedes"] = l.Supersedes
	}
	if l.Lease != nil {
		m["lease_required"] = l.Lease.Required
		m["lease_ttl_seconds"] = l.Lease.TTLSeconds
	}
	return m
}
