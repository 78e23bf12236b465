package issuance

import (
	"context"
	"sync/atomic"

	"github.com/metrum/licensing/internal/entitlements"
)

// Reads of the console and the staff API. Reads are authorized like writes
// (entitlements.NeedRead for most; the staff list and the audit chain's verification
// need an admin).

// GetLicense returns a license with its exact file bytes and summary.
func (s *Service) GetLicense(ctx context.Context, id string, by *entitlements.Staff) (*entitlements.License, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading a license"); err != nil {
		return nil, err
	}
	if !entitlements.ValidID(entitlements.PrefixLicense, id) {
		return nil, entitlements.NotFound("license", id)
	}
	return s.store.GetLicense(ctx, id)
}

// ListLicenses pages licenses by the filter.
func (s *Service) ListLicenses(ctx context.Context, f entitlements.LicenseFilter, by *entitlements.Staff) ([]*entitlements.License, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "listing licenses"); err != nil {
		return nil, err
	}
	return s.store.ListLicenses(ctx, f)
}

// LicenseOfEntitlement returns the license issued from an entitlement.
func (s *Service) LicenseOfEntitlement(ctx context.Context, entitlementID string, by *entitlements.Staff) (*entitlements.License, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading a license"); err != nil {
		return nil, err
	}
	return s.store.LicenseOfEntitlement(ctx, entitlementID)
}

// GetCustomer returns a customer.
func (s *Service) GetCustomer(ctx context.Context, id string, by *entitlements.Staff) (*entitlements.Customer, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading a customer"); err != nil {
		return nil, err
	}
	if !entitlements.ValidID(entitlements.PrefixCustomer, id) {
		return nil, entitlements.NotFound("customer", id)
	}
	return s.store.GetCustomer(ctx, id)
}

// ListCustomers pages customers by offset (the staff API).
func (s *Service) ListCustomers(ctx context.Context, offset, limit int, by *entitlements.Staff) ([]*entitlements.Customer, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "listing customers"); err != nil {
		return nil, err
	}
	return s.store.ListCustomers(ctx, offset, limit)
}

// SearchCustomers pages customers matching a search (name, email, contract
// reference, or a customer, license or entitlement ID), in its sort.
func (s *Service) SearchCustomers(ctx context.Context, q entitlements.CustomerQuery, by *entitlements.Staff) ([]*entitlements.Customer, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "searching customers"); err != nil {
		return nil, err
	}
	return s.store.SearchCustomers(ctx, q)
}

// SearchLicenses pages the license list by a search (customer name, contract
// reference, a license, entitlement or customer ID), filters and a sort; statuses are
// read at the service's clock.
func (s *Service) SearchLicenses(ctx context.Context, q entitlements.LicenseQuery, by *entitlements.Staff) ([]*entitlements.License, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "listing licenses"); err != nil {
		return nil, err
	}
	q.Now = s.now()
	return s.store.SearchLicenses(ctx, q)
}

// OpenSuccessor returns a license's open renewal, replacement or top-up (ENOTFOUND:
// none).
func (s *Service) OpenSuccessor(ctx context.Context, licenseID string, by *entitlements.Staff) (*entitlements.Entitlement, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading an entitlement"); err != nil {
		return nil, err
	}
	return s.store.OpenSuccessor(ctx, licenseID)
}

// GetEntitlement returns an entitlement.
func (s *Service) GetEntitlement(ctx context.Context, id string, by *entitlements.Staff) (*entitlements.Entitlement, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading an entitlement"); err != nil {
		return nil, err
	}
	if !entitlements.ValidID(entitlements.PrefixEntitlement, id) {
		return nil, entitlements.NotFound("entitlement", id)
	}
	return s.store.GetEntitlement(ctx, id)
}

// ListEntitlements pages entitlements by the filter.
func (s *Service) ListEntitlements(ctx context.Context, f entitlements.EntitlementFilter, by *entitlements.Staff) ([]*entitlements.Entitlement, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "listing entitlements"); err != nil {
		return nil, err
	}
	return s.store.ListEntitlements(ctx, f)
}

// GetKey returns a signing key's public part and metadata.
func (s *Service) GetKey(ctx context.Context, kid string, by *entitlements.Staff) (*entitlements.KeyRecord, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading a key"); err != nil {
		return nil, err
	}
	return s.store.GetKey(ctx, kid)
}

