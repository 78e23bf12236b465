package portalweb

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/portal"
	"github.com/metrum/licensing/web/ui"
)

// portalPageSize is the portal's license list page.
const portalPageSize = 50

func portalInstall(a entitlements.InstallAdvice) pages.PortalInstall {
	pi := pages.PortalInstall{Product: a.Product, Head: a.Head.ID, HeadSKU: a.Head.SKU, Why: a.Why}
	if a.Install != nil {
		pi.LicenseID, pi.SKU = a.Install.ID, a.Install.SKU
	}
	return pi
}

func (s *Handler) portalLicenses(c echo.Context) error {
	list, next, err := s.Portal.Licenses(c.Request().Context(), httpx.Principal(c), c.QueryParam("after"), portalPageSize)
	if err != nil {
		return err
	}
	now := s.now()
	v := pages.PortalLicenses{}
	for _, l := range list {
		v.Rows = append(v.Rows, ui.LicenseRowOf(l, now))
	}
	advice, err := s.Portal.InstallAdvice(c.Request().Context(), httpx.Principal(c))
	if err != nil {
		return err
	}
	for _, a := range advice {
		v.Install = append(v.Install, portalInstall(a))
	}
	if next != "" {
		v.NextURL = "/portal/?" + url.Values{"after": {next}}.Encode()
	}
	return httpx.Render(c, http.StatusOK, pages.PortalLicenseList(s.portalPage(c, "Your licenses"), v))
}

func (s *Handler) portalLicense(c echo.Context) error {
	ctx, p := c.Request().Context(), httpx.Principal(c)
	l, err := s.Portal.License(ctx, p, c.Param("id"))
	if err != nil {
		return err
	}
	now := s.now()
	v := pages.PortalLicense{Row: ui.LicenseRowOf(l, now), CustomerID: l.CustomerID, KeyID: l.KeyID, IssuedAt: ui.Day(l.IssuedAt),
		NotBefore: ui.Day(l.NotBefore), FileName: entitlements.BrowserFileName(l, l.FileName), FileSHA256: fmt.Sprintf("%x", l.FileSHA256), Supersedes: l.Supersedes,
		SupersededBy: l.SupersededBy, LeaseRequired: l.Terms.LeaseTTLSeconds > 0,
		RenewURL: "/portal/buy?kind=renewal&license=" + l.ID, TopUpURL: "/portal/buy?kind=top-up&license=" + l.ID,
		MaxInstances: "any number of", ReleaseBudget: "unlimited", Installable: l.StateAt(now).Installable(),
		Lease: ui.LeaseText(l.Terms.LeaseTTLSeconds), Grace: ui.GraceText(l.Terms.GracePeriodSeconds), Instance: ui.InstanceText(l.Terms.InstanceFingerprint)}
	if !v.Installable {
		a, ok, err := s.Portal.LineAdvice(ctx, p, l)
		if err != nil {
			return err
		}
		if ok {
			v.Advice = portalInstall(a)
		} else {
			v.Advice.Why = "It has no current successor to install. Contact Metrum support."
		}
	}
	if s.Purchase != nil {
		items, err := s.Purchase.ItemsFor(ctx, l)
		if err != nil {
			return err
		}
		for _, it := range items {
			v.SelfService = true
			if it.Kind == entitlements.OrderRenewal {
				v.CanRenew = true
			}
			if it.Kind == entitlements.OrderTopUp {
				v.CanTopUp = true
			}
		}
	}
	if s.Portal.HasBundle(ctx, l.Product) {
		v.HasBundle = true
	}
	if max, ok := l.Terms.Limits["max_instances"]; ok {
		v.MaxInstances = ui.Count(max)
		v.ReleaseBudget = v.MaxInstances
	}
	if b, ok := l.Terms.Limits["release_budget"]; ok {
		v.ReleaseBudget = ui.Count(b)
	}
	if v.LeaseRequired {
		slots, err := s.Portal.Leases(ctx, p, l.ID)
		if err != nil {
			return err
		}
		for _, sl := range slots {
			v.Leases = append(v.Leases, ui.LeaseRowOf(sl, now))
		}
	}
	return httpx.Render(c, http.StatusOK, pages.PortalLicenseDetail(s.portalPage(c, l.ID), v))
}

