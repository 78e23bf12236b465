package staffweb

import (
	"errors"
	"maps"
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
	return s.renderTokens(c, http.StatusOK, pages.StaffTokenForm{Days: "90"})
}

// renderTokens renders the tokens page, with the new-token form as sent.
func (s *Handler) renderTokens(c echo.Context, status int, f pages.StaffTokenForm) error {
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
	return httpx.Render(c, status, pages.StaffTokens(s.page(c, "API tokens"), rows, curl, f))
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
	f := pages.StaffTokenForm{Name: c.FormValue("name"), Days: c.FormValue("days"), Errors: map[string]string{}}
	days, err := strconv.Atoi(strings.TrimSpace(f.Days))
	if err != nil || days < 1 || days > 365 {
		f.Errors["days"] = "a whole number of days from 1 to 365"
		return s.renderTokens(c, http.StatusUnprocessableEntity, f)
	}
	tok, rec, err := s.Svc.CreateStaffToken(c.Request().Context(), f.Name, time.Duration(days)*24*time.Hour, httpx.Staff(c))
	var de *entitlements.Error
	if errors.As(err, &de) && de.Code == entitlements.EINVALID {
		f.Errors = maps.Clone(de.Fields)
		if len(f.Errors) == 0 {
			f.Errors = map[string]string{"name": de.Message}
		}
		return s.renderTokens(c, http.StatusUnprocessableEntity, f)
	}
	if err != nil {
		return err
	}
	return s.showSecret(c, httpx.SecretView{Title: "Token " + rec.Name + " (" + rec.ID + ")",
		Explain: "The issuer CLI uses it as ISSUER_TOKEN (or run `issuer login`); it acts as you, with your role, until " + ui.Day(rec.ExpiresAt) + ".",
		Secret:  tok, Back: "/staff/tokens", Again: "Make a new token on the Tokens page (and revoke " + rec.ID + " if it was lost)."})
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

// showSecret ends a POST that made a one-time secret: the secret page by redirect
// (a reload never repeats the POST), the secret sealed to this browser's session.
func (s *Handler) showSecret(c echo.Context, v httpx.SecretView) error {
	return s.Cookies.StashSecret(c, s.Cookies.Get(c, sessionCookie), "/staff/secret", v)
}

// staffSecret shows the stashed secret once; after that, how to get another.
func (s *Handler) staffSecret(c echo.Context) error {
	v, ok := s.Cookies.TakeSecret(c, s.Cookies.Get(c, sessionCookie), "/staff/secret")
	if !ok {
		again := s.Cookies.SecretAgain(c, "/staff/secret")
		if again == "" {
			again = "Rotate the lease token, or make a new API token, to get a new secret."
		}
		return httpx.Render(c, http.StatusOK, pages.StaffSecretGone(s.page(c, "Shown once"), again, "/staff/"))
	}
	return httpx.Render(c, http.StatusOK, pages.StaffSecret(s.page(c, v.Title), v.Title, v.Explain, v.Secret, v.Back))
}