// ListKeys returns every recorded key.
func (s *Service) ListKeys(ctx context.Context, by *entitlements.Staff) ([]*entitlements.KeyRecord, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "listing keys"); err != nil {
		return nil, err
	}
	return s.store.ListKeys(ctx)
}

// GetBundle returns a published bundle (sequence 0: the product's latest) for staff.
func (s *Service) GetBundle(ctx context.Context, product string, sequence int64, by *entitlements.Staff) (*entitlements.Bundle, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading a bundle"); err != nil {
		return nil, err
	}
	return s.PublicBundle(ctx, product, sequence)
}

// PublicBundle returns a published bundle (sequence 0: the latest) to anyone:
// bundles are public (docs/lifecycle.md).
func (s *Service) PublicBundle(ctx context.Context, product string, sequence int64) (*entitlements.Bundle, error) {
	if !entitlements.ValidProduct(product) {
		return nil, entitlements.NotFound("revocation bundle for", "that product")
	}
	return s.store.GetBundle(ctx, product, sequence)
}

// ListBundles pages a product's bundles ("" = all), newest first.
func (s *Service) ListBundles(ctx context.Context, product string, before int64, limit int, by *entitlements.Staff) ([]*entitlements.Bundle, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "listing bundles"); err != nil {
		return nil, err
	}
	return s.store.ListBundles(ctx, product, before, limit)
}

// LatestBundles returns each product's newest bundle.
func (s *Service) LatestBundles(ctx context.Context, by *entitlements.Staff) ([]*entitlements.Bundle, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "listing bundles"); err != nil {
		return nil, err
	}
	return s.store.LatestBundles(ctx)
}

// ListAudit pages the audit trail, newest first.
func (s *Service) ListAudit(ctx context.Context, f entitlements.AuditFilter, by *entitlements.Staff) ([]*entitlements.AuditEvent, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading the audit trail"); err != nil {
		return nil, err
	}
	return s.store.ListAudit(ctx, f)
}

// auditRuns lets one audit chain verification run at a time on a replica: it walks
// the whole table.
type auditRuns struct{ busy atomic.Bool }

// VerifyAudit walks the whole audit chain (admins; one at a time per replica).
func (s *Service) VerifyAudit(ctx context.Context, progress func(n int64), by *entitlements.Staff) (*entitlements.ChainReport, error) {
	if err := entitlements.Require(by, entitlements.NeedAdmin, "verifying the audit chain"); err != nil {
		return nil, err
	}
	if !s.audits.busy.CompareAndSwap(false, true) {
		return nil, entitlements.Errorf(entitlements.ECONFLICT, "the audit chain is being verified already: wait for that run to finish")
	}
	defer s.audits.busy.Store(false)
	return s.store.VerifyAudit(ctx, progress)
}

// ListLeases returns a license's lease slots.
func (s *Service) ListLeases(ctx context.Context, licenseID string, by *entitlements.Staff) ([]*entitlements.Lease, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading lease slots"); err != nil {
		return nil, err
	}
	return s.store.ListLeases(ctx, licenseID)
}

// ListLeaseEvents pages a license's lease history.
func (s *Service) ListLeaseEvents(ctx context.Context, licenseID string, before int64, limit int, by *entitlements.Staff) ([]*entitlements.LeaseEvent, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading lease history"); err != nil {
		return nil, err
	}
	return s.store.ListLeaseEvents(ctx, licenseID, before, limit)
}

// ListDownloads returns a license's delivery record, newest first; before > 0 pages
// (the deliveries older than that one).
func (s *Service) ListDownloads(ctx context.Context, licenseID string, before int64, limit int, by *entitlements.Staff) ([]*entitlements.Download, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading deliveries"); err != nil {
		return nil, err
	}
	return s.store.ListDownloads(ctx, licenseID, before, limit)
}

// ListCustomerDownloads returns every delivery to a customer (license files, bundles,
// the verifier release), newest first.
func (s *Service) ListCustomerDownloads(ctx context.Context, customerID string, limit int, by *entitlements.Staff) ([]*entitlements.Download, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading a customer's downloads"); err != nil {
		return nil, err
	}
	return s.store.CustomerDownloads(ctx, customerID, limit)
}

