package staffweb

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/staff"
	"github.com/metrum/licensing/web/ui"
)

func (s *Handler) staffLicenseActionRoutes(a *echo.Group) {
	a.GET("/licenses/:id/actions/:action", s.staffStatusConfirm)
	a.POST("/licenses/:id/actions/:action", s.staffStatusChange)
	a.GET("/licenses/:id/successor", s.staffSuccessorForm)
	a.POST("/licenses/:id/successor", s.staffSuccessor)
	a.GET("/licenses/:id/restore-previous", s.staffRestorePreviousConfirm)
	a.POST("/licenses/:id/restore-previous", s.staffRestorePrevious)
	a.GET("/licenses/:id/lease-token", s.staffLeaseTokenConfirm)
	a.POST("/licenses/:id/lease-token", s.staffLeaseToken)
}

var statusActions = map[string]string{entitlements.ActionRevoke: "Revoke", entitlements.ActionSuspend: "Suspend", entitlements.ActionReinstate: "Reinstate"}

// staffStatusConfirm is the confirmation page of revoke, suspend and reinstate: it
// names the license and its customer, says what verifiers will do, and takes the
// reason.
func (s *Handler) staffStatusConfirm(c echo.Context) error {
	return s.renderStatusConfirm(c, http.StatusOK, pages.StaffStatusChange{})
}

// renderStatusConfirm shows the confirmation; v carries a refused form's input and
// message.
func (s *Handler) renderStatusConfirm(c echo.Context, status int, v pages.StaffStatusChange) error {
	verb, ok := statusActions[c.Param("action")]
	if !ok {
		return entitlements.NotFound("action", c.Param("action"))
	}
	l, chain, err := s.Svc.StatusChainPreview(c.Request().Context(), c.Param("id"), c.Param("action"), httpx.Staff(c))
	if err != nil {
		return err
	}
	effect := map[string]string{
		entitlements.ActionRevoke:    "Verifiers that load the next revocation bundle refuse it (license-revoked), for good: revocation can't be undone.",
		entitlements.ActionSuspend:   "Verifiers that load the next revocation bundle refuse it (license-suspended) until it is reinstated; the lease API refuses at once.",
		entitlements.ActionReinstate: "The next revocation bundle no longer lists it, and it serves again.",
	}[c.Param("action")]
	v.Verb, v.Action, v.LicenseID, v.Customer, v.CustomerID, v.SKU, v.Effect = verb, c.Param("action"), l.ID, l.CustomerName, l.CustomerID, l.SKU, effect
	v.StatusLabel = l.StateAt(s.now()).Label()
	for _, p := range chain {
		v.Chain = append(v.Chain, pages.StaffChainItem{LicenseID: p.ID, SKU: p.SKU, Until: ui.Day(p.StatusEffectiveAt)})
	}
	return httpx.Render(c, status, pages.StaffStatusConfirm(s.page(c, verb+" "+l.ID), v))
}

// staffStatusChange revokes, suspends or reinstates; a refusal (no reason, a status
// that can't change so) shows the confirmation again with the message beside the
// field and the input kept.
func (s *Handler) staffStatusChange(c echo.Context) error {
	ctx, action := c.Request().Context(), c.Param("action")
	if _, ok := statusActions[action]; !ok {
		return entitlements.NotFound("action", action)
	}
	scope := c.FormValue("scope")
	if scope != "" && scope != "chain" && scope != "only" {
		return entitlements.Invalid(map[string]string{"scope": "chain or only"})
	}
	reason := strings.TrimSpace(c.FormValue("reason"))
	res, err := s.Svc.ChangeStatusWith(ctx, entitlements.StatusChange{LicenseID: c.Param("id"), Action: action,
		Reason: reason, Only: scope == "only"}, httpx.Staff(c))
	var de *entitlements.Error
	if errors.As(err, &de) && (de.Code == entitlements.EINVALID || de.Code == entitlements.ECONFLICT) {
		v := pages.StaffStatusChange{Reason: reason, Only: scope == "only", Errors: map[string]string{}}
		status := http.StatusUnprocessableEntity
		if de.Code == entitlements.ECONFLICT {
			v.Errors["form"], status = de.Message, http.StatusConflict
		}
		for k, m := range de.Fields {
			v.Errors[k] = m
		}
		return s.renderStatusConfirm(c, status, v)
	}
	if err != nil {
		return err
	}
	l := res.License
	msg := fmt.Sprintf("%s is %s.", l.ID, l.Status)
	for _, p := range res.Chained {
		msg += fmt.Sprintf(" %s is %s with it.", p.ID, p.Status)
	}
	msg += " The next " + l.Product + " revocation bundle carries it: the issuer publishes it within the bundle check interval, or publish now from Bundles."
	return s.Cookies.RedirectWithFlash(c, "/staff/licenses/"+l.ID, msg)
}