// portalDownload delivers a license's file, summary, checklist or its product's
// current revocation bundle; every delivery is recorded before it is sent.
func (s *Handler) portalDownload(c echo.Context) error {
	ctx, p, id := c.Request().Context(), httpx.Principal(c), c.Param("id")
	if c.Param("what") == entitlements.WhatBundle {
		b, err := s.Portal.Bundle(ctx, p, id)
		if err != nil {
			return err
		}
		return httpx.SendFile(c, &entitlements.File{Bytes: b.File, Name: fmt.Sprintf("revocation-%s-%d.json", b.Product, b.Sequence)}, "application/json")
	}
	f, err := s.Portal.Download(ctx, p, id, c.Param("what"))
	if err != nil {
		return err
	}
	return httpx.SendBrowserFile(c, f)
}

func (s *Handler) portalReleaseConfirm(c echo.Context) error {
	ctx, p, id, lease := c.Request().Context(), httpx.Principal(c), c.Param("id"), c.Param("lease_id")
	slots, err := s.Portal.Leases(ctx, p, id)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(slots, func(sl *entitlements.Lease) bool { return sl.LeaseID == lease })
	if i < 0 {
		return entitlements.NotFound("lease", lease)
	}
	explain := fmt.Sprintf("Host %s will not be able to renew lease %s. The lease it holds stays valid until %s. "+
		"If this license's release budget is used up, the slot stays taken until then.", slots[i].Fingerprint, lease, ui.Day(slots[i].ExpiresAt))
	return httpx.Render(c, http.StatusOK, pages.PortalConfirm(s.portalPage(c, "Release a lease"), "Release the lease of "+slots[i].Fingerprint+"?",
		explain, licenseURL(id)+"/leases/"+url.PathEscape(lease)+"/release", "Release", licenseURL(id)))
}

func (s *Handler) portalRelease(c echo.Context) error {
	id, lease := c.Param("id"), c.Param("lease_id")
	res, err := s.Portal.ReleaseLease(c.Request().Context(), httpx.Principal(c), id, lease)
	if err != nil {
		return err
	}
	msg := "Lease " + lease + " was already released."
	switch {
	case res.Released && res.Freed:
		msg = "Lease " + lease + " released; its slot is free now."
	case res.Released:
		msg = "Lease " + lease + " released. The release budget is used up, so its slot stays taken until " + ui.Day(res.ExpiresAt) + "."
	}
	return s.Cookies.RedirectWithFlash(c, licenseURL(id), msg)
}

func (s *Handler) portalRotateConfirm(c echo.Context) error {
	l, err := s.Portal.License(c.Request().Context(), httpx.Principal(c), c.Param("id"))
	if err != nil {
		return err
	}
	if l.Terms.LeaseTTLSeconds == 0 {
		return entitlements.Errorf(entitlements.ECONFLICT, "license %s does not use online leases", l.ID)
	}
	return httpx.Render(c, http.StatusOK, pages.PortalConfirm(s.portalPage(c, "Rotate the lease token"), "Rotate the lease token of "+l.ID+"?",
		"The current token stops working at once on every host: each one needs the new token to renew its lease. The new token is shown once.",
		licenseURL(l.ID)+"/lease-token", "Rotate the token", licenseURL(l.ID)))
}

func (s *Handler) portalRotate(c echo.Context) error {
	id := c.Param("id")
	tok, err := s.Portal.RotateLeaseToken(c.Request().Context(), httpx.Principal(c), id)
	if err != nil {
		return err
	}
	return s.showSecret(c, httpx.SecretView{Title: "New lease token for " + id,
		Explain: "Give it to every host that runs this license (the router sends it as a Bearer token to renew its lease). The old token no longer works.",
		Secret:  tok, Back: licenseURL(id), Again: "Rotate the lease token again on the license's page to get a new one (the old one stops working)."})
}
