// Package server is the issuer's HTTP side on echo: staff UI, (later) portal and the
// lease API, each a group with its own middleware, and one error handler that turns
// the domain's error codes into HTTP once.
package server

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/purchase"
	"github.com/metrum/licensing/internal/ratelimit"
	"github.com/metrum/licensing/internal/staffapi"
	"github.com/metrum/licensing/web"
)

// Server holds the handlers' dependencies.
type Server struct {
	Svc     *issuance.Service
	Leases  LeaseGranter
	Metrics *Metrics
	Log     *slog.Logger
	// SecureCookies sets the Secure flag (when served over https).
	SecureCookies bool
	// TrustedProxies: peers whose X-Forwarded-For gives the client address; none =
	// the TCP peer is the client.
	TrustedProxies []*net.IPNet
	// Portal serves the customer portal and the customer API (nil: neither).
	Portal *portal.Service
	// CustomerLimit is the rate limit per customer API token (nil: none).
	CustomerLimit *ratelimit.Limiter
	// Purchase is self-service purchase through Stripe (nil: hidden; the portal says
	// to contact sales).
	Purchase *purchase.Service
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time

	v1 *echo.Group

	charts chartCache
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Handler builds the echo instance with every route.
func (s *Server) Handler() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = clientIP(s.TrustedProxies)
	e.Use(middleware.RequestID())
	e.Use(s.logRequests)
	e.Use(middleware.Recover())
	// form-action also governs where a form's POST may redirect: the buy form ends in
	// a redirect to Stripe Checkout, so with purchase on, Checkout is allowed there.
	formAction := "'self'"
	if s.Purchase != nil {
		formAction += " https://checkout.stripe.com"
	}
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection: "0", ContentTypeNosniff: "nosniff", XFrameOptions: "DENY",
		ReferrerPolicy:        "same-origin",
		ContentSecurityPolicy: "default-src 'self'; frame-ancestors 'none'; form-action " + formAction,
	}))
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	if s.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(s.Metrics.Handler()))
	}
	e.GET("/readyz", s.readyz)
	e.GET(web.AssetPrefix+"/*", echo.WrapHandler(http.StripPrefix(web.AssetPrefix+"/", cacheForever(http.FileServerFS(web.Static)))))
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/staff/") })
	s.staffRoutes(e.Group("/staff"))
	v1 := e.Group("/v1")
	s.v1 = v1
	s.publicRoutes(v1)
	s.staffAPIRoutes(v1.Group(strings.TrimPrefix(staffapi.Prefix, "/v1")))
	if s.Portal != nil {
		s.portalRoutes(e.Group("/portal"))
		s.customerRoutes(v1)
	}
	if s.Leases != nil {
		s.leaseRoutes(v1)
	}
	return e
}

// clientIP believes X-Forwarded-For only from the configured proxies; c.RealIP() is
// then the client address for throttling, download records and logs.
func clientIP(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

func cacheForever(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		h.ServeHTTP(w, r)
	})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.Svc.Ping(ctx); err != nil {
		return &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "database unreachable", Err: err}
	}
	return c.String(http.StatusOK, "ready\n")
}

// Render writes a templ component with a status.
func Render(c echo.Context, status int, comp templ.Component) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return comp.Render(c.Request().Context(), c.Response())
}

var statusOf = map[string]int{
	entitlements.EINVALID:      http.StatusBadRequest,
	entitlements.ENOTFOUND:     http.StatusNotFound,
	entitlements.ECONFLICT:     http.StatusConflict,
	entitlements.EUNAUTHORIZED: http.StatusUnauthorized,
	entitlements.EFORBIDDEN:    http.StatusForbidden,
	entitlements.EUNAVAILABLE:  http.StatusServiceUnavailable,
	entitlements.EINTERNAL:     http.StatusInternalServerError,
}

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"request_id"`
	// Errors are per-field messages of a validation error (an RFC 9457 extension).
	Errors map[string]string `json:"errors,omitempty"`
}

// errorHandler is the one place errors become HTTP: users see a safe message, the log
// keeps the detail.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, code, msg := http.StatusInternalServerError, entitlements.EINTERNAL, "internal error"
	var fields map[string]string
	var he *echo.HTTPError
	var de *entitlements.Error
	switch {
	case errors.As(err, &de):
		code, msg, fields = de.Code, de.Message, de.Fields
		if st, ok := statusOfCode(code); ok {
			status = st
		}
		if de.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(de.RetryAfter.Seconds()))))
		}
	case errors.As(err, &he):
		status, code = he.Code, strings.ReplaceAll(strings.ToLower(http.StatusText(he.Code)), " ", "_")
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(he.Code)
		}
	}
	rid := c.Response().Header().Get(echo.HeaderXRequestID)
	if status >= 500 {
		s.Log.Error("request failed", "request_id", rid, "path", c.Path(), "err", err)
	}
	if wantsHTML(c) {
		if strings.HasPrefix(c.Request().URL.Path, "/portal") {
			_ = Render(c, status, web.PortalError(s.portalPage(c, "Error"), status, msg))
			return
		}
		_ = Render(c, status, web.ErrorPage(s.page(c, "Error"), status, msg))
		return
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	_ = c.JSON(status, Problem{Type: "https://metrum.ai/problems/" + code, Title: http.StatusText(status),
		Status: status, Detail: msg, RequestID: rid, Errors: fields})
}

func wantsHTML(c echo.Context) bool {
	p := c.Request().URL.Path
	return (strings.HasPrefix(p, "/staff") || strings.HasPrefix(p, "/portal")) && strings.Contains(c.Request().Header.Get("Accept"), "text/html")
}

func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		// The path only: query strings may carry tokens. Successful lease requests are
		// the fleet's heartbeat: lease_events and /metrics record them, so the access
		// log keeps them at debug level.
		level := slog.LevelInfo
		if c.Response().Status < 400 && strings.HasPrefix(c.Request().URL.Path, "/v1/leases") {
			level = slog.LevelDebug
		}
		s.Log.Log(c.Request().Context(), level, "http", "request_id", c.Response().Header().Get(echo.HeaderXRequestID), "client", c.RealIP(), "method", c.Request().Method,
			"path", c.Request().URL.Path, "status", c.Response().Status, "duration_ms", time.Since(start).Milliseconds())
		return nil
	}
}
