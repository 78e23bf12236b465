// Package staffweb is the staff console: session sign-in, and one file per area of
// pages (dashboard, customers, entitlements, licenses and their actions, bundles,
// keys, audit, accounts, tokens). Its Handler holds only the services staff use.
package staffweb

import (
	"log/slog"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/metering"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/purchase"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/staff"
)

// Handler serves the console.
type Handler struct {
	Svc *issuance.Service
	// Portal is the portal service, for what staff do on a customer's behalf
	// (invitations, customer API tokens); nil: those pages are hidden.
	Portal *portal.Service
	// Shop is self-service purchase, for the order queue's fulfil and refund; nil:
	// purchase is off.
	Shop *purchase.Service
	// Usage is usage metering's views (nil: the usage pages are off).
	Usage   *metering.Service
	Log     *slog.Logger
	Cookies httpx.Cookies
	// BaseURL is the issuer's public URL (server.base_url), for every absolute URL a
	// page shows.
	BaseURL string
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time

	charts chartCache
}

func (s *Handler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// ErrorPage renders an error of a console request on the console's frame.
func (s *Handler) ErrorPage(c echo.Context, status int, msg string) bool {
	if !strings.HasPrefix(c.Request().URL.Path, "/staff") {
		return false
	}
	_ = httpx.Render(c, status, pages.ErrorPage(s.page(c, "Error"), status, msg))
	return true
}

var _ httpx.HTMLError = (&Handler{}).ErrorPage
