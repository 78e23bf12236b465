// Package portalweb is the customer portal: emailed sign-in links, a customer's
// licenses and files, lease slots, API tokens, and self-service purchase. Its Handler
// holds the portal and purchase services only: nothing of it can reach another
// customer, or the staff side.
package portalweb

import (
	"log/slog"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/metering"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/purchase"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/portal"
)

// Handler serves the portal.
type Handler struct {
	Portal *portal.Service
	// Purchase is self-service purchase through Stripe (nil: hidden; the portal says
	// to contact sales).
	Purchase *purchase.Service
	// Usage is usage metering: the usage pages and the upload form (nil: off).
	Usage   *metering.Service
	Log     *slog.Logger
	Cookies httpx.Cookies
	Now     func() time.Time
}

func (s *Handler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// ErrorPage renders an error of a portal request on the portal's frame.
func (s *Handler) ErrorPage(c echo.Context, status int, msg string) bool {
	if !strings.HasPrefix(c.Request().URL.Path, "/portal") {
		return false
	}
	_ = httpx.Render(c, status, pages.PortalError(s.portalPage(c, "Error"), status, msg))
	return true
}
