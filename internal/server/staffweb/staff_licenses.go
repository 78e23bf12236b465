package staffweb

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/staff"
	"github.com/metrum/licensing/web/ui"
)

const pageSize = 50

// listLicenses filters by status, product, SKU and expiry window (active licenses
// ending within N days, soonest first), finds one by ID, and pages with a cursor.
func (s *Handler) listLicenses(c echo.Context) error {
	q := strings.TrimSpace(c.QueryParam("q"))
	if q != "" {
		if _, err := s.Svc.GetLicense(c.Request().Context(), q, httpx.Staff(c)); err == nil {
			return c.Redirect(http.StatusSeeOther, "/staff/licenses/"+q)
		}
	}
	f := entitlements.LicenseFilter{Status: c.QueryParam("status"), CustomerID: c.QueryParam("customer"), Product: c.QueryParam("product"),
		SKU: c.QueryParam("sku"), Limit: pageSize}
	days, _ := strconv.Atoi(c.QueryParam("expiring"))
	if days > 0 {
		f.ExpiringBefore = s.now().Add(time.Duration(days) * 24 * time.Hour)
	}
	if after := c.QueryParam("after"); after != "" {
		ts, id, ok := strings.Cut(after, "~")
		nanos, err := strconv.ParseInt(ts, 10, 64)
		if !ok || err != nil || !entitlements.ValidID(entitlements.PrefixLicense, id) {
			return entitlements.Errorf(entitlements.EINVALID, "bad page cursor")
		}
		f.AfterIssuedAt, f.AfterID = time.Unix(0, nanos), id
	}
	list, err := s.Svc.ListLicenses(c.Request().Context(), f, httpx.Staff(c))
	if err != nil {
		return err
	}
	page := pages.LicenseList{Licenses: list, Status: f.Status, Product: f.Product, SKU: f.SKU, Expiring: c.QueryParam("expiring"), Query: q}
	if q != "" {
		page.NotFound = q
	}
	if len(list) == pageSize && days == 0 {
		last := list[len(list)-1]
		v := url.Values{"after": {strconv.FormatInt(last.IssuedAt.UnixNano(), 10) + "~" + last.ID}}
		for _, k := range []string{"status", "customer", "product", "sku"} {
			if x := c.QueryParam(k); x != "" {
				v.Set(k, x)
			}
		}
		page.NextURL = "/staff/licenses?" + v.Encode()
	}
	return httpx.Render(c, http.StatusOK, pages.Licenses(s.page(c, "Licenses"), page))
}

// downloadLicense serves a license's exact stored bytes (file), its safe summary or
// its operator checklist, recorded as a delivery by staff first.
func (s *Handler) downloadLicense(c echo.Context) error {
	f, err := s.Svc.StaffDownload(c.Request().Context(), c.Param("id"), c.Param("what"), c.RealIP(), httpx.Staff(c))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return httpx.SendBrowserFile(c, f)
}

func (s *Handler) staffLicense(c echo.Context) error {
	ctx := c.Request().Context()
	l, err := s.Svc.GetLicense(ctx, c.Param("id"), httpx.Staff(c))
	if err != nil {
		return err
	}
	now := s.now()
	v := pages.StaffLicense{License: l, Status: entitlements.CustomerStatus(l, now), Limits: ui.LicenseRowOf(l, now).Limits, Lease: l.Terms.LeaseTTLSeconds > 0}
	if l.Supersedes != "" {
		if prev, err := s.Svc.GetLicense(ctx, l.Supersedes, httpx.Staff(c)); err == nil {
			v.CanRestorePrevious = entitlements.CanRestorePrevious(l, prev, now, httpx.Staff(c), "?") == nil
		}
	}
	if v.Downloads, err = s.Svc.ListDownloads(ctx, l.ID, 200, httpx.Staff(c)); err != nil {
		return err
	}
	if v.Lease {
		slots, err := s.Svc.ListLeases(ctx, l.ID, httpx.Staff(c))
		if err != nil {
			return err
		}
		for _, sl := range slots {
			r := ui.LeaseRowOf(sl, now)
			v.Leases = append(v.Leases, pages.StaffLease{LeaseID: r.LeaseID, Fingerprint: r.Fingerprint, RenewedAt: r.RenewedAt, ExpiresAt: r.ExpiresAt, State: r.State})
		}
		events, err := s.Svc.ListLeaseEvents(ctx, l.ID, 0, 50, httpx.Staff(c))
		if err != nil {
			return err
		}
		for _, ev := range events {
			v.History = append(v.History, pages.StaffLeaseEvent{At: ui.Day(ev.At), Fingerprint: ev.Fingerprint, Outcome: ev.Outcome, Reason: ev.Reason})
		}
	}
	return httpx.Render(c, http.StatusOK, pages.StaffLicenseDetail(s.page(c, l.ID), v))
}
