package portalweb

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	"github.com/metrum/licensing/usage"
	pages "github.com/metrum/licensing/web/portal"
	"github.com/metrum/licensing/web/ui"
)

// portalUsageRoutes: a license's usage page with the air-gapped upload form (only
// with usage metering on).
func (s *Handler) portalUsageRoutes(a *echo.Group) {
	if s.Usage == nil {
		return
	}
	a.GET("/licenses/:id/usage", s.portalUsage)
	a.POST("/licenses/:id/usage/upload", s.portalUsageUpload)
}

// IsUsageUpload reports the portal's upload request, whose body (a file of up to
// 4 MiB) is bounded before anything reads it.
func IsUsageUpload(method, path string) bool {
	return method == http.MethodPost && strings.HasPrefix(path, "/portal/licenses/") && strings.HasSuffix(path, "/usage/upload")
}

func (s *Handler) portalUsage(c echo.Context) error {
	return s.renderUsage(c, http.StatusOK, "")
}

// renderUsage renders a license's usage page, with an upload's refusal when there is
// one.
func (s *Handler) renderUsage(c echo.Context, status int, uploadErr string) error {
	ctx, p := c.Request().Context(), httpx.Principal(c)
	days, _ := strconv.Atoi(c.QueryParam("days"))
	o, err := s.Usage.CustomerUsage(ctx, p, c.Param("id"), days)
	if err != nil {
		return err
	}
	v := pages.PortalUsage{Usage: ui.UsageViewOf(o), UploadError: uploadErr, BaseURL: strings.TrimRight(s.Portal.BaseURL, "/"),
		Action: licenseURL(o.License.ID) + "/usage/upload"}
	if s.Purchase != nil {
		items, err := s.Purchase.ItemsFor(ctx, o.License)
		if err != nil {
			return err
		}
		for _, it := range items {
			if it.Kind == entitlements.OrderTopUp {
				v.CanBuy, v.BuyURL = true, "/portal/buy?kind=top-up&license="+o.License.ID
			}
		}
	}
	return httpx.Render(c, status, pages.PortalUsagePage(s.portalPage(c, "Usage of "+o.License.ID), v))
}

// portalUsageUpload takes the file `verifier usage export` wrote (the upload body of
// usage.md section 3) and ingests it for the signed-in user's customer: its reports may
// be for any of the customer's licenses. A refusal is shown on the page, with what was
// kept before it.
func (s *Handler) portalUsageUpload(c echo.Context) error {
	ctx, p := c.Request().Context(), httpx.Principal(c)
	// The license must be the customer's before anything is read.
	if _, err := s.Portal.License(ctx, p, c.Param("id")); err != nil {
		return err
	}
	fh, err := c.FormFile("file")
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return s.renderUsage(c, http.StatusRequestEntityTooLarge, "The file is larger than an upload may be (4 MiB): export again with `verifier usage export`, which splits larger exports into FILE, FILE.2, …")
		}
		return s.renderUsage(c, http.StatusBadRequest, "Choose the file that `verifier usage export` wrote.")
	}
	f, err := fh.Open()
	if err != nil {
		return s.renderUsage(c, http.StatusBadRequest, "The file could not be read.")
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, usage.MaxBatchBytes+1))
	if err != nil || len(body) > usage.MaxBatchBytes {
		return s.renderUsage(c, http.StatusRequestEntityTooLarge, "The file is larger than an upload may be (4 MiB).")
	}
	ans, err := s.Usage.Upload(ctx, p, body)
	if err != nil {
		switch entitlements.ErrorCode(err) {
		case entitlements.EUSAGEINVALID, entitlements.EUSAGEFORK, entitlements.EUSAGEGAP:
			status, _ := httpx.StatusOf(entitlements.ErrorCode(err))
			return s.renderUsage(c, status, refusal(err))
		}
		return err
	}
	msg := "Uploaded: " + strconv.FormatInt(ans.Accepted, 10) + " reports accepted"
	if ans.Duplicates > 0 {
		msg += ", " + strconv.FormatInt(ans.Duplicates, 10) + " already received before (duplicates, counted once)"
	}
	return s.Cookies.RedirectWithFlash(c, licenseURL(c.Param("id"))+"/usage", msg+".")
}

// refusal says what became of an upload that was refused at one of its reports.
func refusal(err error) string {
	msg := "Refused: " + entitlements.ErrorMessage(err) + "."
	i := 0
	if de := (*entitlements.Error)(nil); errors.As(err, &de) {
		i, _ = de.Extensions["report_index"].(int)
	}
	switch i {
	case 0:
		return msg + " Nothing of the file was kept."
	case 1:
		return msg + " The report before it in the file was kept."
	}
	return msg + " The " + strconv.Itoa(i) + " reports before it in the file were kept."
}
