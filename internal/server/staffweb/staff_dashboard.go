package staffweb

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/staff"
	"github.com/metrum/licensing/web/ui"
)

// weekStart is Postgres's date_trunc('week', t) in UTC: Monday 00:00.
func weekStart(t time.Time) time.Time {
	d := t.UTC().Truncate(24 * time.Hour)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

// dense spreads buckets over n consecutive periods from start (missing ones are 0).
func dense(bs []entitlements.Bucket, start time.Time, step func(time.Time, int) time.Time, n int) []int64 {
	byAt := map[int64]int64{}
	for _, b := range bs {
		byAt[b.At.UTC().Unix()] = b.Count
	}
	out := make([]int64, n)
	for i := range n {
		out[i] = byAt[step(start, i).Unix()]
	}
	return out
}

func weeks(t time.Time, i int) time.Time { return t.AddDate(0, 0, 7*i) }
func hours(t time.Time, i int) time.Time { return t.Add(time.Duration(i) * time.Hour) }

func (s *Handler) staffDashboard(c echo.Context) error {
	ctx := c.Request().Context()
	v := pages.Dashboard{Days: 30}
	if asked := c.QueryParam("days"); asked != "" {
		days, err := strconv.Atoi(asked)
		if err != nil || days < 1 || days > 365 {
			// Said beside the field, with what was typed; the list stays at 30 days.
			v.DaysAsked, v.DaysError = asked, "a whole number of days from 1 to 365: showing 30"
		} else {
			v.Days = days
		}
	}
	days := v.Days
	var err error
	if v.Expiring, err = s.Svc.Expiring(ctx, "", time.Duration(days)*24*time.Hour, 50); err != nil {
		return err
	}
	if v.Drafts, err = s.Svc.ListEntitlements(ctx, entitlements.EntitlementFilter{State: entitlements.StateDraft, Limit: 10}, httpx.Staff(c)); err != nil {
		return err
	}
	if v.DraftCount, err = s.Svc.CountDrafts(ctx, httpx.Staff(c)); err != nil {
		return err
	}
	now := s.now()
	bundles, err := s.Svc.LatestBundles(ctx, httpx.Staff(c))
	if err != nil {
		return err
	}
	for _, b := range bundles {
		state := "current"
		switch {
		case !b.ExpiresAt.After(now):
			state = "EXPIRED: publish now"
		case b.ExpiresAt.Sub(now) < 24*time.Hour:
			state = "expires within a day"
		}
		v.Bundles = append(v.Bundles, pages.DashBundle{Product: b.Product, Sequence: strconv.FormatInt(b.Sequence, 10), ExpiresAt: ui.Day(b.ExpiresAt), State: state})
	}
	keys, err := s.Svc.ListKeys(ctx, httpx.Staff(c))
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.NotAfter != nil && k.Status == "published" && k.NotAfter.Sub(now) < 30*24*time.Hour {
			v.Keys = append(v.Keys, pages.DashKey{KID: k.KID, Product: k.Product, Purposes: strings.Join(k.Purposes, ","), NotAfter: ui.Day(*k.NotAfter)})
		}
	}
	version, err := s.Svc.ChangeVersion(ctx, httpx.Staff(c))
	if err != nil {
		return err
	}
	charts, err := s.charts.get(now, version, func() ([]ui.Chart, error) { return s.dashboardCharts(c, now) })
	if err != nil {
		return err
	}
	v.Charts = charts
	s.withUsageAlerts(c)
	status := http.StatusOK
	if v.DaysError != "" {
		status = http.StatusUnprocessableEntity
	}
	return httpx.Render(c, status, pages.StaffDashboard(s.page(c, "Dashboard"), v))
}

// dashboardCharts: expiries per week for the next 26 weeks, licenses issued per week
// for the last 26, lease grants and refusals per hour for the last 7 days.
func (s *Handler) dashboardCharts(c echo.Context, now time.Time) ([]ui.Chart, error) {
	ctx := c.Request().Context()
	counts, err := s.Svc.DashboardCounts(ctx, 26, 7*24, httpx.Staff(c))
	if err != nil {
		return nil, err
	}
	exp, iss, grants, refusals := counts.ExpiriesPerWeek, counts.IssuedPerWeek, counts.LeaseGrants, counts.LeaseRefusals
	thisWeek := weekStart(now)
	weekLabels := func(start time.Time) []string {
		out := make([]string, 26)
		for i := range out {
			out[i] = weeks(start, i).Format("Jan 2")
		}
		return out
	}
	firstIssued := weeks(thisWeek, -25)
	firstHour := now.UTC().Truncate(time.Hour).Add(-167 * time.Hour)
	hourLabels := make([]string, 168)
	for i := range hourLabels {
		hourLabels[i] = hours(firstHour, i).Format("Mon 15h")
	}
	return []ui.Chart{
		{ID: "chart-expiries", Title: "Active licenses expiring, per week (next 26 weeks)", Labels: weekLabels(thisWeek), LabelEvery: 4,
			Series: []ui.Series{{Name: "expiring", Class: "bar-a", Values: dense(exp, thisWeek, weeks, 26)}}},
		{ID: "chart-issued", Title: "Licenses issued, per week (last 26 weeks)", Labels: weekLabels(firstIssued), LabelEvery: 4,
			Series: []ui.Series{{Name: "issued", Class: "bar-c", Values: dense(iss, firstIssued, weeks, 26)}}},
		{ID: "chart-leases", Title: "Lease grants and refusals, per hour (last 7 days)", Labels: hourLabels, LabelEvery: 24,
			Series: []ui.Series{{Name: "granted or renewed", Class: "bar-a", Values: dense(grants, firstHour, hours, 168)},
				{Name: "refused", Class: "bar-b", Values: dense(refusals, firstHour, hours, 168)}}},
	}, nil
}

// chartTTL is how long the dashboard's plots are reused while nothing was recorded in
// the audit trail: the license plots scan most of the licenses table (tens of ms at
// 100,000 licenses), and the hourly lease plot need not be newer than a minute.
const chartTTL = time.Minute

// chartCache keeps the dashboard's plots for chartTTL, or until the audit trail moves
// on (a license issued, revoked, renewed…: staff see their own change at once). One
// computation at a time.
type chartCache struct {
	mu      sync.Mutex
	at      time.Time
	version int64
	charts  []ui.Chart
}

func (cc *chartCache) get(now time.Time, version int64, compute func() ([]ui.Chart, error)) ([]ui.Chart, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.charts != nil && cc.version == version && now.Sub(cc.at) < chartTTL {
		return cc.charts, nil
	}
	charts, err := compute()
	if err != nil {
		return nil, err
	}
	cc.charts, cc.at, cc.version = charts, now, version
	return charts, nil
}
