package server

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/web"
)

const pageSize = 50

func (s *Server) listLicenses(c echo.Context) error {
	f := entitlements.LicenseFilter{Status: c.QueryParam("status"), CustomerID: c.QueryParam("customer"), Limit: pageSize}
	if after := c.QueryParam("after"); after != "" {
		ts, id, ok := strings.Cut(after, "~")
		nanos, err := strconv.ParseInt(ts, 10, 64)
		if !ok || err != nil || !entitlements.ValidID(entitlements.PrefixLicense, id) {
			return entitlements.Errorf(entitlements.EINVALID, "bad page cursor")
		}
		f.AfterIssuedAt, f.AfterID = time.Unix(0, nanos), id
	}
	list, err := s.Store.ListLicenses(c.Request().Context(), f)
	if err != nil {
		return err
	}
	page := web.LicenseList{Licenses: list, Status: f.Status}
	if len(list) == pageSize {
		last := list[len(list)-1]
		q := url.Values{"after": {strconv.FormatInt(last.IssuedAt.UnixNano(), 10) + "~" + last.ID}}
		if f.Status != "" {
			q.Set("status", f.Status)
		}
		if f.CustomerID != "" {
			q.Set("customer", f.CustomerID)
		}
		page.NextURL = "/staff/licenses?" + q.Encode()
	}
	return Render(c, http.StatusOK, web.Licenses(s.page(c, "Licenses"), page))
}

// downloadLicense serves the exact stored bytes.
func (s *Server) downloadLicense(c echo.Context) error {
	l, err := s.Store.GetLicense(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Disposition", `attachment; filename="`+l.FileName+`"`)
	h.Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, l.ContentType, l.File)
}
