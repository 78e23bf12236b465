package staffjson

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	"github.com/metrum/licensing/internal/staffapi"
	"github.com/metrum/licensing/verify"
)

// Routes lists the staff JSON API (staffapi). Bearer personal access tokens
// only: no cookies, so no CSRF; a credential in the URL is refused. Every action goes
// through the service layer with the token's staff member, where roles and
// maker-checker are enforced once for every path.
func (s *Handler) Routes(g *echo.Group) {
	g.POST(staffapi.Login, s.staffLogin)
	a := func(path string, h echo.HandlerFunc) { g.POST(path, h, s.requireStaffToken) }
	a(staffapi.WhoAmI, call(s, func(_ context.Context, by *entitlements.Staff, _ *staffapi.Empty) (*entitlements.Staff, error) {
		return by, nil
	}))
	s.staffCustomerCalls(a)
	s.staffEntitlementCalls(a)
	s.staffLicenseCalls(a)
	s.staffKeyCalls(a)
	s.staffAccountCalls(a)
}

type route = func(path string, h echo.HandlerFunc)

func (s *Handler) staffCustomerCalls(a route) {
	a(staffapi.CustomerCreate, call(s, func(ctx context.Context, by *entitlements.Staff, p *entitlements.Customer) (*entitlements.Customer, error) {
		c := &entitlements.Customer{Name: p.Name, Email: p.Email}
		return c, s.Svc.CreateCustomer(ctx, c, by)
	}))
	a(staffapi.CustomerUpdate, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.CustomerUpdateRequest) (*entitlements.Customer, error) {
		c, err := s.Svc.GetCustomer(ctx, p.ID, by)
		if err != nil {
			return nil, err
		}
		if p.Name != "" {
			c.Name = p.Name
		}
		if p.Email != "" {
			c.Email = p.Email
		}
		return c, s.Svc.UpdateCustomer(ctx, c, by)
	}))
	a(staffapi.CustomerGet, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) (*entitlements.Customer, error) {
		return s.Svc.GetCustomer(ctx, p.ID, by)
	}))
	a(staffapi.CustomerList, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.Page) ([]*entitlements.Customer, error) {
		return s.Svc.ListCustomers(ctx, p.Offset, clampLimit(p.Limit), by)
	}))
	a(staffapi.PortalInvite, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.PortalInviteRequest) (*entitlements.PortalUser, error) {
		if s.Portal == nil {
			return nil, entitlements.Errorf(entitlements.ENOTFOUND, "the portal is not served by this issuer")
		}
		return s.Portal.Invite(ctx, p.CustomerID, p.Email, p.Name, by)
	}))
	a(staffapi.PortalUsers, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) ([]*entitlements.PortalUser, error) {
		return s.Svc.ListPortalUsers(ctx, p.ID, by)
	}))
	a(staffapi.PortalDisable, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.PortalUserRequest) (*staffapi.Empty, error) {
		if s.Portal == nil {
			return nil, entitlements.Errorf(entitlements.ENOTFOUND, "the portal is not served by this issuer")
		}
		return &staffapi.Empty{}, s.Portal.SetPortalUserDisabled(ctx, p.CustomerID, p.ID, p.Disabled, by)
	}))
	a(staffapi.CustomerTokenNew, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.CustomerTokenRequest) (*staffapi.NewCustomerToken, error) {
		if s.Portal == nil {
			return nil, entitlements.Errorf(entitlements.ENOTFOUND, "the customer API is not served by this issuer")
		}
		tok, rec, err := s.Portal.StaffCreateToken(ctx, p.CustomerID, p.Name, p.Lifetime, by)
		return &staffapi.NewCustomerToken{Token: tok, Record: rec}, err
	}))
	a(staffapi.CustomerTokenList, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) ([]*entitlements.CustomerToken, error) {
		return s.Svc.ListCustomerTokens(ctx, p.ID, by)
	}))
	a(staffapi.CustomerTokenDrop, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.CustomerTokenRequest) (*staffapi.Empty, error) {
		if s.Portal == nil {
			return nil, entitlements.Errorf(entitlements.ENOTFOUND, "the customer API is not served by this issuer")
		}
		return &staffapi.Empty{}, s.Portal.StaffRevokeToken(ctx, p.CustomerID, p.ID, by)
	}))
	a(staffapi.CustomerDownloads, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) ([]*entitlements.Download, error) {
		return s.Svc.ListCustomerDownloads(ctx, p.ID, 500, by)
	}))
	a(staffapi.OrderQueue, call(s, func(ctx context.Context, by *entitlements.Staff, _ *staffapi.Empty) ([]*entitlements.Order, error) {
		return s.Svc.OrderQueue(ctx, 500, by)
	}))
	a(staffapi.OrderGet, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) (*entitlements.Order, error) {
		return s.Svc.GetOrder(ctx, p.ID, by)
	}))
	a(staffapi.OrderReview, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ReviewRequest) (*staffapi.Empty, error) {
		return &staffapi.Empty{}, s.Svc.ReviewOrder(ctx, p.ID, p.Note, by)
	}))
	a(staffapi.OrderFulfil, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.FulfilRequest) (*staffapi.Fulfilled, error) {
		if s.Shop == nil {
			return nil, errNoShop
		}
		res, err := s.Shop.FulfilByHand(ctx, p.ID, p.LicenseID, p.Note, by)
		if err != nil {
			return nil, err
		}
		return &staffapi.Fulfilled{Order: res.Order, License: res.License}, nil
	}))
	a(staffapi.OrderRefund, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ReviewRequest) (*entitlements.Order, error) {
		if s.Shop == nil {
			return nil, errNoShop
		}
		return s.Shop.RefundHeld(ctx, p.ID, p.Note, by)
	}))
	a(staffapi.OrderUnmatched, call(s, func(ctx context.Context, by *entitlements.Staff, _ *staffapi.Empty) ([]*entitlements.PendingPaymentEvent, error) {
		if s.Shop == nil {
			return nil, errNoShop
		}
		return s.Shop.Unmatched(ctx, 500, by)
	}))
}

