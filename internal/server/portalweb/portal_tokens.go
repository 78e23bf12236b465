package portalweb

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/portal"
	"github.com/metrum/licensing/web/ui"
)

func (s *Handler) tokenPage(c echo.Context, v pages.PortalTokens) (pages.PortalTokens, error) {
	list, err := s.Portal.Tokens(c.Request().Context(), httpx.Principal(c))
	if err != nil {
		return v, err
	}
	now := s.now()
	for _, t := range list {
		r := pages.PortalTokenRow{ID: t.ID, Name: t.Name, CreatedAt: ui.Day(t.CreatedAt), CreatedBy: t.CreatedBy, ExpiresAt: "never", LastUsed: "never", State: "active", Active: t.Active(now)}
		if t.ExpiresAt != nil {
			r.ExpiresAt = ui.Day(*t.ExpiresAt)
			r.Renewable = r.Active
		}
		if t.LastUsedAt != nil {
			r.LastUsed = ui.Day(*t.LastUsedAt)
		}
		switch {
		case t.RevokedAt != nil:
			r.State = "revoked " + ui.Day(*t.RevokedAt)
		case !r.Active:
			r.State = "expired"
		}
		v.Rows = append(v.Rows, r)
	}
	v.CurlBase = s.Portal.BaseURL
	return v, nil
}

func (s *Handler) portalTokens(c echo.Context) error {
	v, err := s.tokenPage(c, pages.PortalTokens{})
	if err != nil {
		return err
	}
	return httpx.Render(c, http.StatusOK, pages.PortalTokenList(s.portalPage(c, "API tokens"), v))
}

// tokenForm is the create-token form, parsed and validated in one place.
type tokenForm struct {
	Name     string
	Days     string
	Never    bool
	validFor time.Duration
}

func (f *tokenForm) Validate() map[string]string {
	errs := map[string]string{}
	f.Name = strings.TrimSpace(f.Name)
	if f.Name == "" || len(f.Name) > 100 {
		errs["name"] = "Give the token a name of 1 to 100 characters (what it is for)."
	}
	switch {
	case f.Never:
		f.validFor = entitlements.TokenNeverExpires
	case f.Days == "":
		f.validFor = entitlements.DefaultTokenLifetime
	default:
		n, err := strconv.Atoi(f.Days)
		if err != nil || n < 1 || n > 3650 {
			errs["days"] = "A whole number of days from 1 to 3650 (90 by default), or tick \"never expires\"."
		}
		f.validFor = time.Duration(n) * 24 * time.Hour
	}
	return errs
}

func (s *Handler) portalCreateToken(c echo.Context) error {
	f := tokenForm{Name: c.FormValue("name"), Days: c.FormValue("days"), Never: c.FormValue("never") == "1"}
	if errs := f.Validate(); len(errs) > 0 {
		v, err := s.tokenPage(c, pages.PortalTokens{Name: f.Name, Days: f.Days, Never: f.Never, Errors: errs})
		if err != nil {
			return err
		}
		return httpx.Render(c, http.StatusBadRequest, pages.PortalTokenList(s.portalPage(c, "API tokens"), v))
	}
	tok, t, err := s.Portal.CreateToken(c.Request().Context(), httpx.Principal(c), f.Name, f.validFor)
	if err != nil {
		return err
	}
	return s.showSecret(c, httpx.SecretView{Title: "API token " + t.Name + " (" + t.ID + ")",
		Explain: "Scripts send it as \"Authorization: Bearer …\" to read your licenses and files. It can't change anything.",
		Secret:  tok, Back: "/portal/tokens", Again: "Create a new token on the API tokens page (and revoke " + t.ID + " if it was lost)."})
}

func (s *Handler) portalRevokeConfirm(c echo.Context) error {
	id := c.Param("id")
	list, err := s.Portal.Tokens(c.Request().Context(), httpx.Principal(c))
	if err != nil {
		return err
	}
	for _, t := range list {
		if t.ID == id {
			return httpx.Render(c, http.StatusOK, pages.PortalConfirm(s.portalPage(c, "Revoke a token"), "Revoke token "+t.Name+"?",
				"Scripts using "+t.ID+" stop working at once. This can't be undone: create a new token to replace it.",
				"/portal/tokens/"+id+"/revoke", "Revoke", "/portal/tokens"))
		}
	}
	return entitlements.NotFound("token", id)
}

func (s *Handler) portalRevoke(c echo.Context) error {
	id := c.Param("id")
	if err := s.Portal.RevokeToken(c.Request().Context(), httpx.Principal(c), id); err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/portal/tokens", "Token "+id+" revoked; it stopped working at once.")
}

func (s *Handler) portalRenewToken(c echo.Context) error {
	t, err := s.Portal.RenewToken(c.Request().Context(), httpx.Principal(c), c.Param("id"))
	if err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/portal/tokens", "Token "+t.Name+" now expires on "+t.ExpiresAt.UTC().Format("2006-01-02")+".")
}

// showSecret ends a POST that made a one-time secret: the secret page by redirect
// (a reload never repeats the POST), the secret sealed to this browser's session.
func (s *Handler) showSecret(c echo.Context, v httpx.SecretView) error {
	return s.Cookies.StashSecret(c, s.Cookies.Get(c, portalCookie), "/portal/secret", v)
}

// portalSecret shows the stashed secret once; after that, how to get another.
func (s *Handler) portalSecret(c echo.Context) error {
	v, ok := s.Cookies.TakeSecret(c, s.Cookies.Get(c, portalCookie), "/portal/secret")
	if !ok {
		again := s.Cookies.SecretAgain(c, "/portal/secret")
		if again == "" {
			again = "Rotate the lease token on the license's page, or create a new API token, to get a new secret."
		}
		return httpx.Render(c, http.StatusOK, pages.PortalSecretGone(s.portalPage(c, "Shown once"), again, "/portal/"))
	}
	return httpx.Render(c, http.StatusOK, pages.PortalSecret(s.portalPage(c, v.Title), v.Title, v.Explain, v.Secret, v.Back))
}
