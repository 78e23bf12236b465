package staffweb

import (
	"errors"
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

// licenseListFilters are the query parameters of the license list that narrow it
// (kept by its sort links, pages and CSV).
var licenseListFilters = []string{"q", "status", "product", "sku", "expiring", "customer"}

// licenseQuery reads the license list's search, filters, sort and cursor; refused
// values are field messages (the list is shown again with them).
func (s *Handler) licenseQuery(c echo.Context) (entitlements.LicenseQuery, ui.ListNav, map[string]string) {
	nav := ui.ListNav{Path: "/staff/licenses", Filters: url.Values{}}
	for _, k := range licenseListFilters {
		if v := strings.TrimSpace(c.QueryParam(k)); v != "" {
			nav.Filters.Set(k, v)
		}
	}
	f := nav.Filters
	q := entitlements.LicenseQuery{Text: f.Get("q"), CustomerID: f.Get("customer"), Product: f.Get("product"), SKU: f.Get("sku"),
		Status: f.Get("status"), After: c.QueryParam("after")}
	errs := map[string]string{}
	def := entitlements.Sort{Key: "issued", Desc: true}
	if x := f.Get("expiring"); x != "" {
		days, err := strconv.Atoi(x)
		if err != nil || days < 1 || days > 3650 {
			errs["expiring"] = "a whole number of days from 1 to 3650"
		} else {
			q.ExpiringBefore = s.now().Add(time.Duration(days) * 24 * time.Hour)
			def = entitlements.Sort{Key: "expires"} // soonest first
		}
	}
	sort, err := entitlements.ParseSort(c.QueryParam("sort"), entitlements.LicenseSorts, def)
	fieldErrors(err, errs)
	q.Sort, nav.Sort = sort, sort.Param()
	fieldErrors(q.Validate(), errs)
	if len(errs) > 0 {
		q.After = "" // a refused search shows its first page
	}
	return q, nav, errs
}

// fieldErrors adds a validation error's field messages to errs.
func fieldErrors(err error, errs map[string]string) {
	var de *entitlements.Error
	if errors.As(err, &de) {
		for k, m := range de.Fields {
			errs[k] = m
		}
	}
}

// listLicenses searches licenses (customer name, contract reference, license,
// entitlement or customer ID), filters them by status, product, SKU and expiry
// window, sorts by a column and pages with a keyset cursor. A whole license ID that
// exists opens that license.
func (s *Handler) listLicenses(c echo.Context) error {
	ctx, by := c.Request().Context(), httpx.Staff(c)
	q, nav, errs := s.licenseQuery(c)
	if entitlements.ValidID(entitlements.PrefixLicense, q.Text) {
		if _, err := s.Svc.GetLicense(ctx, q.Text, by); err == nil {
			return c.Redirect(http.StatusSeeOther, "/staff/licenses/"+q.Text)
		}
	}
	f := nav.Filters
	v := pages.LicenseList{Query: f.Get("q"), Status: f.Get("status"), Product: f.Get("product"), SKU: f.Get("sku"),
		Expiring: f.Get("expiring"), CustomerID: f.Get("customer"), Nav: nav, Errors: errs, Statuses: entitlements.LicenseStatuses,
		CSVURL: "/staff/licenses.csv"}
	if u := nav.URL(nav.Sort); strings.Contains(u, "?") {
		v.CSVURL += u[strings.Index(u, "?"):]
	}
	if len(errs) > 0 {
		return httpx.Render(c, http.StatusUnprocessableEntity, pages.Licenses(s.page(c, "Licenses"), v))
	}
	q.Limit = pageSize + 1
	list, err := s.Svc.SearchLicenses(ctx, q, by)
	if err != nil {
		return err
	}
	list, v.Page = ui.PageOf(list, pageSize, nav, q.After, func(l *entitlements.License) string { return l.ID })
	now := s.now()
	for _, l := range list {
		st := l.StateAt(now)
		v.Rows = append(v.Rows, pages.LicenseListRow{ID: l.ID, CustomerID: l.CustomerID, CustomerName: l.CustomerName, ContractRef: l.ContractRef,
			SKU: l.SKU, Version: ui.Itoa(l.TemplateVersion), Status: st.Status, StatusLabel: st.Label(), IssuedAt: ui.Date(l.IssuedAt),
			ExpiresAt: ui.Date(l.ExpiresAt), FileName: l.FileName})
	}
	v.Page.Shown = len(v.Rows)
	return httpx.Render(c, http.StatusOK, pages.Licenses(s.page(c, "Licenses"), v))
}
