package server

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/web"
)

func (s *Server) staffLicenseActionRoutes(a *echo.Group) {
	a.GET("/licenses/:id/actions/:action", s.staffStatusConfirm)
	a.POST("/licenses/:id/actions/:action", s.staffStatusChange)
	a.POST("/licenses/:id/successor", s.staffSuccessor)
	a.GET("/licenses/:id/lease-token", s.staffLeaseTokenConfirm)
	a.POST("/licenses/:id/lease-token", s.staffLeaseToken)
}

var statusActions = map[string]string{entitlements.ActionRevoke: "Revoke", entitlements.ActionSuspend: "Suspend", entitlements.ActionReinstate: "Reinstate"}

// staffStatusConfirm is the confirmation page of revoke, suspend and reinstate: it
// names the license and its customer, says what verifiers will do, and takes the
// reason.
func (s *Server) staffStatusConfirm(c echo.Context) error {
	verb, ok := statusActions[c.Param("action")]
	if !ok {
		return entitlements.NotFound("action", c.Param("action"))
	}
	l, err := s.Store.GetLicense(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	effect := map[string]string{
		entitlements.ActionRevoke:    "Verifiers that load the next revocation bundle refuse it (license-revoked), for good: revocation can't be undone.",
		entitlements.ActionSuspend:   "Verifiers that load the next revocation bundle refuse it (license-suspended) until it is reinstated; the lease API refuses at once.",
		entitlements.ActionReinstate: "The next revocation bundle no longer lists it, and it serves again.",
	}[c.Param("action")]
	return Render(c, http.StatusOK, web.StaffStatusConfirm(s.page(c, verb+" "+l.ID), web.StaffStatusChange{
		Verb: verb, Action: c.Param("action"), LicenseID: l.ID, Customer: l.CustomerName, CustomerID: l.CustomerID, SKU: l.SKU, Effect: effect}))
}

func (s *Server) staffStatusChange(c echo.Context) error {
	ctx, action := c.Request().Context(), c.Param("action")
	if _, ok := statusActions[action]; !ok {
		return entitlements.NotFound("action", action)
	}
	l, err := s.Svc.ChangeStatus(ctx, c.Param("id"), action, strings.TrimSpace(c.FormValue("reason")), timeZero, staffOf(c))
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("%s is %s.", l.ID, l.Status)
	if seq, err := s.Store.NextBundleSequence(ctx); err == nil {
		msg += fmt.Sprintf(" Revocation bundle %d will carry it (the issuer publishes it within the bundle check interval, or publish now from Bundles).", seq)
	}
	return s.redirectWithFlash(c, "/staff/licenses/"+l.ID, msg)
}

// staffSuccessor opens a renewal, replacement or top-up (a draft to approve).
func (s *Server) staffSuccessor(c echo.Context) error {
	kind := c.FormValue("kind")
	in := issuance.SuccessorInput{Kind: kind, LicenseID: c.Param("id")}
	if kind == entitlements.KindTopUp {
		in.Template = c.FormValue("template")
	}
	e, err := s.Svc.CreateSuccessor(c.Request().Context(), in, staffOf(c))
	if err != nil {
		return err
	}
	return s.redirectWithFlash(c, "/staff/entitlements/"+e.ID, "Opened "+kind+" "+e.ID+" of "+in.LicenseID+": another approver approves it, then issue it.")
}

func (s *Server) staffLeaseTokenConfirm(c echo.Context) error {
	l, err := s.Store.GetLicense(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, web.StaffConfirm(s.page(c, "Rotate the lease token"), "Rotate the lease token of "+l.ID+" ("+l.CustomerName+")?",
		"The current token stops working at once on every host of the customer; they need the new one, shown once, to renew their leases.",
		"/staff/licenses/"+l.ID+"/lease-token", "Rotate the token", "/staff/licenses/"+l.ID))
}

func (s *Server) staffLeaseToken(c echo.Context) error {
	id := c.Param("id")
	tok, err := s.Svc.RotateLeaseToken(c.Request().Context(), id, staffOf(c))
	if err != nil {
		return err
	}
	return Render(c, http.StatusOK, web.StaffSecret(s.page(c, "New lease token"), "New lease token for "+id,
		"Give it to the customer over a safe channel; the old one no longer works.", tok, "/staff/licenses/"+id))
}
