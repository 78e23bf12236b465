package staffweb

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/metering"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/staff"
	"github.com/metrum/licensing/web/ui"
)

// staffUsageRoutes: a license's usage page and its billing CSV, and the licenses past
// 80 % of their budget (only with usage metering on).
func (s *Handler) staffUsageRoutes(a *echo.Group) {
	if s.Usage == nil {
		return
	}
	a.GET("/usage", s.staffUsageList)
	a.GET("/licenses/:id/usage", s.staffUsage)
	a.GET("/licenses/:id/usage.csv", s.staffUsageCSV)
}

func (s *Handler) staffUsage(c echo.Context) error {
	days, _ := strconv.Atoi(c.QueryParam("days"))
	o, err := s.Usage.LicenseUsage(c.Request().Context(), c.Param("id"), days, httpx.Staff(c))
	if err != nil {
		return err
	}
	v := ui.UsageViewOf(o)
	return httpx.Render(c, http.StatusOK, pages.StaffUsage(s.page(c, "Usage of "+o.License.ID), v, "/staff/licenses/"+o.License.ID+"/usage.csv"))
}

// staffUsageCSV is the billing export: one line per day with reports, from `from`
// through `to` (YYYY-MM-DD, UTC; default the last 90 days).
func (s *Handler) staffUsageCSV(c echo.Context) error {
	to := s.now().UTC().Truncate(24 * time.Hour)
	from := to.AddDate(0, 0, 1-metering.DefaultDays)
	f := map[string]string{}
	for name, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := c.QueryParam(name); v != "" {
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				f[name] = "a day as YYYY-MM-DD"
			}
			*dst = t
		}
	}
	if err := entitlements.Invalid(f); err != nil {
		return err
	}
	id := c.Param("id")
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="usage-`+id+`-`+from.Format(time.DateOnly)+`-`+to.Format(time.DateOnly)+`.csv"`)
	// The CSV is written as it is read; an error before the first byte is still a
	// proper error page (the buffer holds the header line until then).
	w := &lazyWriter{c: c}
	if err := s.Usage.DailyCSV(c.Request().Context(), w, id, from, to, httpx.Staff(c)); err != nil {
		if !w.started {
			h.Del("Content-Disposition")
			return err
		}
		s.Log.ErrorContext(c.Request().Context(), "usage CSV cut short", "license_id", id, "err", err)
	}
	return w.flush()
}

// lazyWriter holds what is written until the first write after the header line, so
// that a refusal (not found, forbidden) is still answered as an error.
type lazyWriter struct {
	c       echo.Context
	buf     []byte
	started bool
}

func (w *lazyWriter) Write(p []byte) (int, error) {
	if w.started {
		return w.c.Response().Write(p)
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) < 64<<10 {
		return len(p), nil
	}
	return len(p), w.flush()
}

func (w *lazyWriter) flush() error {
	if !w.started {
		w.started = true
		w.c.Response().WriteHeader(http.StatusOK)
	}
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.c.Response().Write(w.buf)
	w.buf = nil
	return err
}

func (s *Handler) staffUsageList(c echo.Context) error {
	rows, ws, err := s.Usage.Past(c.Request().Context(), 80, 200, httpx.Staff(c))
	if err != nil {
		return err
	}
	return httpx.Render(c, http.StatusOK, pages.StaffUsageList(s.page(c, "Usage"), rows, ws))
}

// withUsageAlerts puts the dashboard's usage line into the request's context, where
// the dashboard's UsageAlertsLine reads it (nothing without usage metering).
func (s *Handler) withUsageAlerts(c echo.Context) {
	if s.Usage == nil {
		return
	}
	ctx := c.Request().Context()
	a, err := s.Usage.Alerts(ctx, httpx.Staff(c))
	v := pages.UsageAlertsView{Alerts: a}
	if err != nil {
		v.Err = entitlements.ErrorMessage(err)
	}
	c.SetRequest(c.Request().WithContext(pages.WithUsageAlerts(ctx, v)))
}
