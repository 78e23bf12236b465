package staffweb

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/staff"
	"github.com/metrum/licensing/web/ui"
)

// downloadLicense serves a license's exact stored bytes (file), its safe summary or
// its operator checklist, recorded as a delivery by staff first.
func (s *Handler) downloadLicense(c echo.Context) error {
	f, err := s.Svc.StaffDownload(c.Request().Context(), c.Param("id"), c.Param("what"), c.RealIP(), httpx.Staff(c))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return httpx.SendBrowserFile(c, f)
}

// historyPage is how many deliveries and lease events a license page shows at once.
const historyPage = 50

func (s *Handler) staffLicense(c echo.Context) error {
	ctx, by := c.Request().Context(), httpx.Staff(c)
	l, err := s.Svc.GetLicense(ctx, c.Param("id"), by)
	if err != nil {
		return err
	}
	now := s.now()
	st := l.StateAt(now)
	v := pages.StaffLicense{License: l, Status: st.Status, StatusLabel: st.Label(), Terms: ui.TermsOf(l.Terms), Lease: l.Terms.LeaseTTLSeconds > 0}
	if l.Supersedes != "" {
		if prev, err := s.Svc.GetLicense(ctx, l.Supersedes, by); err == nil {
			v.CanRestorePrevious = entitlements.CanRestorePrevious(l, prev, now, by, "?") == nil
		}
	}
	if v.Pending, err = s.Svc.OpenSuccessor(ctx, l.ID, by); err != nil && entitlements.ErrorCode(err) != entitlements.ENOTFOUND {
		return err
	}
	if entitlements.PermissionsOf(by).Issue {
		switch err := l.CanOpenSuccessor(entitlements.KindRenewal, now); {
		case v.Pending != nil:
			v.NoSuccessorWhy = "Renew, replace and top up come back once the open " + v.Pending.Kind + " is issued, rejected or cancelled."
		case l.SupersededBy != "":
			v.NoSuccessorWhy = "It is replaced: renew, replace or top up the license that replaced it."
		case err != nil:
			msg := entitlements.ErrorMessage(err)
			v.NoSuccessorWhy = strings.ToUpper(msg[:1]) + msg[1:] + "."
		default:
			v.Offer = successorOffers(l, now)
		}
	}
	base := "/staff/licenses/" + l.ID
	before := func(param string) int64 { n, _ := strconv.ParseInt(c.QueryParam(param), 10, 64); return max(n, 0) }
	if v.Downloads, err = s.Svc.ListDownloads(ctx, l.ID, before("deliveries_before"), historyPage+1, by); err != nil {
		return err
	}
	if len(v.Downloads) > historyPage {
		v.Downloads = v.Downloads[:historyPage]
		v.DownloadsNext = base + "?deliveries_before=" + strconv.FormatInt(v.Downloads[historyPage-1].ID, 10) + "#downloads"
	}
	if v.Lease {
		slots, err := s.Svc.ListLeases(ctx, l.ID, by)
		if err != nil {
			return err
		}
		for _, sl := range slots {
			r := ui.LeaseRowOf(sl, now)
			v.Leases = append(v.Leases, pages.StaffLease{LeaseID: r.LeaseID, Fingerprint: r.Fingerprint, RenewedAt: r.RenewedAt, ExpiresAt: r.ExpiresAt, State: r.State})
		}
		events, err := s.Svc.ListLeaseEvents(ctx, l.ID, before("history_before"), historyPage+1, by)
		if err != nil {
			return err
		}
		if len(events) > historyPage {
			events = events[:historyPage]
			v.HistoryNext = base + "?history_before=" + strconv.FormatInt(events[historyPage-1].ID, 10) + "#lease-history"
		}
		for _, ev := range events {
			v.History = append(v.History, pages.StaffLeaseEvent{At: ui.Day(ev.At), Fingerprint: ev.Fingerprint, Outcome: ev.Outcome, Reason: ev.Reason})
		}
	}
	return httpx.Render(c, http.StatusOK, pages.StaffLicenseDetail(s.page(c, l.ID), v))
}
