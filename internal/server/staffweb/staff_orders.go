package staffweb

import (
	"context"
	"errors"
	"maps"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/staff"
	"github.com/metrum/licensing/web/ui"
)

func (s *Handler) staffOrderRoutes(a *echo.Group) {
	a.GET("/orders", s.staffOrders)
	a.GET("/orders/:id", s.staffOrder)
	a.POST("/orders/:id/fulfil", s.staffOrderFulfil)
	a.POST("/orders/:id/refund", s.staffOrderRefund)
	a.POST("/orders/:id/review", s.staffOrderReview)
}

// staffOrders is the queue of self-service orders that need a person, and the
// Stripe events that matched no order.
func (s *Handler) staffOrders(c echo.Context) error {
	ctx, by := c.Request().Context(), httpx.Staff(c)
	v := pages.StaffOrders{Off: s.Shop == nil}
	if s.Shop != nil {
		list, err := s.Svc.OrderQueue(ctx, 500, by)
		if err != nil {
			return err
		}
		names := map[string]string{}
		for _, o := range list {
			v.Queue = append(v.Queue, s.orderRow(ctx, o, by, names))
		}
		if v.Unmatched, err = s.Shop.Unmatched(ctx, 200, by); err != nil {
			return err
		}
	}
	return httpx.Render(c, http.StatusOK, pages.StaffOrderQueue(s.page(c, "Order queue"), v))
}

// orderRow is an order for a list or page, with its customer's name (looked up once
// per customer through names).
func (s *Handler) orderRow(ctx context.Context, o *entitlements.Order, by *entitlements.Staff, names map[string]string) pages.OrderRow {
	name, ok := names[o.CustomerID]
	if !ok {
		name = o.CustomerID
		if c, err := s.Svc.GetCustomer(ctx, o.CustomerID, by); err == nil {
			name = c.Name
		}
		names[o.CustomerID] = name
	}
	item := o.Item
	if s.Shop != nil {
		if it, ok := s.Shop.Item(o.Item); ok {
			item = it.Name
		}
	}
	return pages.OrderRow{ID: o.ID, Status: o.Status, Kind: o.Kind, Item: item, CustomerID: o.CustomerID, CustomerName: name,
		Amount: ui.Money(o.Amount, o.Currency), LicenseID: o.LicenseID, FulfilledLicenseID: o.FulfilledLicenseID, Reason: o.ReviewReason,
		Updated: ui.Day(o.UpdatedAt)}
}

func (s *Handler) staffOrder(c echo.Context) error {
	return s.renderOrder(c, http.StatusOK, pages.OrderForm{})
}

// renderOrder renders an order's page, with the form values and errors of a refused
// action when there is one.
func (s *Handler) renderOrder(c echo.Context, status int, form pages.OrderForm) error {
	ctx, by := c.Request().Context(), httpx.Staff(c)
	id := c.Param("id")
	if !entitlements.ValidID(entitlements.PrefixOrder, id) {
		return entitlements.NotFound("order", id)
	}
	o, err := s.Svc.GetOrder(ctx, id, by)
	if err != nil {
		return err
	}
	v := pages.StaffOrder{Row: s.orderRow(ctx, o, by, map[string]string{}), Held: o.Status == entitlements.OrderHeld && s.Shop != nil,
		ReviewedBy: o.ReviewedBy, Form: form}
	v.Queued = !v.Held && o.ReviewReason != "" && o.ReviewedBy == ""
	if o.FulfilledLicenseID != "" && o.ReviewReason != "" {
		if l, err := s.Svc.GetLicense(ctx, o.FulfilledLicenseID, by); err == nil && l.Supersedes != "" && !l.SupersessionLifted &&
			(l.Status == entitlements.LicenseSuspended || l.Status == entitlements.LicenseRevoked) {
			v.RestoreFrom = l.ID
		}
	}
	return httpx.Render(c, status, pages.StaffOrderPage(s.page(c, "Order "+o.ID), v))
}

// refused re-renders the order page with a refusal's message, keeping what was typed;
// anything that is not a refusal goes to the error page.
func (s *Handler) refused(c echo.Context, err error, form pages.OrderForm) error {
	code := entitlements.ErrorCode(err)
	if code != entitlements.EINVALID && code != entitlements.ECONFLICT {
		return err
	}
	form.Errors = map[string]string{"form": entitlements.ErrorMessage(err)}
	var de *entitlements.Error
	if errors.As(err, &de) && len(de.Fields) > 0 {
		form.Errors = maps.Clone(de.Fields)
		form.Errors["form"] = "Nothing was done: check the fields below."
	}
	status := http.StatusConflict
	if code == entitlements.EINVALID {
		status = http.StatusUnprocessableEntity
	}
	return s.renderOrder(c, status, form)
}

func (s *Handler) staffOrderFulfil(c echo.Context) error {
	if s.Shop == nil {
		return entitlements.Errorf(entitlements.ENOTFOUND, "self-service purchase is off on this issuer")
	}
	id := c.Param("id")
	form := pages.OrderForm{LicenseID: c.FormValue("license"), Note: c.FormValue("note")}
	res, err := s.Shop.FulfilByHand(c.Request().Context(), id, form.LicenseID, form.Note, httpx.Staff(c))
	if err != nil {
		return s.refused(c, err, form)
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/orders/"+id, "Order "+id+" fulfilled: license "+res.License.ID+" issued; the customer sees it in the portal.")
}

func (s *Handler) staffOrderRefund(c echo.Context) error {
	if s.Shop == nil {
		return entitlements.Errorf(entitlements.ENOTFOUND, "self-service purchase is off on this issuer")
	}
	id := c.Param("id")
	form := pages.OrderForm{Note: c.FormValue("note")}
	if c.FormValue("confirm") != "yes" {
		return s.refused(c, entitlements.Invalid(map[string]string{"confirm": "tick the box to confirm the refund"}), form)
	}
	o, err := s.Shop.RefundHeld(c.Request().Context(), id, form.Note, httpx.Staff(c))
	if err != nil {
		return s.refused(c, err, form)
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/orders/"+id, "Order "+id+" refunded ("+ui.Money(o.Amount, o.Currency)+"); nothing was issued.")
}

func (s *Handler) staffOrderReview(c echo.Context) error {
	id := c.Param("id")
	form := pages.OrderForm{Note: c.FormValue("note")}
	if err := s.Svc.ReviewOrder(c.Request().Context(), id, form.Note, httpx.Staff(c)); err != nil {
		return s.refused(c, err, form)
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/orders", "Order "+id+" reviewed and out of the queue.")
}
