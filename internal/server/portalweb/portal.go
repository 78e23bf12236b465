package portalweb

import (
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/portal"
)

const (
	portalCookie = "portal_session"
	portalFlash  = "portal_flash"
)

// Routes lists every customer portal route. The group has its own CSRF cookie
// and session cookie (path /portal), separate from the staff console's.
func (s *Handler) Routes(g *echo.Group) {
	g.Use(httpx.CSRF(s.Cookies, portalCookie, "portal_csrf_seed", http.SameSiteLaxMode))
	g.Use(httpx.NoStore)
	g.GET("/sign-in", s.portalSignInForm)
	g.POST("/sign-in", s.portalRequestLink)
	g.GET("/sign-in/link", s.portalConfirmLink)
	g.POST("/sign-in/link", s.portalUseLink)
	g.POST("/sign-out", s.portalSignOut)
	a := g.Group("", s.requirePortal)
	a.GET("", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/portal/") })
	a.GET("/", s.portalLicenses)
	a.GET("/licenses/:id", s.portalLicense)
	a.GET("/licenses/:id/download/:what", s.portalDownload)
	a.GET("/licenses/:id/leases/:lease_id/release", s.portalReleaseConfirm)
	a.POST("/licenses/:id/leases/:lease_id/release", s.portalRelease)
	a.GET("/licenses/:id/lease-token", s.portalRotateConfirm)
	a.POST("/licenses/:id/lease-token", s.portalRotate)
	a.GET("/downloads", s.portalDownloads)
	a.GET("/downloads/:name", s.portalDownloadFile)
	a.GET("/secret", s.portalSecret)
	a.GET("/tokens", s.portalTokens)
	a.POST("/tokens", s.portalCreateToken)
	a.GET("/tokens/:id/revoke", s.portalRevokeConfirm)
	a.POST("/tokens/:id/revoke", s.portalRevoke)
	a.POST("/tokens/:id/renew", s.portalRenewToken)
	s.portalUsageRoutes(a)
	if s.Purchase != nil {
		s.purchaseRoutes(g, a)
	}
}

// requirePortal lets a request through only with a live portal session (idle and
// absolute lifetimes are checked in the database); a browser without one is sent to
// the sign-in page.
func (s *Handler) requirePortal(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok := s.Cookies.Get(c, portalCookie)
		if tok == "" {
			return c.Redirect(http.StatusSeeOther, "/portal/sign-in")
		}
		p, u, err := s.Portal.Session(c.Request().Context(), tok, c.RealIP())
		if entitlements.ErrorCode(err) == entitlements.EUNAUTHORIZED {
			s.Cookies.Clear(c, portalCookie)
			return c.Redirect(http.StatusSeeOther, "/portal/sign-in")
		}
		if err != nil {
			return err
		}
		httpx.SetPrincipal(c, p)
		c.Set("portal_user", u)
		return next(c)
	}
}

// portalPage is the frame of a portal page: the signed-in user, the CSRF token and a
// one-time flash message (read and cleared).
func (s *Handler) portalPage(c echo.Context, title string) pages.PortalPage {
	p := pages.PortalPage{Title: title, Purchase: s.Purchase != nil}
	p.CSRF = httpx.CSRFToken(c)
	if u, ok := c.Get("portal_user").(*entitlements.PortalUser); ok {
		p.User = u.Email
		if cu, err := s.Portal.Customer(c.Request().Context(), httpx.Principal(c)); err == nil {
			p.Customer = cu.Name
		}
	}
	p.Flash = s.Cookies.TakeFlash(c, "/portal")
	return p
}

func (s *Handler) portalSignInForm(c echo.Context) error {
	return httpx.Render(c, http.StatusOK, pages.PortalSignIn(s.portalPage(c, "Sign in"), ""))
}

// portalRequestLink answers the same page for every address: the portal never says
// which addresses have accounts.
func (s *Handler) portalRequestLink(c echo.Context) error {
	email := c.FormValue("email")
	if len(email) < 3 || len(email) > 254 {
		return httpx.Render(c, http.StatusBadRequest, pages.PortalSignIn(s.portalPage(c, "Sign in"), "Enter an email address."))
	}
	s.Portal.RequestSignIn(c.Request().Context(), email, c.RealIP())
	return httpx.Render(c, http.StatusOK, pages.PortalLinkSent(s.portalPage(c, "Check your mail")))
}

func (s *Handler) portalConfirmLink(c echo.Context) error {
	tok := c.QueryParam("token")
	u, err := s.Portal.PeekLink(c.Request().Context(), tok)
	if err != nil {
		return err
	}
	return httpx.Render(c, http.StatusOK, pages.PortalConfirmLink(s.portalPage(c, "Sign in"), u.Email, tok))
}

func (s *Handler) portalUseLink(c echo.Context) error {
	sess, _, err := s.Portal.UseLink(c.Request().Context(), c.FormValue("token"), c.RealIP())
	if err != nil {
		return err
	}
	// A new session ID at every sign-in; the cookie lives no longer than the session.
	s.Cookies.Set(c, portalCookie, sess, http.SameSiteLaxMode, time.Now().Add(entitlements.PortalAbsoluteTTL), 0)
	return s.Cookies.RedirectWithFlash(c, "/portal/", "Signed in.")
}

func (s *Handler) portalSignOut(c echo.Context) error {
	if tok := s.Cookies.Get(c, portalCookie); tok != "" {
		if err := s.Portal.SignOut(c.Request().Context(), tok); err != nil {
			return err
		}
	}
	s.Cookies.Clear(c, portalCookie)
	return c.Redirect(http.StatusSeeOther, "/portal/sign-in")
}

func licenseURL(id string) string { return "/portal/licenses/" + url.PathEscape(id) }
