package main

import (
	"context"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/staffapi"
	"github.com/metrum/licensing/internal/staffclient"
)

// remote is what the CLI's record commands act through: the issuer's staff API, as
// the staff member its token belongs to. The CLI holds no database URL, no KEK and no
// PIN; the running issuer enforces roles and maker-checker for every call.
type remote struct{ c *staffclient.Client }

func do[R any](ctx context.Context, r remote, path string, req any) (R, error) {
	var out R
	err := r.c.Do(ctx, path, req, &out)
	return out, err
}

func (r remote) WhoAmI(ctx context.Context) (*entitlements.Staff, error) {
	return do[*entitlements.Staff](ctx, r, staffapi.WhoAmI, staffapi.Empty{})
}

func (r remote) CreateCustomer(ctx context.Context, c *entitlements.Customer) error {
	out, err := do[*entitlements.Customer](ctx, r, staffapi.CustomerCreate, c)
	if err == nil {
		*c = *out
	}
	return err
}

func (r remote) UpdateCustomer(ctx context.Context, id, name, email string) (*entitlements.Customer, error) {
	return do[*entitlements.Customer](ctx, r, staffapi.CustomerUpdate, staffapi.CustomerUpdateRequest{ID: id, Name: name, Email: email})
}

func (r remote) ListCustomers(ctx context.Context, offset, limit int) ([]*entitlements.Customer, error) {
	return do[[]*entitlements.Customer](ctx, r, staffapi.CustomerList, staffapi.Page{Offset: offset, Limit: limit})
}

func (r remote) CreateEntitlement(ctx context.Context, in entitlements.EntitlementInput) (*entitlements.Entitlement, error) {
	return do[*entitlements.Entitlement](ctx, r, staffapi.EntitlementCreate, in)
}

func (r remote) Approve(ctx context.Context, id string) (*entitlements.Entitlement, error) {
	return do[*entitlements.Entitlement](ctx, r, staffapi.EntitlementApprove, staffapi.ID{ID: id})
}

func (r remote) Reject(ctx context.Context, id, reason string) (*entitlements.Entitlement, error) {
	return do[*entitlements.Entitlement](ctx, r, staffapi.EntitlementReject, staffapi.Reason{ID: id, Reason: reason})
}

func (r remote) Cancel(ctx context.Context, id, reason string) (*entitlements.Entitlement, error) {
	return do[*entitlements.Entitlement](ctx, r, staffapi.EntitlementCancel, staffapi.Reason{ID: id, Reason: reason})
}

func (r remote) GetEntitlement(ctx context.Context, id string) (*entitlements.Entitlement, error) {
	return do[*entitlements.Entitlement](ctx, r, staffapi.EntitlementGet, staffapi.ID{ID: id})
}

func (r remote) ListEntitlements(ctx context.Context, f entitlements.EntitlementFilter) ([]*entitlements.Entitlement, error) {
	return do[[]*entitlements.Entitlement](ctx, r, staffapi.EntitlementList, f)
}

func (r remote) IssueWithToken(ctx context.Context, entitlementID string) (*entitlements.License, string, error) {
	out, err := do[*staffapi.Issued](ctx, r, staffapi.LicenseIssue, staffapi.ID{ID: entitlementID})
	if err != nil {
		return nil, "", err
	}
	return out.License, out.LeaseToken, nil
}

// Download fetches a license's file through the staff API, which records the
// delivery.
func (r remote) Download(ctx context.Context, id, what string) (*entitlements.File, error) {
	return do[*entitlements.File](ctx, r, staffapi.LicenseDownload, staffapi.DownloadRequest{ID: id, What: what})
}

func (r remote) GetLicense(ctx context.Context, id string) (*entitlements.License, error) {
	return do[*entitlements.License](ctx, r, staffapi.LicenseGet, staffapi.ID{ID: id})
}

func (r remote) ListLicenses(ctx context.Context, f entitlements.LicenseFilter) ([]*entitlements.License, error) {
	return do[[]*entitlements.License](ctx, r, staffapi.LicenseList, f)
}

func (r remote) CreateSuccessor(ctx context.Context, in entitlements.SuccessorInput) (*entitlements.Entitlement, error) {
	return do[*entitlements.Entitlement](ctx, r, staffapi.LicenseSuccessor, in)
}

func (r remote) ChangeStatus(ctx context.Context, req staffapi.StatusRequest) (*staffapi.StatusResult, error) {
	return do[*staffapi.StatusResult](ctx, r, staffapi.LicenseStatus, req)
}

func (r remote) StatusPreview(ctx context.Context, licenseID, action string) (*staffapi.StatusResult, error) {
	return do[*staffapi.StatusResult](ctx, r, staffapi.LicenseChain, staffapi.StatusRequest{LicenseID: licenseID, Action: action})
}

