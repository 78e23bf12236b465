package staffweb

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	"github.com/metrum/licensing/internal/templates"
	"github.com/metrum/licensing/verify"
	pages "github.com/metrum/licensing/web/staff"
	"github.com/metrum/licensing/web/ui"
)

var products = []string{templates.ProductRouter, templates.ProductCoreSDK}

func (s *Handler) staffAdminRoutes(a *echo.Group) {
	a.GET("/", s.staffDashboard)
	a.GET("/bundles", s.staffBundles)
	a.POST("/bundles/publish", s.staffPublish)
	a.GET("/keys", s.staffKeys)
	a.GET("/keys/keyset", s.staffKeySet)
	a.POST("/keys/generate", s.staffGenerateKey)
	a.GET("/keys/:kid/not-after", s.staffKeyNotAfterForm)
	a.POST("/keys/:kid/not-after", s.staffKeyNotAfter)
	a.GET("/keys/rotate", s.staffKeyConfirm)
	a.POST("/keys/rotate", s.staffKeyAction)
	a.GET("/keys/:kid/:action", s.staffKeyConfirm)
	a.POST("/keys/:kid/:action", s.staffKeyAction)
	a.GET("/audit", s.staffAudit)
	a.POST("/audit/verify", s.staffAuditVerify)
}

func (s *Handler) staffBundles(c echo.Context) error {
	product := c.QueryParam("product")
	if product == "" {
		product = products[0]
	}
	before, _ := strconv.ParseInt(c.QueryParam("before"), 10, 64)
	list, err := s.Svc.ListBundles(c.Request().Context(), product, before, pageSize+1, httpx.Staff(c))
	if err != nil {
		return err
	}
	v := pages.StaffBundles{Product: product, Products: products}
	if len(list) > pageSize {
		list = list[:pageSize]
		v.NextURL = "/staff/bundles?" + url.Values{"product": {product}, "before": {strconv.FormatInt(list[pageSize-1].Sequence, 10)}}.Encode()
	}
	v.List = list
	return httpx.Render(c, http.StatusOK, pages.StaffBundleList(s.page(c, "Bundles"), v))
}

func (s *Handler) staffPublish(c echo.Context) error {
	b, err := s.Svc.PublishBundle(c.Request().Context(), c.FormValue("product"), httpx.Staff(c))
	if err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/bundles?product="+b.Product, "Published "+b.Product+" bundle #"+strconv.FormatInt(b.Sequence, 10)+
		" ("+strconv.Itoa(b.Entries)+" entries, expires "+ui.Day(b.ExpiresAt)+").")
}

func (s *Handler) staffKeys(c echo.Context) error {
	keys, err := s.Svc.ListKeys(c.Request().Context(), httpx.Staff(c))
	if err != nil {
		return err
	}
	return httpx.Render(c, http.StatusOK, pages.StaffKeyList(s.page(c, "Keys"), pages.StaffKeys{Keys: keys, Products: products,
		States: entitlements.KeyStates(keys, s.now())}))
}

func (s *Handler) staffKeySet(c echo.Context) error {
	ks, err := s.Svc.PublicKeySet(c.Request().Context())
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Disposition", `attachment; filename="keyset.json"`)
	return c.Blob(http.StatusOK, "application/json", ks)
}

// staffGenerateKey makes a standby key (admins); it signs nothing until rotated to.
func (s *Handler) staffGenerateKey(c echo.Context) error {
	in := entitlements.KeyInput{Product: c.FormValue("product"), Alg: c.FormValue("alg"), Purposes: []verify.Purpose{verify.Purpose(c.FormValue("purpose"))}}
	rec, err := s.Svc.GenerateKey(c.Request().Context(), in, false, httpx.Staff(c))
	if err != nil {
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/keys", "Standby key "+rec.KID+" made for "+in.Product+"/"+string(in.Purposes[0])+
		": export the key set and release a verifier with it before rotating to it.")
}

