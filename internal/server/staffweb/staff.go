package staffweb

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/staff"
)

const sessionCookie = "issuer_session"

// Routes lists every console route.
func (s *Handler) Routes(g *echo.Group) {
	g.Use(httpx.CSRF(s.Cookies, sessionCookie, "staff_csrf_seed", http.SameSiteStrictMode))
	// Console pages show secrets once and customer data: never stored by a cache.
	g.Use(httpx.NoStore)
	g.GET("/login", s.loginForm)
	g.POST("/login", s.login)
	g.POST("/logout", s.logout)
	a := g.Group("", s.requireStaff)
	a.GET("/licenses", s.listLicenses)
	a.GET("/licenses.csv", s.exportLicenses)
	a.GET("/licenses/:id", s.staffLicense)
	a.GET("/licenses/:id/:what", s.downloadLicense)
	a.GET("/customers", s.staffCustomers)
	a.POST("/customers", s.staffCreateCustomer)
	a.GET("/customers/:id", s.staffCustomer)
	a.POST("/customers/:id", s.staffUpdateCustomer)
	a.POST("/customers/:id/portal-users", s.staffInvite)
	a.POST("/customers/:id/tokens", s.staffCustomerToken)
	a.GET("/secret", s.staffSecret)
	a.GET("/tokens", s.staffTokens)
	a.POST("/tokens", s.staffCreateToken)
	a.GET("/tokens/:id/revoke", s.staffRevokeTokenConfirm)
	a.POST("/tokens/:id/revoke", s.staffRevokeToken)
	s.staffEntitlementRoutes(a)
	s.staffLicenseActionRoutes(a)
	s.staffOrderRoutes(a)
	s.staffAdminRoutes(a)
	s.staffAccountRoutes(a)
	s.staffUsageRoutes(a)
}

func (s *Handler) page(c echo.Context, title string) pages.Page {
	p := pages.Page{Title: title}
	p.CSRF = httpx.CSRFToken(c)
	if st := httpx.Staff(c); st != nil {
		p.Staff, p.Role, p.Perms = st.Email, string(st.Role), entitlements.PermissionsOf(st)
	}
	p.Flash = s.Cookies.TakeFlash(c, "/staff")
	return p
}

func (s *Handler) loginForm(c echo.Context) error {
	return httpx.Render(c, http.StatusOK, pages.Login(s.page(c, "Sign in"), "", "", safeNext(c.QueryParam("next"))))
}

// login checks a password under the sign-in throttle and starts a new session (a new
// token at every sign-in). Failures are audited; a throttled attempt is answered at
// once with the wait.
func (s *Handler) login(c echo.Context) error {
	email, password := strings.ToLower(strings.TrimSpace(c.FormValue("email"))), c.FormValue("password")
	next := safeNext(c.FormValue("next"))
	st, err := s.checkPassword(c, email, password, "console")
	if entitlements.ErrorCode(err) == entitlements.ERATELIMITED {
		var de *entitlements.Error
		errors.As(err, &de)
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(de.RetryAfter.Seconds())+1))
		return httpx.Render(c, http.StatusTooManyRequests, pages.Login(s.page(c, "Sign in"), email,
			fmt.Sprintf("Too many failed sign-ins: wait %s, then try again.", de.RetryAfter.Round(time.Second)), next))
	}
	if entitlements.ErrorCode(err) == entitlements.EUNAUTHORIZED {
		return httpx.Render(c, http.StatusUnauthorized, pages.Login(s.page(c, "Sign in"), email, "Wrong email or password.", next))
	}
	if err != nil {
		return err
	}
	token, err := s.Svc.StartSession(c.Request().Context(), st, c.RealIP())
	if err != nil {
		return err
	}
	s.Cookies.Set(c, sessionCookie, token, http.SameSiteStrictMode, time.Now().Add(entitlements.SessionTTL), 0)
	s.Log.Info("staff sign-in", "email", st.Email, "client", c.RealIP())
	return c.Redirect(http.StatusSeeOther, next)
}

// checkPassword is the service's one password check (throttled, bounded, audited).
func (s *Handler) checkPassword(c echo.Context, email, password, via string) (*entitlements.Staff, error) {
	return s.Svc.CheckPassword(c.Request().Context(), email, password, c.RealIP(), via)
}

func (s *Handler) logout(c echo.Context) error {
	if tok := s.Cookies.Get(c, sessionCookie); tok != "" {
		if err := s.Svc.EndSession(c.Request().Context(), tok); err != nil {
			return err
		}
	}
	s.Cookies.Clear(c, sessionCookie)
	return c.Redirect(http.StatusSeeOther, "/staff/login")
}

// requireStaff lets a request through only with a live session; a browser without one
// is sent to the sign-in page and back.
func (s *Handler) requireStaff(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok := s.Cookies.Get(c, sessionCookie)
		if tok == "" {
			return c.Redirect(http.StatusSeeOther, "/staff/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		}
		st, err := s.Svc.SessionStaff(c.Request().Context(), tok)
		if entitlements.ErrorCode(err) == entitlements.EUNAUTHORIZED {
			return c.Redirect(http.StatusSeeOther, "/staff/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		}
		if err != nil {
			return err
		}
		httpx.SetStaff(c, st)
		if st.MustChangePassword && !firstPasswordPath(c) {
			return s.Cookies.RedirectWithFlash(c, "/staff/accounts#password", "Choose your own password first: the one you signed in with was set by an admin.")
		}
		return next(c)
	}
}

// firstPasswordPath: what an account whose password an admin set may open before it
// chooses its own: the accounts page and its password form.
func firstPasswordPath(c echo.Context) bool {
	p, m := c.Request().URL.Path, c.Request().Method
	return (p == "/staff/accounts" && m == http.MethodGet) || (p == "/staff/accounts/password" && m == http.MethodPost)
}

// safeNext keeps redirects inside the staff UI (no open redirect).
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/staff/") || strings.HasPrefix(n, "//") || strings.ContainsAny(n, "\\\r\n") {
		return "/staff/"
	}
	return n
}