var errNoShop = entitlements.Errorf(entitlements.ENOTFOUND, "self-service purchase is off on this issuer (no stripe.secret_key)")

func clampLimit(n int) int {
	if n <= 0 || n > 500 {
		return 50
	}
	return n
}

func (s *Handler) staffEntitlementCalls(a route) {
	a(staffapi.EntitlementCreate, call(s, func(ctx context.Context, by *entitlements.Staff, p *entitlements.EntitlementInput) (*entitlements.Entitlement, error) {
		p.OrderID = "" // only the purchase service opens policy-approved entitlements
		return s.Svc.CreateEntitlement(ctx, *p, by)
	}))
	a(staffapi.EntitlementApprove, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) (*entitlements.Entitlement, error) {
		return s.Svc.Approve(ctx, p.ID, by)
	}))
	a(staffapi.EntitlementReject, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.Reason) (*entitlements.Entitlement, error) {
		return s.Svc.Reject(ctx, p.ID, p.Reason, by)
	}))
	a(staffapi.EntitlementCancel, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.Reason) (*entitlements.Entitlement, error) {
		return s.Svc.Cancel(ctx, p.ID, p.Reason, by)
	}))
	a(staffapi.EntitlementGet, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) (*entitlements.Entitlement, error) {
		return s.Svc.GetEntitlement(ctx, p.ID, by)
	}))
	a(staffapi.EntitlementList, call(s, func(ctx context.Context, by *entitlements.Staff, p *entitlements.EntitlementFilter) ([]*entitlements.Entitlement, error) {
		p.Limit = clampLimit(p.Limit)
		return s.Svc.ListEntitlements(ctx, *p, by)
	}))
}

func (s *Handler) staffLicenseCalls(a route) {
	a(staffapi.LicenseIssue, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) (*staffapi.Issued, error) {
		l, tok, err := s.Svc.IssueWithToken(ctx, p.ID, by)
		return &staffapi.Issued{License: l, LeaseToken: tok}, err
	}))
	a(staffapi.LicenseDownload, s.licenseDownload)
	a(staffapi.LicenseIssueAll, s.issueAllApproved)
	a(staffapi.LicenseRenewAll, s.renewExpiring)
	a(staffapi.JobGet, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) (*entitlements.BulkJob, error) {
		return s.Svc.Job(ctx, p.ID, by)
	}))
	a(staffapi.LicenseGet, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) (*entitlements.License, error) {
		return s.Svc.GetLicense(ctx, p.ID, by)
	}))
	a(staffapi.LicenseList, call(s, func(ctx context.Context, by *entitlements.Staff, p *entitlements.LicenseFilter) ([]*entitlements.License, error) {
		return s.Svc.ListLicenses(ctx, *p, by)
	}))
	a(staffapi.LicenseSuccessor, call(s, func(ctx context.Context, by *entitlements.Staff, p *entitlements.SuccessorInput) (*entitlements.Entitlement, error) {
		p.OrderID = ""
		return s.Svc.CreateSuccessor(ctx, *p, by)
	}))
	a(staffapi.LicenseStatus, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.StatusRequest) (*staffapi.StatusResult, error) {
		res, err := s.Svc.ChangeStatusWith(ctx, entitlements.StatusChange{LicenseID: p.LicenseID, Action: p.Action, Reason: p.Reason,
			EffectiveAt: p.EffectiveAt, Only: p.Only}, by)
		if err != nil {
			return nil, err
		}
		return &staffapi.StatusResult{License: res.License, Chained: res.Chained}, nil
	}))
	a(staffapi.LicenseChain, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.StatusRequest) (*staffapi.StatusResult, error) {
		l, chain, err := s.Svc.StatusChainPreview(ctx, p.LicenseID, p.Action, by)
		if err != nil {
			return nil, err
		}
		return &staffapi.StatusResult{License: l, Chained: chain}, nil
	}))
	a(staffapi.LicenseRestore, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.RestoreRequest) (*entitlements.License, error) {
		return s.Svc.RestorePrevious(ctx, p.SuccessorID, p.Reason, by)
	}))
	a(staffapi.LicenseLeaseToken, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) (*staffapi.Token, error) {
		tok, err := s.Svc.RotateLeaseToken(ctx, p.ID, by)
		return &staffapi.Token{Token: tok}, err
	}))
	a(staffapi.BundlePublish, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.BundleRequest) (*entitlements.Bundle, error) {
		return s.Svc.PublishBundle(ctx, p.Product, by)
	}))
	a(staffapi.BundleGet, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.BundleRequest) (*entitlements.Bundle, error) {
		return s.Svc.GetBundle(ctx, p.Product, p.Sequence, by)
	}))
	a(staffapi.BundleList, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.BundleRequest) ([]*entitlements.Bundle, error) {
		return s.Svc.ListBundles(ctx, p.Product, p.Before, clampLimit(p.Limit), by)
	}))
	a(staffapi.LeaseSlots, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.LeaseRequest) ([]*entitlements.Lease, error) {
		return s.Svc.ListLeases(ctx, p.LicenseID, by)
	}))
	a(staffapi.LeaseHistory, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.LeaseRequest) ([]*entitlements.LeaseEvent, error) {
		return s.Svc.ListLeaseEvents(ctx, p.LicenseID, p.Before, clampLimit(p.Limit), by)
	}))
	a(staffapi.AuditList, call(s, func(ctx context.Context, by *entitlements.Staff, p *entitlements.AuditFilter) ([]*entitlements.AuditEvent, error) {
		p.Limit = clampLimit(p.Limit)
		return s.Svc.ListAudit(ctx, *p, by)
	}))
}