// keyEffects says what each key action does to verifiers in the field.
var keyEffects = map[string]string{
	"rotate": "The slot's newest standby key becomes its signer from now on. Verifiers that do not embed it yet reject everything it signs: rotate only once a verifier release with the new key set has reached customers. Documents signed before keep verifying.",
	"retire": "The key leaves the exported key set. Verifiers released with the next key set stop trusting it: licenses, bundles and leases it signed stop verifying there. Retire only when nothing it signed must still verify.",
}

func (s *Handler) staffKeyConfirm(c echo.Context) error {
	action, kid := c.Param("action"), c.Param("kid")
	if action == "" {
		action = "rotate"
	}
	explain, ok := keyEffects[action]
	if !ok {
		return entitlements.NotFound("action", action)
	}
	if err := s.Svc.MayManageKeys(httpx.Staff(c)); err != nil {
		return err
	}
	v := pages.StaffKeyConfirm{Explain: explain, Fields: map[string]string{}, Action: "/staff/keys/" + kid + "/" + action}
	switch action {
	case "rotate":
		v.Title = "Rotate " + c.QueryParam("product") + "/" + c.QueryParam("purpose") + " to its standby?"
		v.Action = "/staff/keys/rotate"
		v.Fields["product"], v.Fields["purpose"] = c.QueryParam("product"), c.QueryParam("purpose")
	case "retire":
		v.Title = "Retire key " + kid + "?"
	}
	return httpx.Render(c, http.StatusOK, pages.StaffKeyConfirmPage(s.page(c, "Keys"), v))
}

func (s *Handler) staffKeyAction(c echo.Context) error {
	ctx, by, kid := c.Request().Context(), httpx.Staff(c), c.Param("kid")
	action := c.Param("action")
	if action == "" {
		action = "rotate"
	}
	var msg string
	switch action {
	case "rotate":
		next, prev, err := s.Svc.RotateKey(ctx, c.FormValue("product"), verify.Purpose(c.FormValue("purpose")), by)
		if err != nil {
			return err
		}
		msg = "Rotated: " + next + " signs now (was " + prev + ")."
	case "retire":
		if err := s.Svc.RetireKey(ctx, kid, strings.TrimSpace(c.FormValue("reason")), by); err != nil {
			return err
		}
		msg = "Retired " + kid + ": export the key set for the next verifier release."
	default:
		return entitlements.NotFound("action", action)
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/keys", msg)
}

func (s *Handler) staffAudit(c echo.Context) error {
	return s.renderAudit(c, nil)
}

func (s *Handler) renderAudit(c echo.Context, rep *entitlements.ChainReport) error {
	f := entitlements.AuditFilter{Actor: strings.TrimSpace(c.QueryParam("actor")), Action: strings.TrimSpace(c.QueryParam("action")),
		Subject: strings.TrimSpace(c.QueryParam("subject")), Limit: pageSize + 1}
	f.BeforeID, _ = strconv.ParseInt(c.QueryParam("before"), 10, 64)
	v := pages.StaffAudit{Since: strings.TrimSpace(c.QueryParam("since")), Report: rep}
	if v.Since != "" {
		t, err := time.Parse("2006-01-02", v.Since)
		if err != nil {
			return entitlements.Invalid(map[string]string{"since": "a date, e.g. 2026-11-01"})
		}
		f.Since = t
	}
	list, err := s.Svc.ListAudit(c.Request().Context(), f, httpx.Staff(c))
	if err != nil {
		return err
	}
	if len(list) > pageSize {
		list = list[:pageSize]
		q := c.QueryParams()
		q.Set("before", strconv.FormatInt(list[pageSize-1].ID, 10))
		v.NextURL = "/staff/audit?" + q.Encode()
	}
	f.Limit = pageSize
	v.Filter, v.Events = f, list
	return httpx.Render(c, http.StatusOK, pages.StaffAuditList(s.page(c, "Audit trail"), v))
}

// staffAuditVerify recomputes the hash chain and shows the result (the first broken
// link, if any).
func (s *Handler) staffAuditVerify(c echo.Context) error {
	rep, err := s.Svc.VerifyAudit(c.Request().Context(), nil, httpx.Staff(c))
	if err != nil {
		return err
	}
	return s.renderAudit(c, rep)
}