func (r remote) RestorePrevious(ctx context.Context, successorID, reason string) (*entitlements.License, error) {
	return do[*entitlements.License](ctx, r, staffapi.LicenseRestore, staffapi.RestoreRequest{SuccessorID: successorID, Reason: reason})
}

func (r remote) RotateLeaseToken(ctx context.Context, licenseID string) (string, error) {
	out, err := do[*staffapi.Token](ctx, r, staffapi.LicenseLeaseToken, staffapi.ID{ID: licenseID})
	if err != nil {
		return "", err
	}
	return out.Token, nil
}

func (r remote) PublishBundle(ctx context.Context, product string) (*entitlements.Bundle, error) {
	return do[*entitlements.Bundle](ctx, r, staffapi.BundlePublish, staffapi.BundleRequest{Product: product})
}

func (r remote) GetBundle(ctx context.Context, product string, sequence int64) (*entitlements.Bundle, error) {
	return do[*entitlements.Bundle](ctx, r, staffapi.BundleGet, staffapi.BundleRequest{Product: product, Sequence: sequence})
}

func (r remote) ListBundles(ctx context.Context, product string, before int64, limit int) ([]*entitlements.Bundle, error) {
	return do[[]*entitlements.Bundle](ctx, r, staffapi.BundleList, staffapi.BundleRequest{Product: product, Before: before, Limit: limit})
}

func (r remote) ListLeases(ctx context.Context, licenseID string) ([]*entitlements.Lease, error) {
	return do[[]*entitlements.Lease](ctx, r, staffapi.LeaseSlots, staffapi.LeaseRequest{LicenseID: licenseID})
}

func (r remote) ListLeaseEvents(ctx context.Context, licenseID string, before int64, limit int) ([]*entitlements.LeaseEvent, error) {
	return do[[]*entitlements.LeaseEvent](ctx, r, staffapi.LeaseHistory, staffapi.LeaseRequest{LicenseID: licenseID, Before: before, Limit: limit})
}

func (r remote) ListAudit(ctx context.Context, f entitlements.AuditFilter) ([]*entitlements.AuditEvent, error) {
	return do[[]*entitlements.AuditEvent](ctx, r, staffapi.AuditList, f)
}

func (r remote) GenerateKey(ctx context.Context, in entitlements.KeyInput, activate bool) (*entitlements.KeyRecord, error) {
	return do[*entitlements.KeyRecord](ctx, r, staffapi.KeyGenerate, staffapi.KeyGenerateRequest{Input: in, Activate: activate})
}

func (r remote) RotateKey(ctx context.Context, product, purpose string) (string, string, error) {
	out, err := do[*staffapi.Rotated](ctx, r, staffapi.KeyRotate, staffapi.KeyRotateRequest{Product: product, Purpose: purpose})
	if err != nil {
		return "", "", err
	}
	return out.Next, out.Prev, nil
}

func (r remote) ActivateKey(ctx context.Context, kid string) error {
	_, err := do[*staffapi.Empty](ctx, r, staffapi.KeyActivate, staffapi.ID{ID: kid})
	return err
}

func (r remote) RetireKey(ctx context.Context, kid, reason string) error {
	_, err := do[*staffapi.Empty](ctx, r, staffapi.KeyRetire, staffapi.Reason{ID: kid, Reason: reason})
	return err
}

func (r remote) SetKeyNotAfter(ctx context.Context, kid string, at time.Time) error {
	_, err := do[*staffapi.Empty](ctx, r, staffapi.KeyNotAfter, staffapi.KeyNotAfterRequest{KID: kid, At: at})
	return err
}

func (r remote) GetKey(ctx context.Context, kid string) (*entitlements.KeyRecord, error) {
	return do[*entitlements.KeyRecord](ctx, r, staffapi.KeyGet, staffapi.ID{ID: kid})
}

func (r remote) ListKeys(ctx context.Context) ([]*entitlements.KeyRecord, error) {
	return do[[]*entitlements.KeyRecord](ctx, r, staffapi.KeyList, staffapi.Empty{})
}

func (r remote) PublicKeySet(ctx context.Context, product string) ([]byte, error) {
	out, err := do[*staffapi.KeySetAnswer](ctx, r, staffapi.KeySet, staffapi.KeySetRequest{Product: product})
	if err != nil {
		return nil, err
	}
	return out.KeySet, nil
}

func (r remote) CreateStaff(ctx context.Context, email, name, role, password string) (*entitlements.Staff, error) {
	return do[*entitlements.Staff](ctx, r, staffapi.StaffCreate, staffapi.StaffCreateRequest{Email: email, Name: name, Role: role, Password: password})
}

func (r remote) CreateStaffToken(ctx context.Context, name string, lifetime time.Duration) (*staffapi.NewToken, error) {
	return do[*staffapi.NewToken](ctx, r, staffapi.TokenCreate, staffapi.TokenRequest{Name: name, Lifetime: lifetime})
}

