package portalweb

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/config"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/purchase"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/portal"
	"github.com/metrum/licensing/web/ui"
)

// purchaseRoutes are mounted only when Stripe is configured: without it, purchase is
// hidden everywhere and the portal says to contact sales.
func (s *Handler) purchaseRoutes(pg *echo.Group, a *echo.Group) {
	pg.GET("/evaluate", s.portalEvaluateForm)
	pg.POST("/evaluate", s.portalRequestEvaluation)
	pg.GET("/evaluate/link", s.portalEvaluateConfirm)
	pg.POST("/evaluate/link", s.portalStartEvaluation)
	a.GET("/buy", s.portalBuyPage)
	a.POST("/buy", s.portalBuy)
	a.GET("/orders/:id", s.portalOrder)
}

func price(it config.CatalogueItem) string { return ui.Money(it.Price, it.Currency) }

func (s *Handler) portalBuyPage(c echo.Context) error {
	ctx, p := c.Request().Context(), httpx.Principal(c)
	v := pages.PortalBuy{LicenseID: c.QueryParam("license")}
	var l *entitlements.License
	if v.LicenseID != "" {
		var err error
		if l, err = s.Portal.License(ctx, p, v.LicenseID); err != nil {
			return err
		}
	}
	kind := c.QueryParam("kind")
	items, err := s.Purchase.ItemsFor(ctx, l)
	if err != nil {
		return err
	}
	if l != nil {
		if why := purchase.NotCurrent(l, s.now()); why != nil {
			v.Why = entitlements.ErrorMessage(why)
		}
	}
	for _, it := range items {
		if kind == "" || it.Kind == kind {
			v.Items = append(v.Items, pages.PortalBuyItem{ID: it.ID, Name: it.Name, Price: price(it), Kind: it.Kind})
		}
	}
	return httpx.Render(c, http.StatusOK, pages.PortalBuyPage(s.portalPage(c, "Evaluate or buy"), v))
}

// portalBuy creates the order and its Checkout Session from the catalogue (only the
// item and license IDs come from the form) and sends the browser to Stripe.
func (s *Handler) portalBuy(c echo.Context) error {
	to, _, err := s.Purchase.Buy(c.Request().Context(), httpx.Principal(c), c.FormValue("item"), c.FormValue("license"))
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, to)
}

// portalOrder is the success (and cancel) page: it fulfils a paid session that the
// webhook has not fulfilled yet, and says "payment processing" until the license is
// there.
func (s *Handler) portalOrder(c echo.Context) error {
	res, err := s.Purchase.OrderPage(c.Request().Context(), httpx.Principal(c), c.Param("id"))
	if err != nil {
		return err
	}
	return s.renderOrder(c, res, "")
}

func (s *Handler) renderOrder(c echo.Context, res *purchase.Result, leaseToken string) error {
	o := res.Order
	v := pages.PortalOrderView{ID: o.ID, Item: o.Item, Status: o.Status, LeaseToken: leaseToken,
		Cancelled:  c.QueryParam("cancelled") != "" && o.Status == entitlements.OrderPending,
		Processing: o.Status == entitlements.OrderPending || o.Status == entitlements.OrderProcessing || o.Status == entitlements.OrderPaid,
		Held:       o.Status == entitlements.OrderHeld, Reason: strings.TrimPrefix(o.ReviewReason, "not fulfilled automatically: "),
		Refunded: o.Status == entitlements.OrderRefunded && o.FulfilledLicenseID == "",
		Expired:  o.Status == entitlements.OrderCancelled, ForLicense: o.LicenseID}
	if it, ok := s.Purchase.Item(o.Item); ok {
		v.Item = it.Name
	}
	if res.License != nil {
		v.LicenseID, v.FileName, v.Lease = res.License.ID, res.License.FileName, res.License.Terms.LeaseTTLSeconds > 0
		if leaseToken == "" {
			v.LeaseToken = res.LeaseToken
		}
	}
	pg := s.portalPage(c, "Order "+o.ID)
	if v.Processing && v.LicenseID == "" && !v.Cancelled {
		pg.Refresh = 5
	}
	return httpx.Render(c, http.StatusOK, pages.PortalOrder(pg, v))
}

func (s *Handler) portalEvaluateForm(c echo.Context) error {
	return httpx.Render(c, http.StatusOK, pages.PortalEvaluate(s.portalPage(c, "Start a free evaluation"), "", "", nil))
}

func (s *Handler) portalRequestEvaluation(c echo.Context) error {
	email, company := c.FormValue("email"), c.FormValue("company")
	err := s.Purchase.RequestEvaluation(c.Request().Context(), email, company, c.RealIP())
	var de *entitlements.Error
	if errors.As(err, &de) && de.Code == entitlements.EINVALID {
		return httpx.Render(c, http.StatusBadRequest, pages.PortalEvaluate(s.portalPage(c, "Start a free evaluation"), email, company, de.Fields))
	}
	if err != nil {
		return err
	}
	return httpx.Render(c, http.StatusOK, pages.PortalLinkSent(s.portalPage(c, "Check your mail")))
}

func (s *Handler) portalEvaluateConfirm(c echo.Context) error {
	tok := c.QueryParam("token")
	req, err := s.Purchase.PeekEvaluation(c.Request().Context(), tok)
	if err != nil {
		return err
	}
	return httpx.Render(c, http.StatusOK, pages.PortalEvaluateConfirm(s.portalPage(c, "Start the evaluation"), req.Email, req.Company, tok))
}

// portalStartEvaluation spends the link: account, customer and license in one go,
// then the order page with the lease token shown once (rendered, not redirected: it
// exists only in this response).
func (s *Handler) portalStartEvaluation(c echo.Context) error {
	sess, res, err := s.Purchase.StartEvaluation(c.Request().Context(), c.FormValue("token"))
	if err != nil {
		return err
	}
	s.Cookies.Set(c, portalCookie, sess, http.SameSiteLaxMode, time.Now().Add(entitlements.PortalAbsoluteTTL), 0)
	httpx.BindCSRF(c, sess)
	// The new session's user, for the page frame.
	if p, u, err := s.Portal.Session(c.Request().Context(), sess, c.RealIP()); err == nil {
		httpx.SetPrincipal(c, p)
		c.Set("portal_user", u)
	}
	return s.renderOrder(c, res, res.LeaseToken)
}
