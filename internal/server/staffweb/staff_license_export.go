package staffweb

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	"github.com/metrum/licensing/verify"
)

// exportMax bounds one CSV export; exportPage is how many licenses each query reads.
const (
	exportMax  = 100_000
	exportPage = 1000
)

var exportHeader = []string{"license_id", "customer_name", "customer_id", "contract_ref", "entitlement_id", "product", "sku",
	"template_version", "status", "status_reason", "issued_at", "not_before", "expires_at", "supersedes", "superseded_by"}

// exportLicenses writes the license list with its search, filters and sort as CSV
// (RFC 4180: a header line, CRLF line ends, fields quoted where needed), every page
// of it, read a page at a time. Cells a spreadsheet would read as a formula are
// defused (safeCell).
func (s *Handler) exportLicenses(c echo.Context) error {
	ctx, by := c.Request().Context(), httpx.Staff(c)
	q, _, errs := s.licenseQuery(c)
	if len(errs) > 0 {
		return entitlements.Invalid(errs)
	}
	q.After, q.Limit = "", exportPage
	// The first page is read before anything is sent, so a refusal is still an error page.
	list, err := s.Svc.SearchLicenses(ctx, q, by)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8; header=present")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="licenses-`+s.now().UTC().Format("20060102-150405")+`.csv"`)
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	w.UseCRLF = true
	if err := w.Write(exportHeader); err != nil {
		return nil // the client went away
	}
	now, n := s.now(), 0
	for {
		for _, l := range list {
			st := l.StateAt(now)
			row := []string{l.ID, l.CustomerName, l.CustomerID, l.ContractRef, l.EntitlementID, l.Product, l.SKU,
				strconv.Itoa(l.TemplateVersion), st.Status, l.StatusReason, verify.FormatTime(l.IssuedAt), verify.FormatTime(l.NotBefore),
				verify.FormatTime(l.ExpiresAt), l.Supersedes, l.SupersededBy}
			for i := range row {
				row[i] = safeCell(row[i])
			}
			if err := w.Write(row); err != nil {
				return nil
			}
		}
		n += len(list)
		if len(list) < exportPage || n >= exportMax {
			break
		}
		q.After = list[len(list)-1].ID
		if list, err = s.Svc.SearchLicenses(ctx, q, by); err != nil {
			// The status line is sent: end the file with the reason instead of a page.
			s.Log.ErrorContext(ctx, "license export failed", "err", err)
			_ = w.Write([]string{"# export stopped: " + entitlements.ErrorMessage(err)})
			break
		}
	}
	w.Flush()
	return nil
}

// safeCell defuses a cell a spreadsheet would run as a formula (OWASP "CSV
// injection"): one that starts with = + - @, a tab or a carriage return gets a
// leading single quote, shown as text. Quoting for commas, quotes and line breaks is
// encoding/csv's (RFC 4180).
func safeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
