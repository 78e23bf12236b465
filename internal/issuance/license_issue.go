package issuance

import (
	"context"
	"fmt"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/internal/templates"
	"github.com/metrum/licensing/verify"
)

// Issue signs and stores the license of an approved entitlement. The license row, its
// exact bytes and the audit event commit together; on any error nothing is written.
// For a lease-required license the lease token is returned once, here, and only its
// hash is stored.
func (s *Service) Issue(ctx context.Context, entitlementID string, by *entitlements.Staff) (*entitlements.License, error) {
	l, _, err := s.IssueWithToken(ctx, entitlementID, by)
	return l, err
}

// IssueWithToken is Issue, also returning the lease token of a lease-required license
// ("" for others). The token is shown once: it is not stored in clear anywhere.
func (s *Service) IssueWithToken(ctx context.Context, entitlementID string, by *entitlements.Staff) (*entitlements.License, string, error) {
	if err := entitlements.Require(by, entitlements.RoleIssuer, "issuing a license"); err != nil {
		return nil, "", err
	}
	// Everything that reads the database is resolved before the issuing transaction:
	// inside it, a second pool connection could wait on the very locks it holds.
	pre, err := s.store.GetEntitlement(ctx, entitlementID)
	if err != nil {
		return nil, "", err
	}
	signer, err := s.signerFor(ctx, pre.Product, verify.PurposeLicense)
	if err != nil {
		return nil, "", err
	}
	var token string
	l, err := s.store.IssueLicense(ctx, entitlementID, by.Email, func(e *entitlements.Entitlement, c *entitlements.Customer, base *entitlements.License) (*storage.Built, error) {
		b, err := s.build(e, c, base, signer)
		if err != nil {
			return nil, err
		}
		if b.License.Terms.LeaseTTLSeconds > 0 {
			if token, b.LeaseTokenHash, err = NewLeaseToken(); err != nil {
				return nil, err
			}
		}
		return b, nil
	})
	if err != nil {
		return nil, "", err
	}
	s.logc(ctx, "license issued", "license_id", l.ID, "customer_id", l.CustomerID, "sku", l.SKU, "key_id", l.KeyID,
		"supersedes", l.Supersedes, "actor", by.Email)
	return l, token, nil
}

// build renders the payload from the template version the entitlement names, signs it
// with the product's active license key, and checks the result with the verifier's own
// parser before it can be stored.
func (s *Service) build(e *entitlements.Entitlement, c *entitlements.Customer, base *entitlements.License, signer signing.Signer) (*storage.Built, error) {
	t, err := templates.Get(e.TemplateName, e.TemplateVersion)
	if err != nil {
		return nil, err
	}
	now := s.now()
	id := entitlements.NewID(entitlements.PrefixLicense)
	in := templates.Input{LicenseID: id, Issuer: s.Issuer, CustomerName: c.Name, IssuedAt: now, RenewURL: s.RenewURL}
	if base != nil {
		in.Base = &base.Terms
	}
	l := &entitlements.License{ID: id, CustomerID: e.CustomerID, Product: e.Product, SKU: t.Name, TemplateVersion: t.Version,
		KeyID: signer.KeyID(), Supersedes: e.Supersedes, Form: t.Form()}
	var terms *entitlements.Terms
	switch t.Form() {
	case templates.FormEnvelope:
		var payload *verify.LicensePayload
		if payload, terms, err = t.Render(e, in); err != nil {
			return nil, err
		}
		raw, err := json.Marshal(payload)
		if err != nil {
			return nil, errorf("payload: %w", err)
		}
		if l.File, err = signing.SignEnvelope(signer, verify.FormatLicense, raw); err != nil {
			return nil, errorf("sign: %w", err)
		}
		l.FileName, l.ContentType = "license.json", "application/json"
	case templates.FormJWS:
		in.Issuer = s.coreSDKIssuer()
		var claims *verify.JWSClaims
		if claims, terms, err = t.RenderJWS(e, in); err != nil {
			return nil, err
		}
		raw, err := json.Marshal(claims)
		if err != nil {
			return nil, errorf("claims: %w", err)
		}
		tok, err := signing.SignJWS(signer, raw)
		if err != nil {
			return nil, errorf("sign: %w", err)
		}
		l.File, l.FileName, l.ContentType = []byte(tok+"\n"), "license.jwk", "application/jose"
	}
	parsed, err := selfCheck(l.File, signer, e.Product)
	if err != nil {
		return nil, errorf("the signed license does not verify: %w", err)
	}
	l.IssuedAt, l.NotBefore, l.ExpiresAt, l.Terms = parsed.IssuedAt, parsed.NotBefore, parsed.ExpiresAt, *terms
	if l.NotBefore.IsZero() {
		l.NotBefore = e.StartsAt
	}
	l.Summary = Summary(parsed, in.Issuer)
	return &storage.Built{License: l, Template: storage.TemplateVersion{Name: t.Name, Version: t.Version, Product: t.Product,
		Fingerprint: t.Fingerprint(), Definition: t.Definition()}}, nil
}

// coreSDKIssuer is the `iss` of CoreSDK tokens (the seed's https://licensing.coresdk.io).
func (s *Service) coreSDKIssuer() string {
	if s.CoreSDKIssuer != "" {
		return s.CoreSDKIssuer
	}
	return "https://licensing.coresdk.io"
}

// selfCheck parses a freshly signed file with the verifier, trusting only its signer
// (bound to the product it signs for, as the released key set binds it).
func selfCheck(file []byte, signer signing.Signer, product string) (*verify.License, error) {
	jwk, err := signing.JWKOf(signer.Public(), signer.Algorithm(), signer.Purposes(), product)
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

// Summary is the safe summary of a license: scalar metadata, feature names and limit
// numbers only (the seed's list); never payload bytes or the signature.
func Summary(l *verify.License, issuer string) map[string]any {
	m := map[string]any{
		"license_id": l.LicenseID, "customer_id": l.CustomerID, "product": l.Product, "sku": l.SKU,
		"key_id": l.KeyID, "algorithm": l.Algorithm, "issuer": issuer, "issued_at": verify.FormatTime(l.IssuedAt),
		"expires_at": verify.FormatTime(l.ExpiresAt), "features": l.Features, "limits": l.Limits,
		"grace_period_seconds": int64(l.GracePeriod.Seconds()),
	}
	if l.Form == templates.FormEnvelope {
		m["customer_name"], m["template_version"] = l.CustomerName, l.TemplateVersion
	} else {
		m["plan"] = l.Plan
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
