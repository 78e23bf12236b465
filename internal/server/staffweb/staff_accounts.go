package staffweb

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/staff"
)

func (s *Handler) staffAccountRoutes(a *echo.Group) {
	a.GET("/accounts", s.staffAccounts)
	a.POST("/accounts", s.staffCreateAccount)
	a.POST("/accounts/password", s.staffChangePassword)
	a.POST("/accounts/sessions/:id/end", s.staffEndSession)
	a.POST("/accounts/:id", s.staffUpdateAccount)
}

func (s *Handler) staffAccounts(c echo.Context) error { return s.renderAccounts(c, http.StatusOK, "") }

func (s *Handler) renderAccounts(c echo.Context, status int, errMsg string) error {
	ctx, by := c.Request().Context(), httpx.Staff(c)
	v := pages.StaffAccounts{Self: by.ID, Error: errMsg, MustChange: by.MustChangePassword}
	var err error
	if entitlements.PermissionsOf(by).Admin {
		if v.Accounts, err = s.Svc.ListStaff(ctx, httpx.Staff(c)); err != nil {
			return err
		}
	}
	current := s.Cookies.Get(c, sessionCookie)
	if v.Sessions, err = s.Svc.Sessions(ctx, current, by); err != nil {
		return err
	}
	return httpx.Render(c, status, pages.StaffAccountsPage(s.page(c, "Accounts"), v))
}

func (s *Handler) staffCreateAccount(c echo.Context) error {
	st := &entitlements.Staff{Email: c.FormValue("email"), Role: entitlements.Role(c.FormValue("role"))}
	if err := s.Svc.CreateStaff(c.Request().Context(), st, c.FormValue("password"), httpx.Staff(c)); err != nil {
		if code := entitlements.ErrorCode(err); code == entitlements.EINVALID || code == entitlements.ECONFLICT {
			return s.renderAccounts(c, http.StatusBadRequest, fieldsText(err))
		}
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/accounts", "Added "+st.Email+" ("+string(st.Role)+"): give them the first password over a safe channel.")
}

func (s *Handler) staffUpdateAccount(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return entitlements.NotFound("account", c.Param("id"))
	}
	role := entitlements.Role(c.FormValue("role"))
	disabled := c.FormValue("state") == "disabled"
	if err := s.Svc.UpdateStaff(c.Request().Context(), id, &role, &disabled, c.FormValue("password"), c.FormValue("revoke_tokens") == "1", httpx.Staff(c)); err != nil {
		if code := entitlements.ErrorCode(err); code == entitlements.EINVALID || code == entitlements.ECONFLICT {
			return s.renderAccounts(c, http.StatusBadRequest, fieldsText(err))
		}
		return err
	}
	what := []string{"role " + string(role)}
	if disabled {
		what = append(what, "disabled (signed out everywhere)")
	} else {
		what = append(what, "enabled")
	}
	if c.FormValue("password") != "" {
		what = append(what, "a new password they must change at their next sign-in")
	}
	if c.FormValue("revoke_tokens") == "1" {
		what = append(what, "personal access tokens revoked")
	}
	name := "#" + strconv.FormatInt(id, 10)
	if list, err := s.Svc.ListStaff(c.Request().Context(), httpx.Staff(c)); err == nil {
		for _, a := range list {
			if a.ID == id {
				name = a.Email
			}
		}
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/accounts", "Account "+name+" updated: "+strings.Join(what, ", ")+".")
}

func (s *Handler) staffChangePassword(c echo.Context) error {
	if err := s.Svc.ChangeOwnPassword(c.Request().Context(), c.FormValue("current"), c.FormValue("next"), c.RealIP(), c.FormValue("revoke_tokens") == "1", httpx.Staff(c)); err != nil {
		if entitlements.ErrorCode(err) == entitlements.EINVALID {
			return s.renderAccounts(c, http.StatusBadRequest, fieldsText(err))
		}
		return err
	}
	// Every session ended with the old password, this one too: sign in again.
	return c.Redirect(http.StatusSeeOther, "/staff/login")
}

func (s *Handler) staffEndSession(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return entitlements.NotFound("session", c.Param("id"))
	}
	by := httpx.Staff(c)
	if err := s.Svc.EndOwnSession(c.Request().Context(), id, by); err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/accounts", "Session ended.")
}

// fieldsText is a validation error as one line for a form.
func fieldsText(err error) string {
	var de *entitlements.Error
	if !errors.As(err, &de) || len(de.Fields) == 0 {
		return entitlements.ErrorMessage(err)
	}
	out := ""
	for k, m := range de.Fields {
		out += k + ": " + m + ". "
	}
	return out
}
