// Package server is the issuer's HTTP side on echo: it mounts the handler package of
// each audience (the staff console and JSON API, the customer portal and API, the
// lease API, the public routes) behind shared middleware and the one error handler
// that turns the domain's error codes into HTTP (httpx).
package server

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/logctx"
	"github.com/metrum/licensing/internal/metering"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/purchase"
	"github.com/metrum/licensing/internal/ratelimit"
	"github.com/metrum/licensing/internal/server/customerapi"
	"github.com/metrum/licensing/internal/server/httpx"
	"github.com/metrum/licensing/internal/server/leaseapi"
	"github.com/metrum/licensing/internal/server/portalweb"
	"github.com/metrum/licensing/internal/server/public"
	"github.com/metrum/licensing/internal/server/staffjson"
	"github.com/metrum/licensing/internal/server/staffweb"
	"github.com/metrum/licensing/internal/server/usageapi"
	"github.com/metrum/licensing/internal/staffapi"
	"github.com/metrum/licensing/usage"
	"github.com/metrum/licensing/web/ui"
)

// Server is the issuer's HTTP side: it mounts one handler package per audience
// (staffweb, staffjson, portalweb, customerapi, leaseapi, public), each holding only
// the services that audience may use, behind shared middleware and the one error
// handler (httpx).
type Server struct {
	Svc     *issuance.Service
	Leases  LeaseGranter
	Metrics *Metrics
	Log     *slog.Logger
	// SecureCookies sets the Secure flag and the __Host- prefix (when served over https).
	SecureCookies bool
	// BaseURL is the public URL (server.base_url): absolute URLs on pages come from it,
	// never from the Host header.
	BaseURL string
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
	// Draining, when it reports true, makes /readyz answer 503 while everything else
	// is served (the drain on SIGTERM: internal/server/drain).
	Draining func() bool
	// MetricsToken, when set, is the bearer token GET /metrics requires. Without it,
	// /metrics is served on this handler only when MetricsOpen (issuer dev, on
	// loopback); `issuer serve` otherwise serves it on a listener of its own, or not
	// at all (MetricsHandler).
	MetricsToken string
	MetricsOpen  bool
	// MetricsOff keeps /metrics off this handler: it is served on a listener of its
	// own (metrics.addr) through MetricsHandler.
	MetricsOff bool
	// Usage is usage metering: POST /v1/usage, the console's and the portal's usage
	// pages (nil: none of them). UsageLimit is its rate limit per credential.
	Usage      *metering.Service
	UsageLimit *ratelimit.Limiter
	// LeaseDeadline bounds a lease API request (0: leaseapi.DefaultDeadline);
	// RequestDeadline every other request, and each item of a bulk stream (0:
	// DefaultRequestDeadline). docs/operations.md, "Deadlines".
	LeaseDeadline, RequestDeadline time.Duration
}

// DefaultRequestDeadline bounds a request when Server.RequestDeadline is unset.
const DefaultRequestDeadline = 15 * time.Second

// LeaseGranter is the lease API's service (leaseapi.LeaseGranter).
type LeaseGranter = leaseapi.LeaseGranter

// Metrics are the lease API's Prometheus metrics (leaseapi.Metrics).
type Metrics = leaseapi.Metrics

// NewMetrics registers the lease API's metrics.
func NewMetrics() *Metrics { return leaseapi.NewMetrics() }

