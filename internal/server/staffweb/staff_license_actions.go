package staffweb

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/staff"
)

func (s *Handler) staffLicenseActionRoutes(a *echo.Group) {
	a.GET("/licenses/:id/actions/:action", s.staffStatusConfirm)
	a.POST("/licenses/:id/actions/:action", s.staffStatusChange)
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
	v := pages.StaffStatusChange{Verb: verb, Action: c.Param("action"), LicenseID: l.ID, Customer: l.CustomerName,
		CustomerID: l.CustomerID, SKU: l.SKU, Effect: effect}
	for _, p := range chain {
		v.Chain = append(v.Chain, pages.StaffChainItem{LicenseID: p.ID, SKU: p.SKU, Until: p.StatusEffectiveAt.UTC().Format("2006-01-02 15:04 UTC")})
	}
	return httpx.Render(c, http.StatusOK, pages.StaffStatusConfirm(s.page(c, verb+" "+l.ID), v))
}

func (s *Handler) staffStatusChange(c echo.Context) error {
	ctx, action := c.Request().Context(), c.Param("action")
	if _, ok := statusActions[action]; !ok {
		return entitlements.NotFound("action", action)
	}
	scope := c.FormValue("scope")
	if scope != "" && scope != "chain" && scope != "only" {
		return entitlements.Invalid(map[string]string{"scope": "chain or only"})
	}
	res, err := s.Svc.ChangeStatusWith(ctx, entitlements.StatusChange{LicenseID: c.Param("id"), Action: action,
		Reason: strings.TrimSpace(c.FormValue("reason")), Only: scope == "only"}, httpx.Staff(c))
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

// staffSuccessor opens a renewal, replacement or top-up (a draft to approve).
func (s *Handler) staffSuccessor(c echo.Context) error {
	kind := c.FormValue("kind")
	in := entitlements.SuccessorInput{Kind: kind, LicenseID: c.Param("id")}
	if kind == entitlements.KindTopUp {
		in.Template = c.FormValue("template")
	}
	e, err := s.Svc.CreateSuccessor(c.Request().Context(), in, httpx.Staff(c))
	if err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/entitlements/"+e.ID, "Opened "+kind+" "+e.ID+" of "+in.LicenseID+": another approver approves it, then issue it.")
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
	return httpx.Render(c, http.StatusOK, pages.StaffRestorePreviousConfirm(s.page(c, "Restore "+prev.ID), pages.StaffRestorePrevious{
		SuccessorID: succ.ID, SuccessorSKU: succ.SKU, SuccessorStatus: succ.Status, PreviousID: prev.ID, PreviousSKU: prev.SKU,
		Customer: succ.CustomerName}))
}

func (s *Handler) staffRestorePrevious(c echo.Context) error {
	l, err := s.Svc.RestorePrevious(c.Request().Context(), c.Param("id"), c.FormValue("reason"), httpx.Staff(c))
	if err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/licenses/"+l.ID, l.ID+" is active again; the next revocation bundle stops listing it.")
}