// StaffDownload returns one of a license's files for staff (the exact signed bytes,
// the safe summary, the checklist) and records the delivery first.
func (s *Service) StaffDownload(ctx context.Context, licenseID, what, addr string, by *entitlements.Staff) (*entitlements.File, error) {
	l, err := s.GetLicense(ctx, licenseID, by)
	if err != nil {
		return nil, err
	}
	f, err := DeliveryFile(l, what)
	if err != nil {
		return nil, err
	}
	if err := s.store.RecordDownload(ctx, &entitlements.Download{CustomerID: l.CustomerID, LicenseID: l.ID, Product: l.Product,
		What: what, ActorKind: entitlements.PrincipalStaff, Actor: by.Email, ClientAddr: addr}); err != nil {
		return nil, err
	}
	return f, nil
}

// ListPortalUsers returns a customer's portal users.
func (s *Service) ListPortalUsers(ctx context.Context, customerID string, by *entitlements.Staff) ([]*entitlements.PortalUser, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "listing portal users"); err != nil {
		return nil, err
	}
	return s.store.ListPortalUsers(ctx, customerID)
}

// ListCustomerTokens returns a customer's API token records (never the tokens).
func (s *Service) ListCustomerTokens(ctx context.Context, customerID string, by *entitlements.Staff) ([]*entitlements.CustomerToken, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "listing customer tokens"); err != nil {
		return nil, err
	}
	return s.store.ListCustomerTokens(ctx, customerID)
}

// ListStaffTokens returns the acting staff member's own personal access tokens.
func (s *Service) ListStaffTokens(ctx context.Context, by *entitlements.Staff) ([]*entitlements.StaffToken, error) {
	if err := entitlements.Require(by, entitlements.NeedOwnAccount, "listing your tokens"); err != nil {
		return nil, err
	}
	return s.store.ListStaffTokens(ctx, by.ID)
}

// ListStaff returns every staff account (admins).
func (s *Service) ListStaff(ctx context.Context, by *entitlements.Staff) ([]*entitlements.StaffAccount, error) {
	if err := entitlements.Require(by, entitlements.NeedAdmin, "listing staff accounts"); err != nil {
		return nil, err
	}
	return s.store.ListStaff(ctx)
}

// GetOrder returns a self-service order.
func (s *Service) GetOrder(ctx context.Context, id string, by *entitlements.Staff) (*entitlements.Order, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading an order"); err != nil {
		return nil, err
	}
	return s.store.GetOrder(ctx, id)
}

// OrderQueue returns the orders waiting for staff review.
func (s *Service) OrderQueue(ctx context.Context, limit int, by *entitlements.Staff) ([]*entitlements.Order, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading the order queue"); err != nil {
		return nil, err
	}
	return s.store.ReviewQueue(ctx, limit)
}

// Ping says whether the database answers (readiness).
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// DashboardCounts are the dashboard's plots' numbers.
type DashboardCounts struct {
	// ExpiriesPerWeek: active licenses by the week they expire (next weeks).
	ExpiriesPerWeek []entitlements.Bucket
	// IssuedPerWeek: licenses by the week they were issued (last weeks).
	IssuedPerWeek []entitlements.Bucket
	// Lease grants and refusals per closed hour (last hours).
	LeaseGrants, LeaseRefusals []entitlements.Bucket
}

// DashboardCounts reads the dashboard's plots.
func (s *Service) DashboardCounts(ctx context.Context, weeks, hours int, by *entitlements.Staff) (*DashboardCounts, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading the dashboard"); err != nil {
		return nil, err
	}
	var d DashboardCounts
	var err error
	if d.ExpiriesPerWeek, err = s.store.ExpiriesPerWeek(ctx, weeks); err != nil {
		return nil, err
	}
	if d.IssuedPerWeek, err = s.store.IssuedPerWeek(ctx, weeks); err != nil {
		return nil, err
	}
	if d.LeaseGrants, d.LeaseRefusals, err = s.store.LeaseOutcomesPerHour(ctx, hours); err != nil {
		return nil, err
	}
	return &d, nil
}

// CountDrafts counts the entitlements waiting for approval.
func (s *Service) CountDrafts(ctx context.Context, by *entitlements.Staff) (int64, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading the approval queue"); err != nil {
		return 0, err
	}
	return s.store.CountDrafts(ctx)
}

// ChangeVersion is the ID of the newest audit event: every change of a license,
// entitlement or key appends one, so a cache of what those hold is current while it
// is unchanged.
func (s *Service) ChangeVersion(ctx context.Context, by *entitlements.Staff) (int64, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading the dashboard"); err != nil {
		return 0, err
	}
	return s.store.LastAuditID(ctx)
}