// Handler builds the echo instance with every route.
func (s *Server) Handler() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	cookies := httpx.Cookies{Secure: s.SecureCookies}
	staff := &staffweb.Handler{Svc: s.Svc, Portal: s.Portal, Shop: s.Purchase, Usage: s.Usage, Log: s.Log, Cookies: cookies, BaseURL: s.BaseURL, Now: s.Now}
	pages := []httpx.HTMLError{staff.ErrorPage}
	var portalPages *portalweb.Handler
	if s.Portal != nil {
		portalPages = &portalweb.Handler{Portal: s.Portal, Purchase: s.Purchase, Usage: s.Usage, Log: s.Log, Cookies: cookies, Now: s.Now}
		pages = append(pages, portalPages.ErrorPage)
	}
	e.HTTPErrorHandler = httpx.ErrorHandler(s.Log, pages...)
	e.IPExtractor = httpx.ClientIP(s.TrustedProxies)
	e.Use(middleware.RequestID())
	e.Use(requestIDContext)
	e.Use(s.logRequests)
	e.Use(middleware.Recover())
	// The portal's usage upload is a file of up to 4 MiB: bounded before the form is
	// parsed. POST /v1/usage reads its own body (JSON whatever its Content-Type).
	e.Use(httpx.LimitBodies(usage.MaxBatchBytes+64<<10, portalweb.IsUsageUpload))
	e.Use(httpx.ValidInputExcept(usageapi.Path))
	e.Use(s.deadlines)
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
		// Under https, browsers keep to https for a year (HSTS).
		HSTSMaxAge: hstsMaxAge(s.SecureCookies),
	}))
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	if s.Metrics != nil && !s.MetricsOff && (s.MetricsToken != "" || s.MetricsOpen) {
		e.GET("/metrics", echo.WrapHandler(s.MetricsHandler()))
	}
	e.GET("/readyz", s.readyz)
	e.GET(ui.AssetPrefix+"/*", echo.WrapHandler(http.StripPrefix(ui.AssetPrefix+"/", httpx.CacheForever(http.FileServerFS(ui.Static)))))
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/staff/") })
	staff.Routes(e.Group("/staff"))
	v1 := e.Group("/v1")
	(&public.Handler{Bundles: s.Svc, Purchase: s.Purchase}).Routes(v1)
	(&staffjson.Handler{Svc: s.Svc, Portal: s.Portal, Shop: s.Purchase, Log: s.Log, ItemDeadline: s.requestDeadline()}).Routes(v1.Group(strings.TrimPrefix(staffapi.Prefix, "/v1")))
	if portalPages != nil {
		portalPages.Routes(e.Group("/portal"))
		(&customerapi.Handler{Portal: s.Portal, Limit: s.CustomerLimit, Now: s.Now}).Routes(v1)
	}
	if s.Usage != nil {
		(&usageapi.Handler{Usage: s.Usage, Portal: s.Portal, Limit: s.UsageLimit}).Routes(v1)
	}
	if s.Leases != nil {
		(&leaseapi.Handler{Leases: s.Leases, Metrics: s.Metrics, Deadline: s.LeaseDeadline}).Routes(v1)
	}
	return e
}

// MetricsHandler serves the metrics, behind MetricsToken when it is set (for the
// public listener, or one of its own: metrics.addr).
func (s *Server) MetricsHandler() http.Handler {
	h := s.Metrics.Handler()
	if s.MetricsToken == "" {
		return h
	}
	want := []byte("Bearer " + s.MetricsToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "a scrape token is required (metrics.token)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) requestDeadline() time.Duration {
	if s.RequestDeadline > 0 {
		return s.RequestDeadline
	}
	return DefaultRequestDeadline
}

// deadlines bounds every request with RequestDeadline, so a staff or portal request
// stuck on a lock or a hung database is answered (503) instead of holding its
// connection and locks: the context reaches the database (internal/storage). Not the
// lease API, which bounds its own from the arrival, nor the staff API's bulk streams,
// whose items are bounded one by one.
func (s *Server) deadlines(next echo.HandlerFunc) echo.HandlerFunc {
	d := s.requestDeadline()
	return func(c echo.Context) error {
		p := c.Request().URL.Path
		if strings.HasPrefix(p, "/v1/leases") || staffjson.Streams(p) {
			return next(c)
		}
		orig := c.Request()
		ctx, cancel := context.WithTimeout(orig.Context(), d)
		c.SetRequest(orig.WithContext(ctx))
		// What runs after the handler (the error page of a request that ran out of
		// time, the access log) gets the request without the deadline.
		defer func() { cancel(); c.SetRequest(orig) }()
		return next(c)
	}
}

func (s *Server) readyz(c echo.Context) error {
	if s.Draining != nil && s.Draining() {
		return &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "draining: this replica is shutting down"}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.Svc.Ping(ctx); err != nil {
		return &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "database unreachable", Err: err}
	}
	return c.String(http.StatusOK, "ready\n")
}

// requestIDContext puts the request's ID into its context, so the services' log lines
// for it carry it (logctx; the issuer's logger adds it).
func requestIDContext(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		c.SetRequest(r.WithContext(logctx.WithRequestID(r.Context(), c.Response().Header().Get(echo.HeaderXRequestID))))
		return next(c)
	}
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

// hstsMaxAge is a year over https, and none over http (dev).
func hstsMaxAge(https bool) int {
	if https {
		return 365 * 24 * 3600
	}
	return 0
}
