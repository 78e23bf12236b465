package staffweb

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/staff"
	"github.com/metrum/licensing/web/ui"
)

// staffTokens lists the signed-in staff member's personal access tokens.
func (s *Handler) staffTokens(c echo.Context) error {
	list, err := s.Svc.ListStaffTokens(c.Request().Context(), httpx.Staff(c))
	if err != nil {
		return err
	}
	now := s.now()
	var rows []pages.StaffTokenRow
	for _, t := range list {
		r := pages.StaffTokenRow{ID: t.ID, Name: t.Name, CreatedAt: ui.Day(t.CreatedAt), ExpiresAt: ui.Day(t.ExpiresAt), LastUsed: "never", State: "active",
			Active: t.RevokedAt == nil && t.ExpiresAt.After(now)}
		if t.LastUsedAt != nil {
			r.LastUsed = ui.Day(*t.LastUsedAt)
		}
		switch {
		case t.RevokedAt != nil:
			r.State = "revoked"
		case !r.Active:
			r.State = "expired"
		}
		rows = append(rows, r)
	}
	curl := "ISSUER_URL=" + s.baseURL() + " ISSUER_TOKEN=mst_… issuer license list"
	return httpx.Render(c, http.StatusOK, pages.StaffTokens(s.page(c, "API tokens"), rows, curl))
}

// baseURL is the issuer's public URL as configured (server.base_url): never the
// request's Host header, which the client chooses.
func (s *Handler) baseURL() string {
	if s.BaseURL != "" {
		return strings.TrimRight(s.BaseURL, "/")
	}
	return "https://licensing.example.com"
}

func (s *Handler) staffCreateToken(c echo.Context) error {
	days, err := strconv.Atoi(c.FormValue("days"))
	if err != nil || days < 1 || days > 365 {
		return entitlements.Invalid(map[string]string{"days": "a whole number of days from 1 to 365"})
	}
	tok, rec, err := s.Svc.CreateStaffToken(c.Request().Context(), c.FormValue("name"), time.Duration(days)*24*time.Hour, httpx.Staff(c))
	if err != nil {
		return err
	}
	return httpx.Render(c, http.StatusOK, pages.StaffSecret(s.page(c, "New API token"), "Token "+rec.Name+" ("+rec.ID+")",
		"The issuer CLI uses it as ISSUER_TOKEN (or run `issuer login`); it acts as you, with your role, until "+ui.Day(rec.ExpiresAt)+".",
		tok, "/staff/tokens"))
}

func (s *Handler) staffRevokeTokenConfirm(c echo.Context) error {
	id := c.Param("id")
	return httpx.Render(c, http.StatusOK, pages.StaffConfirm(s.page(c, "Revoke a token"), "Revoke token "+id+"?",
		"Every CLI and script using it stops working at once. This can't be undone.", "/staff/tokens/"+id+"/revoke", "Revoke", "/staff/tokens"))
}

func (s *Handler) staffRevokeToken(c echo.Context) error {
	id := c.Param("id")
	if err := s.Svc.RevokeStaffToken(c.Request().Context(), id, httpx.Staff(c)); err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/tokens", "Token "+id+" revoked; it stopped working at once.")
}