func (s *Handler) staffLeaseTokenConfirm(c echo.Context) error {
	l, err := s.Svc.GetLicense(c.Request().Context(), c.Param("id"), httpx.Staff(c))
	if err != nil {
		return err
	}
	return httpx.Render(c, http.StatusOK, pages.StaffConfirm(s.page(c, "Rotate the lease token"), "Rotate the lease token of "+l.ID+" ("+l.CustomerName+")?",
		"The current token stops working at once on every host of the customer; they need the new one, shown once, to renew their leases.",
		"/staff/licenses/"+l.ID+"/lease-token", "Rotate the token", "/staff/licenses/"+l.ID))
}

func (s *Handler) staffLeaseToken(c echo.Context) error {
	id := c.Param("id")
	tok, err := s.Svc.RotateLeaseToken(c.Request().Context(), id, httpx.Staff(c))
	if err != nil {
		return err
	}
	return s.showSecret(c, httpx.SecretView{Title: "New lease token for " + id, Explain: "Give it to the customer over a safe channel; the old one no longer works.",
		Secret: tok, Back: "/staff/licenses/" + id, Again: "Rotate the lease token again on the license's page to get a new one (the old one stops working)."})
}

// staffRestorePreviousConfirm names the refunded or disputed successor and the
// license it replaced, and takes the reason.
func (s *Handler) staffRestorePreviousConfirm(c echo.Context) error {
	return s.renderRestorePrevious(c, http.StatusOK, "", nil)
}

func (s *Handler) renderRestorePrevious(c echo.Context, status int, reason string, errs map[string]string) error {
	ctx := c.Request().Context()
	succ, err := s.Svc.GetLicense(ctx, c.Param("id"), httpx.Staff(c))
	if err != nil {
		return err
	}
	if succ.Supersedes == "" {
		return entitlements.Errorf(entitlements.ECONFLICT, "license %s replaced no license", succ.ID)
	}
	prev, err := s.Svc.GetLicense(ctx, succ.Supersedes, httpx.Staff(c))
	if err != nil {
		return err
	}
	return httpx.Render(c, status, pages.StaffRestorePreviousConfirm(s.page(c, "Restore "+prev.ID), pages.StaffRestorePrevious{
		SuccessorID: succ.ID, SuccessorSKU: succ.SKU, SuccessorStatus: succ.Status, PreviousID: prev.ID, PreviousSKU: prev.SKU,
		Customer: succ.CustomerName, Reason: reason, Errors: errs}))
}

// staffRestorePrevious restores the license a refunded or disputed successor
// replaced; a refusal shows the confirmation again with the message and the reason.
func (s *Handler) staffRestorePrevious(c echo.Context) error {
	reason := strings.TrimSpace(c.FormValue("reason"))
	l, err := s.Svc.RestorePrevious(c.Request().Context(), c.Param("id"), reason, httpx.Staff(c))
	var de *entitlements.Error
	if errors.As(err, &de) && (de.Code == entitlements.EINVALID || de.Code == entitlements.ECONFLICT) {
		errs, status := map[string]string{}, http.StatusUnprocessableEntity
		if de.Code == entitlements.ECONFLICT {
			status = http.StatusConflict
		}
		if m := de.Fields["reason"]; m != "" {
			errs["reason"] = m
		} else {
			errs["form"] = de.Message
		}
		return s.renderRestorePrevious(c, status, reason, errs)
	}
	if err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/licenses/"+l.ID, l.ID+" is active again; the next revocation bundle stops listing it.")
}
