package staffjson

import (
	"context"
	"net/http"
	"strings"
	"time"

	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/labstack/echo/v4"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	"github.com/metrum/licensing/internal/staffapi"
)

// maxStaffBody bounds a staff API request.
const maxStaffBody = 1 << 20

// decodeStaffBody reads one JSON object (application/json, at most 1 MiB, no unknown
// or duplicate members, nothing after it) into p.
func decodeStaffBody(c echo.Context, p any) error {
	body, err := httpx.ReadJSONBody(c, maxStaffBody)
	if err != nil {
		return err
	}
	// The project's strict JSON (as the lease API): one value and nothing after it,
	// exact member names, no unknown or duplicate members. Durations are nanoseconds,
	// as the client (encoding/json) writes them.
	return httpx.DecodeStrict(body, p, jsonv1.FormatDurationAsNano(true))
}

// call adapts a service call to a handler: decode P, act as the token's staff member,
// answer R as JSON.
func call[P, R any](s *Handler, fn func(ctx context.Context, by *entitlements.Staff, p *P) (R, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		var p P
		if err := decodeStaffBody(c, &p); err != nil {
			return err
		}
		by := httpx.Staff(c)
		r, err := fn(c.Request().Context(), by, &p)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, r)
	}
}

// requireStaffToken authenticates the bearer personal access token: one 401 for a
// missing, unknown, expired or revoked token.
func (s *Handler) requireStaffToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := httpx.RefuseTokenInURL(c); err != nil {
			return err
		}
		tok, ok := httpx.Bearer(c)
		if !ok || !strings.HasPrefix(tok, entitlements.StaffTokenPrefix) {
			return entitlements.ErrBadStaffToken
		}
		st, _, err := s.Svc.AuthenticateToken(c.Request().Context(), tok)
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		httpx.SetStaff(c, st)
		return next(c)
	}
}

// staffLogin trades an email and password for a personal access token (what `issuer
// login` does). Throttled per address and per client; failures are audited.
func (s *Handler) staffLogin(c echo.Context) error {
	var p staffapi.LoginRequest
	if err := decodeStaffBody(c, &p); err != nil {
		return err
	}
	ctx := c.Request().Context()
	st, err := s.Svc.CheckPassword(ctx, strings.ToLower(strings.TrimSpace(p.Email)), p.Password, c.RealIP(), "api")
	if err != nil {
		return err
	}
	if p.NewPassword != "" {
		// The current password was just checked; ChangeOwnPassword checks it again
		// (audited as a password change) and refuses the admin's own as the new one.
		if err := s.Svc.ChangeOwnPassword(ctx, p.Password, p.NewPassword, c.RealIP(), false, st); err != nil {
			return err
		}
		st.MustChangePassword = false
	}
	name := p.TokenName
	if name == "" {
		name = "issuer login " + time.Now().UTC().Format("2006-01-02")
	}
	tok, rec, err := s.Svc.CreateStaffToken(ctx, name, p.Lifetime, st)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, staffapi.NewToken{Token: tok, Record: rec})
}