func (r remote) ListStaffTokens(ctx context.Context) ([]*entitlements.StaffToken, error) {
	return do[[]*entitlements.StaffToken](ctx, r, staffapi.TokenList, staffapi.Empty{})
}

func (r remote) RevokeStaffToken(ctx context.Context, id string) error {
	_, err := do[*staffapi.Empty](ctx, r, staffapi.TokenRevoke, staffapi.ID{ID: id})
	return err
}

func (r remote) Invite(ctx context.Context, customerID, email, name string) (*entitlements.PortalUser, error) {
	return do[*entitlements.PortalUser](ctx, r, staffapi.PortalInvite, staffapi.PortalInviteRequest{CustomerID: customerID, Email: email, Name: name})
}

func (r remote) ListPortalUsers(ctx context.Context, customerID string) ([]*entitlements.PortalUser, error) {
	return do[[]*entitlements.PortalUser](ctx, r, staffapi.PortalUsers, staffapi.ID{ID: customerID})
}

func (r remote) SetPortalUserDisabled(ctx context.Context, customerID string, id int64, disabled bool) error {
	_, err := do[*staffapi.Empty](ctx, r, staffapi.PortalDisable, staffapi.PortalUserRequest{CustomerID: customerID, ID: id, Disabled: disabled})
	return err
}

func (r remote) CreateCustomerToken(ctx context.Context, customerID, name string, lifetime time.Duration) (string, *entitlements.CustomerToken, error) {
	out, err := do[*staffapi.NewCustomerToken](ctx, r, staffapi.CustomerTokenNew, staffapi.CustomerTokenRequest{CustomerID: customerID, Name: name, Lifetime: lifetime})
	if err != nil {
		return "", nil, err
	}
	return out.Token, out.Record, nil
}

func (r remote) ListCustomerTokens(ctx context.Context, customerID string) ([]*entitlements.CustomerToken, error) {
	return do[[]*entitlements.CustomerToken](ctx, r, staffapi.CustomerTokenList, staffapi.ID{ID: customerID})
}

func (r remote) RevokeCustomerToken(ctx context.Context, customerID, id string) error {
	_, err := do[*staffapi.Empty](ctx, r, staffapi.CustomerTokenDrop, staffapi.CustomerTokenRequest{CustomerID: customerID, ID: id})
	return err
}

func (r remote) CustomerDownloads(ctx context.Context, customerID string) ([]*entitlements.Download, error) {
	return do[[]*entitlements.Download](ctx, r, staffapi.CustomerDownloads, staffapi.ID{ID: customerID})
}

func (r remote) ReviewQueue(ctx context.Context) ([]*entitlements.Order, error) {
	return do[[]*entitlements.Order](ctx, r, staffapi.OrderQueue, staffapi.Empty{})
}

func (r remote) GetOrder(ctx context.Context, id string) (*entitlements.Order, error) {
	return do[*entitlements.Order](ctx, r, staffapi.OrderGet, staffapi.ID{ID: id})
}

func (r remote) ReviewOrder(ctx context.Context, id, note string) error {
	_, err := do[*staffapi.Empty](ctx, r, staffapi.OrderReview, staffapi.ReviewRequest{ID: id, Note: note})
	return err
}

func (r remote) FulfilOrder(ctx context.Context, id, licenseID, note string) (*staffapi.Fulfilled, error) {
	return do[*staffapi.Fulfilled](ctx, r, staffapi.OrderFulfil, staffapi.FulfilRequest{ID: id, LicenseID: licenseID, Note: note})
}

func (r remote) RefundOrder(ctx context.Context, id, note string) (*entitlements.Order, error) {
	return do[*entitlements.Order](ctx, r, staffapi.OrderRefund, staffapi.ReviewRequest{ID: id, Note: note})
}

func (r remote) UnmatchedEvents(ctx context.Context) ([]*entitlements.PendingPaymentEvent, error) {
	return do[[]*entitlements.PendingPaymentEvent](ctx, r, staffapi.OrderUnmatched, staffapi.Empty{})
}

// IssueAll issues every approved entitlement on the server, in parallel batches,
// calling progress for each license as the server streams it.
func (r remote) IssueAll(ctx context.Context, progress func(staffapi.Progress)) (staffapi.Progress, error) {
	return r.c.Stream(ctx, staffapi.LicenseIssueAll, staffapi.IssueAllRequest{}, progress)
}

// Job reads a bulk job's results again.
func (r remote) Job(ctx context.Context, id string) (*entitlements.BulkJob, error) {
	return do[*entitlements.BulkJob](ctx, r, staffapi.JobGet, staffapi.ID{ID: id})
}

// RenewExpiring opens the renewals on the server, streaming progress.
func (r remote) RenewExpiring(ctx context.Context, product string, within time.Duration, progress func(staffapi.Progress)) (staffapi.Progress, error) {
	return r.c.Stream(ctx, staffapi.LicenseRenewAll, staffapi.RenewAllRequest{Product: product, Within: within}, progress)
}
