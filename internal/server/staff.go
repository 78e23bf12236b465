package server

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/web"
)

const sessionCookie = "issuer_session"

// staffRoutes lists every staff route.
func (s *Server) staffRoutes(g *echo.Group) {
	g.Use(middleware.CSRFWithConfig(middleware.CSRFConfig{
		TokenLookup: "form:_csrf", CookieName: "issuer_csrf", CookiePath: "/staff",
		CookieHTTPOnly: true, CookieSameSite: http.SameSiteStrictMode, CookieSecure: s.SecureCookies,
	}))
	g.GET("/login", s.loginForm)
	g.POST("/login", s.login)
	g.POST("/logout", s.logout)
	a := g.Group("", s.requireStaff)
	a.GET("/licenses", s.listLicenses)
	a.GET("/licenses/:id", s.staffLicense)
	a.GET("/licenses/:id/:what", s.downloadLicense)
	a.GET("/customers", s.staffCustomers)
	a.POST("/customers", s.staffCreateCustomer)
	a.GET("/customers/:id", s.staffCustomer)
	a.POST("/customers/:id/portal-users", s.staffInvite)
	a.POST("/customers/:id/tokens", s.staffCustomerToken)
	a.GET("/tokens", s.staffTokens)
	a.POST("/tokens", s.staffCreateToken)
	a.GET("/tokens/:id/revoke", s.staffRevokeTokenConfirm)
	a.POST("/tokens/:id/revoke", s.staffRevokeToken)
}

func staffOf(c echo.Context) *entitlements.Staff {
	st, _ := c.Get("staff").(*entitlements.Staff)
	return st
}

func (s *Server) page(c echo.Context, title string) web.Page {
	p := web.Page{Title: title}
	if tok, ok := c.Get(middleware.DefaultCSRFConfig.ContextKey).(string); ok {
		p.CSRF = tok
	}
	if st, ok := c.Get("staff").(*entitlements.Staff); ok {
		p.Staff, p.Role = st.Email, string(st.Role)
	}
	p.Flash = s.takeFlash(c, "/staff")
	return p
}

func (s *Server) loginForm(c echo.Context) error {
	return Render(c, http.StatusOK, web.Login(s.page(c, "Sign in"), "", "", safeNext(c.QueryParam("next"))))
}

func (s *Server) login(c echo.Context) error {
	email, password := c.FormValue("email"), c.FormValue("password")
	next := safeNext(c.FormValue("next"))
	st, err := s.Store.Authenticate(c.Request().Context(), email, password)
	if entitlements.ErrorCode(err) == entitlements.EUNAUTHORIZED {
		s.Log.Info("staff login refused", "email", email)
		return Render(c, http.StatusUnauthorized, web.Login(s.page(c, "Sign in"), email, "Wrong email or password.", next))
	}
	if err != nil {
		return err
	}
	token, err := s.Store.CreateSession(c.Request().Context(), st.ID)
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: token, Path: "/staff", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.SecureCookies, Expires: time.Now().Add(storage.SessionTTL)})
	s.Log.Info("staff login", "email", st.Email)
	return c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) logout(c echo.Context) error {
	if ck, err := c.Cookie(sessionCookie); err == nil {
		_ = s.Store.DeleteSession(c.Request().Context(), ck.Value)
	}
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/staff", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.SecureCookies})
	return c.Redirect(http.StatusSeeOther, "/staff/login")
}

// requireStaff lets a request through only with a live session; a browser without one
// is sent to the sign-in page and back.
func (s *Server) requireStaff(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(sessionCookie)
		if err != nil || ck.Value == "" {
			return c.Redirect(http.StatusSeeOther, "/staff/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		}
		st, err := s.Store.SessionStaff(c.Request().Context(), ck.Value)
		if entitlements.ErrorCode(err) == entitlements.EUNAUTHORIZED {
			return c.Redirect(http.StatusSeeOther, "/staff/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		}
		if err != nil {
			return err
		}
		c.Set("staff", st)
		return next(c)
	}
}

// safeNext keeps redirects inside the staff UI (no open redirect).
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/staff/") || strings.HasPrefix(n, "//") || strings.ContainsAny(n, "\\\r\n") {
		return "/staff/licenses"
	}
	return n
}