func (s *Handler) staffKeyCalls(a route) {
	a(staffapi.KeyGenerate, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.KeyGenerateRequest) (*entitlements.KeyRecord, error) {
		return s.Svc.GenerateKey(ctx, p.Input, p.Activate, by)
	}))
	a(staffapi.KeyRotate, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.KeyRotateRequest) (*staffapi.Rotated, error) {
		next, prev, err := s.Svc.RotateKey(ctx, p.Product, verify.Purpose(p.Purpose), by)
		return &staffapi.Rotated{Next: next, Prev: prev}, err
	}))
	a(staffapi.KeyActivate, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) (*staffapi.Empty, error) {
		return &staffapi.Empty{}, s.Svc.ActivateKey(ctx, p.ID, by)
	}))
	a(staffapi.KeyRetire, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.Reason) (*staffapi.Empty, error) {
		return &staffapi.Empty{}, s.Svc.RetireKey(ctx, p.ID, p.Reason, by)
	}))
	a(staffapi.KeyNotAfter, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.KeyNotAfterRequest) (*staffapi.Empty, error) {
		return &staffapi.Empty{}, s.Svc.SetKeyNotAfter(ctx, p.KID, p.At, by)
	}))
	a(staffapi.KeyGet, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) (*entitlements.KeyRecord, error) {
		return s.Svc.GetKey(ctx, p.ID, by)
	}))
	a(staffapi.KeyList, call(s, func(ctx context.Context, by *entitlements.Staff, _ *staffapi.Empty) ([]*entitlements.KeyRecord, error) {
		return s.Svc.ListKeys(ctx, by)
	}))
	a(staffapi.KeySet, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.KeySetRequest) (*staffapi.KeySetAnswer, error) {
		ks, err := s.Svc.ProductKeySet(ctx, p.Product)
		return &staffapi.KeySetAnswer{KeySet: ks}, err
	}))
}

func (s *Handler) staffAccountCalls(a route) {
	a(staffapi.StaffCreate, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.StaffCreateRequest) (*entitlements.Staff, error) {
		st := &entitlements.Staff{Email: p.Email, Name: p.Name, Role: entitlements.Role(p.Role)}
		return st, s.Svc.CreateStaff(ctx, st, p.Password, by)
	}))
	a(staffapi.TokenCreate, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.TokenRequest) (*staffapi.NewToken, error) {
		tok, rec, err := s.Svc.CreateStaffToken(ctx, p.Name, p.Lifetime, by)
		return &staffapi.NewToken{Token: tok, Record: rec}, err
	}))
	a(staffapi.TokenList, call(s, func(ctx context.Context, by *entitlements.Staff, _ *staffapi.Empty) ([]*entitlements.StaffToken, error) {
		return s.Svc.ListStaffTokens(ctx, by)
	}))
	a(staffapi.TokenRevoke, call(s, func(ctx context.Context, by *entitlements.Staff, p *staffapi.ID) (*staffapi.Empty, error) {
		return &staffapi.Empty{}, s.Svc.RevokeStaffToken(ctx, p.ID, by)
	}))
}

// licenseDownload gives staff one of a license's files and records the delivery
// (with the client's address), as the console's download does.
func (s *Handler) licenseDownload(c echo.Context) error {
	var p staffapi.DownloadRequest
	if err := decodeStaffBody(c, &p); err != nil {
		return err
	}
	f, err := s.Svc.StaffDownload(c.Request().Context(), p.ID, p.What, c.RealIP(), httpx.Staff(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, f)
}
