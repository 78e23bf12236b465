package metering

import (
	"context"
	"encoding/csv"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/storage"
)

// DefaultDays is how many days a usage page plots.
const DefaultDays = 90

// MaxDays is the longest range a page or an export covers.
const MaxDays = 366

// LicenseUsage is one license's usage page for staff (viewers and above).
func (s *Service) LicenseUsage(ctx context.Context, licenseID string, days int, by *entitlements.Staff) (*entitlements.UsageOverview, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading usage"); err != nil {
		return nil, err
	}
	if !entitlements.ValidID(entitlements.PrefixLicense, licenseID) {
		return nil, entitlements.NotFound("license", licenseID)
	}
	l, err := s.store.GetLicense(ctx, licenseID)
	if err != nil {
		return nil, err
	}
	return s.overview(ctx, l, days)
}

// CustomerUsage is one of the principal's customer's licenses' usage page: another
// customer's license is not found, exactly like a missing one.
func (s *Service) CustomerUsage(ctx context.Context, p *entitlements.Principal, licenseID string, days int) (*entitlements.UsageOverview, error) {
	if p == nil {
		return nil, entitlements.Errorf(entitlements.EUNAUTHORIZED, "not signed in")
	}
	if !entitlements.ValidID(entitlements.PrefixLicense, licenseID) {
		return nil, entitlements.NotFound("license", licenseID)
	}
	l, err := s.store.CustomerLicense(ctx, p.CustomerID, licenseID)
	if err != nil {
		return nil, err
	}
	return s.overview(ctx, l, days)
}

func (s *Service) overview(ctx context.Context, l *entitlements.License, days int) (*entitlements.UsageOverview, error) {
	if days <= 0 || days > MaxDays {
		days = DefaultDays
	}
	now := s.now()
	t, err := s.store.UsageTotals(ctx, l.ID)
	if err != nil {
		return nil, err
	}
	// The license's own terms say its budget, whether it has reported or not.
	t.CustomerID = l.CustomerID
	t.Budget, t.Window = entitlements.UsageBudgetOf(l.Terms.Limits)
	t.Used = t.Tokens
	if t.Window > 0 {
		if t.Used, err = s.store.UsageWindowTokens(ctx, l.ID, entitlements.UsageWindowFrom(now, t.Window)); err != nil {
			return nil, err
		}
	}
	o := &entitlements.UsageOverview{License: l, Totals: *t, Now: now}
	if o.Chains, err = s.store.UsageChains(ctx, l.ID, 200); err != nil {
		return nil, err
	}
	// The plot covers the last `days` days, from the license's start (or its first
	// report, if earlier) when that is later, and two weeks at least.
	to := now.Truncate(24 * time.Hour)
	from, start := to.AddDate(0, 0, 1-days), l.NotBefore
	for _, c := range o.Chains {
		if c.FirstStart.Before(start) {
			start = c.FirstStart
		}
	}
	if start = entitlements.UsageDayOf(start.Add(time.Second)); start.After(from) {
		from = start
	}
	if from.After(to.AddDate(0, 0, -13)) {
		from = to.AddDate(0, 0, -13)
	}
	if o.Days, err = s.store.UsageDays(ctx, l.ID, from, to); err != nil {
		return nil, err
	}
	if o.Incidents, err = s.store.UsageIncidents(ctx, l.ID, 50); err != nil {
		return nil, err
	}
	if o.Warnings, err = s.store.UsageWarnings(ctx, l.ID, 10); err != nil {
		return nil, err
	}
	return o, nil
}

// Alerts is the staff dashboard's usage line (viewers and above).
func (s *Service) Alerts(ctx context.Context, by *entitlements.Staff) (*entitlements.UsageAlerts, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading usage"); err != nil {
		return nil, err
	}
	if a := s.alerts.get(); a != nil {
		return a, nil
	}
	gen := s.alerts.generation()
	a := &entitlements.UsageAlerts{}
	var err error
	if a.Past80, a.Past100, err = s.store.UsageAlertCounts(ctx); err != nil {
		return nil, err
	}
	if a.Top, err = s.store.UsagePast(ctx, 800, 5); err != nil {
		return nil, err
	}
	if a.Recent, err = s.store.UsageWarnings(ctx, "", 5); err != nil {
		return nil, err
	}
	s.alerts.put(gen, a)
	return a, nil
}

// alertsFresh is how long this replica keeps the dashboard's usage line: counting
// every license past 80 % costs tens of milliseconds with tens of thousands of them.
// A batch that records a crossing, and the rolling windows' refresh, forget it at
// once; a budget changed by a top-up shows within alertsFresh.
const alertsFresh = 15 * time.Second

// alertCache keeps the dashboard's usage line. gen counts forgets, so a read that
// began before one never stores what it read.
type alertCache struct {
	mu  sync.Mutex
	gen uint64
	at  time.Time
	a   *entitlements.UsageAlerts
}

func (c *alertCache) get() *entitlements.UsageAlerts {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.a == nil || time.Since(c.at) > alertsFresh {
		return nil
	}
	return c.a
}

func (c *alertCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *alertCache) put(gen uint64, a *entitlements.UsageAlerts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.a, c.at = a, time.Now()
	}
}

func (c *alertCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.a = nil
}

// Past lists the licenses at or past minPercent (80 at least) of their budget, and
// the latest warnings (viewers and above).
func (s *Service) Past(ctx context.Context, minPercent int, limit int, by *entitlements.Staff) ([]entitlements.UsageLicenseRow, []entitlements.UsageWarning, error) {
	if err := entitlements.Require(by, entitlements.NeedRead, "reading usage"); err != nil {
		return nil, nil, err
	}
	rows, err := s.store.UsagePast(ctx, int64(max(minPercent, 80))*10, limit)
	if err != nil {
		return nil, nil, err
	}
	ws, err := s.store.UsageWarnings(ctx, "", 50)
	return rows, ws, err
}

// CSVHeader is the billing export's first line.
var CSVHeader = []string{"day", "license_id", "customer_id", "sku", "tokens", "requests", "reports", "instances"}

// DailyCSV writes a license's daily usage from `from` through `to` (UTC days; at most
// MaxDays) as CSV for billing: one line per day that has reports (viewers and above).
func (s *Service) DailyCSV(ctx context.Context, w io.Writer, licenseID string, from, to time.Time, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.NeedRead, "exporting usage"); err != nil {
		return err
	}
	if !entitlements.ValidID(entitlements.PrefixLicense, licenseID) {
		return entitlements.NotFound("license", licenseID)
	}
	from, to = from.UTC().Truncate(24*time.Hour), to.UTC().Truncate(24*time.Hour)
	if to.Before(from) || to.Sub(from) >= MaxDays*24*time.Hour { // from and to both count
		return entitlements.Invalid(map[string]string{"to": "a range of 1 to 366 days, from before to"})
	}
	l, err := s.store.GetLicense(ctx, licenseID)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	err = s.store.UsageDailyRows(ctx, l.ID, from, to, func(r storage.UsageCSVRow) error {
		return cw.Write([]string{r.Day.Format(time.DateOnly), l.ID, l.CustomerID, l.SKU, i64(r.Tokens), i64(r.Requests), i64(r.Reports), i64(r.Instances)})
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}
