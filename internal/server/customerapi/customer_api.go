package customerapi

import (
	"encoding/hex"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/server/httpx"
)

// Routes lists the customer download API (customer-api.md). Bearer customer
// API tokens, no cookies, so no CSRF; read-only.
// The token check is attached to each route, not to a group: a group's middleware
// would also answer every unknown /v1 path (with a 401 instead of a 404).
func (s *Handler) Routes(g *echo.Group) {
	g.GET("/licenses", s.apiLicenses, s.requireCustomerToken)
	g.GET("/licenses/:id", s.apiLicense, s.requireCustomerToken)
	g.GET("/licenses/:id/file", s.apiLicenseFile, s.requireCustomerToken)
	g.GET("/licenses/:id/checklist", s.apiLicenseChecklist, s.requireCustomerToken)
	g.GET("/downloads", s.apiDownloads, s.requireCustomerToken)
	g.GET("/downloads/:name", s.apiDownload, s.requireCustomerToken)
}

// requireCustomerToken authenticates the bearer customer API token (one 401 for a
// missing, unknown, expired or revoked token) and applies the token's rate limit.
func (s *Handler) requireCustomerToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := httpx.RefuseTokenInURL(c); err != nil {
			return err
		}
		tok, ok := httpx.Bearer(c)
		if !ok {
			return entitlements.ErrBadCustomerToken
		}
		p, err := s.Portal.Authenticate(c.Request().Context(), tok, c.RealIP())
		if err != nil {
			return err
		}
		if wait := s.Limit.Wait(p.Actor); wait > 0 {
			return &entitlements.Error{Code: entitlements.ERATELIMITED, RetryAfter: wait,
				Message: "too many requests for this token: retry after the Retry-After delay"}
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		httpx.SetPrincipal(c, p)
		return next(c)
	}
}

type licensePage struct {
	Licenses []entitlements.SafeSummary `json:"licenses"`
	Next     *string                    `json:"next"`
}

func (s *Handler) apiLicenses(c echo.Context) error {
	list, next, err := s.Portal.Licenses(c.Request().Context(), httpx.Principal(c), c.QueryParam("after"), portal.PageSize)
	if err != nil {
		return err
	}
	now := s.now()
	out := licensePage{Licenses: make([]entitlements.SafeSummary, len(list))}
	for i, l := range list {
		out.Licenses[i] = entitlements.SafeSummaryOf(l, now)
	}
	if next != "" {
		out.Next = &next
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Handler) apiLicense(c echo.Context) error {
	l, err := s.Portal.License(c.Request().Context(), httpx.Principal(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, entitlements.SafeSummaryOf(l, s.now()))
}

// apiLicenseFile serves the exact stored signed bytes with the ETag of the spec (the
// SHA-256 of the bytes); a matching If-None-Match is a 304 and, delivering nothing,
// records nothing.
func (s *Handler) apiLicenseFile(c echo.Context) error {
	ctx, p := c.Request().Context(), httpx.Principal(c)
	l, err := s.Portal.License(ctx, p, c.Param("id"))
	if err != nil {
		return err
	}
	etag := `"` + hex.EncodeToString(l.FileSHA256) + `"`
	h := c.Response().Header()
	h.Set("ETag", etag)
	if c.Request().Header.Get("If-None-Match") == etag {
		return c.NoContent(http.StatusNotModified)
	}
	f, err := s.Portal.Download(ctx, p, l.ID, entitlements.WhatFile)
	if err != nil {
		return err
	}
	return httpx.SendFile(c, f, f.ContentType)
}

func (s *Handler) apiLicenseChecklist(c echo.Context) error {
	f, err := s.Portal.Download(c.Request().Context(), httpx.Principal(c), c.Param("id"), entitlements.WhatChecklist)
	if err != nil {
		return err
	}
	return httpx.SendFile(c, f, "text/markdown")
}
