package staffweb

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/staff"
	"github.com/metrum/licensing/web/ui"
)

// pickerLayout is what an <input type="datetime-local"> sends (read as UTC).
const pickerLayout = "2006-01-02T15:04"

// keyNotAfterView is the key's not-after form, filled with what was typed.
func (s *Handler) keyNotAfterView(c echo.Context) (pages.StaffKeyNotAfter, *entitlements.KeyRecord, error) {
	kid := c.Param("kid")
	if err := s.Svc.MayManageKeys(httpx.Staff(c)); err != nil {
		return pages.StaffKeyNotAfter{}, nil, err
	}
	keys, err := s.Svc.ListKeys(c.Request().Context(), httpx.Staff(c))
	if err != nil {
		return pages.StaffKeyNotAfter{}, nil, err
	}
	now := s.now()
	for _, k := range keys {
		if k.KID != kid {
			continue
		}
		if k.Status != entitlements.KeyPublished {
			return pages.StaffKeyNotAfter{}, nil, entitlements.Errorf(entitlements.ECONFLICT, "key %s is retired: it signs nothing and is out of the key set", kid)
		}
		v := pages.StaffKeyNotAfter{KID: k.KID, Product: k.Product, State: entitlements.KeyStates(keys, now)[k.KID],
			Min: now.UTC().Format(pickerLayout), At: c.FormValue("at"), Past: c.FormValue("past") == "yes",
			Reason: c.FormValue("reason"), Errors: map[string]string{}}
		if k.NotAfter != nil {
			v.Current = ui.Day(*k.NotAfter)
		}
		return v, k, nil
	}
	return pages.StaffKeyNotAfter{}, nil, entitlements.NotFound("key", kid)
}

func (s *Handler) staffKeyNotAfterForm(c echo.Context) error {
	v, _, err := s.keyNotAfterView(c)
	if err != nil {
		return err
	}
	return httpx.Render(c, http.StatusOK, pages.StaffKeyNotAfterPage(s.page(c, "Keys"), v))
}

// staffKeyNotAfter checks the time (a picker's value or RFC 3339, UTC; not in the
// past unless the key was compromised; earlier than the key's current not-after),
// then shows what verifiers will do from then (step=preview), then sets it
// (step=confirm). A refusal re-renders the form with the message by its field.
func (s *Handler) staffKeyNotAfter(c echo.Context) error {
	ctx, by := c.Request().Context(), httpx.Staff(c)
	v, k, err := s.keyNotAfterView(c)
	if err != nil {
		return err
	}
	refuse := func(status int) error {
		return httpx.Render(c, status, pages.StaffKeyNotAfterPage(s.page(c, "Keys"), v))
	}
	at, perr := parseNotAfter(v.At)
	now := s.now()
	switch {
	case perr != nil:
		v.Errors["at"] = "pick a date and time (UTC)"
	case at.Before(now.Add(-time.Minute)) && !v.Past:
		v.Errors["at"] = "that is in the past: everything the key signed after it would stop verifying. Tick “compromised” if that is what you mean."
	case k.NotAfter != nil && !at.Before(*k.NotAfter):
		v.Errors["at"] = "the not-after can only move earlier than " + ui.Day(*k.NotAfter)
	}
	if strings.TrimSpace(v.Reason) == "" {
		v.Errors["reason"] = "say why, for the audit trail"
	}
	if len(v.Errors) > 0 {
		return refuse(http.StatusUnprocessableEntity)
	}
	if c.FormValue("step") != "confirm" {
		v.Preview, v.AtLabel, v.Future = true, ui.Day(at), at.After(now)
		if v.SignedN, v.SignedIDs, err = s.Svc.KeySignedAfter(ctx, k.KID, at, 20, by); err != nil {
			return err
		}
		return httpx.Render(c, http.StatusOK, pages.StaffKeyNotAfterPage(s.page(c, "Keys"), v))
	}
	if err := s.Svc.SetKeyNotAfterWhy(ctx, k.KID, at, v.Reason, by); err != nil {
		if code := entitlements.ErrorCode(err); code == entitlements.ECONFLICT || code == entitlements.EINVALID {
			v.Errors["at"] = entitlements.ErrorMessage(err)
			return refuse(http.StatusConflict)
		}
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/keys", "Key "+k.KID+" signs nothing after "+ui.Day(at)+
		", and verifiers with the next key set reject what it signed after then: export the key set and release it.")
}

func parseNotAfter(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.ParseInLocation(pickerLayout, s, time.UTC); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}
