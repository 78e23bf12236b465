package ui

import (
	"fmt"
	"strconv"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// UsageView is one license's usage as the console and the portal show it: the budget
// bar, the daily plot with its numbers, the instances, the flags.
type UsageView struct {
	LicenseID, Product, SKU, CustomerName string
	HasBudget                             bool
	// Used and Budget are token counts with separators; Basis says what Used covers
	// ("over the license's term", "in the rolling 30 days").
	Used, Budget, Basis string
	Percent             string // "82 %"
	// Fill is the bar's used width (of 100, capped); Level is ok, warn (≥ 80 %) or
	// over (≥ 100 %).
	Fill, Level  string
	Past80       bool
	Tokens       string // over the term, all instances
	Requests     string
	Reports      string
	LastReport   string
	Chart        Chart
	Chains       []UsageChainRow
	Incidents    []UsageIncidentRow
	Warnings     []string
	Flags        []UsageFlag
	NoReportsYet bool
}

// UsageFlag is one of the license's flags and what it means.
type UsageFlag struct{ Name, Explain string }

// UsageChainRow is one instance (one host's chain).
type UsageChainRow struct {
	InstanceID, Fingerprint, Reporter, KeyID string
	LastSeq, Period, FirstStart, LastEnd     string
	LastReport, Tokens, Requests             string
	Flags                                    []string
}

// UsageIncidentRow is one recorded fork or gap.
type UsageIncidentRow struct {
	InstanceID, Kind, Seq, Detail, At, Count, Hash string
}

// Permille writes a share given in per mille as a percentage: "82 %", "82.5 %" (a
// no-break space: the sign never wraps away from its number).
func Permille(pm int64) string {
	if pm%10 == 0 {
		return strconv.FormatInt(pm/10, 10) + "\u00a0%"
	}
	return fmt.Sprintf("%d.%d\u00a0%%", pm/10, pm%10)
}

// Every says a report period for people: "1 h", "15 min", "90 s".
func Every(seconds int64) string {
	switch {
	case seconds >= 3600 && seconds%3600 == 0:
		return I64(seconds/3600) + " h"
	case seconds >= 60 && seconds%60 == 0:
		return I64(seconds/60) + " min"
	}
	return I64(seconds) + " s"
}

// UsageViewOf builds the view of a license's usage.
func UsageViewOf(o *entitlements.UsageOverview) UsageView {
	t, l := o.Totals, o.License
	v := UsageView{LicenseID: l.ID, Product: l.Product, SKU: l.SKU, CustomerName: l.CustomerName,
		Used: Count(t.Used), Tokens: Count(t.Tokens), Requests: Count(t.Requests), Reports: Count(t.Reports),
		LastReport: OptDay(t.LastReportAt, "never"), NoReportsYet: t.LastReportAt == nil, Level: "ok", Fill: "0"}
	v.Basis = "over the license's term"
	if t.Window > 0 {
		v.Basis = "in the rolling " + windowLabel(t.Window) + " (counted in whole UTC days)"
	}
	if t.Budget > 0 {
		pm := t.Share()
		v.HasBudget, v.Budget, v.Percent = true, Count(t.Budget), Permille(pm)
		v.Fill = strconv.FormatInt(min(pm, 1000)/10, 10)
		switch {
		case pm >= 1000:
			v.Level, v.Past80 = "over", true
		case pm >= 800:
			v.Level, v.Past80 = "warn", true
		}
	}
	labels := make([]string, len(o.Days))
	tokens := make([]int64, len(o.Days))
	for i, d := range o.Days {
		labels[i], tokens[i] = d.Day.Format("Jan 2"), d.Tokens
	}
	v.Chart = Chart{ID: "usage-daily", Title: fmt.Sprintf("Tokens per day (last %d days, UTC)", len(o.Days)), Labels: labels,
		LabelEvery: max(len(o.Days)/6, 1), Series: []Series{{Name: "tokens", Class: "bar-a", Values: tokens}}}
	for i := range o.Chains {
		c := &o.Chains[i]
		row := UsageChainRow{InstanceID: c.InstanceID, Fingerprint: c.Fingerprint, Reporter: c.Reporter, KeyID: c.KeyID,
			LastSeq: I64(c.LastSeq), Period: Every(c.PeriodSeconds), FirstStart: Day(c.FirstStart),
			LastEnd: Day(c.LastEnd), LastReport: Day(c.LastReportAt), Tokens: Count(c.Tokens), Requests: Count(c.Requests)}
		if c.Forks > 0 {
			row.Flags = append(row.Flags, "fork ×"+I64(c.Forks))
		}
		if c.Gaps > 0 {
			row.Flags = append(row.Flags, "gap ×"+I64(c.Gaps))
		}
		if c.RestartOf != "" {
			row.Flags = append(row.Flags, "restart of "+shortID(c.RestartOf))
		}
		if c.RestartedBy != "" {
			row.Flags = append(row.Flags, "restarted by "+shortID(c.RestartedBy))
		}
		if c.Stale(o.Now) {
			row.Flags = append(row.Flags, "stale")
		}
		v.Chains = append(v.Chains, row)
	}
	for _, in := range o.Incidents {
		r := UsageIncidentRow{InstanceID: in.InstanceID, Kind: in.Kind, Seq: I64(in.Seq), At: Day(in.LastAt), Count: I64(in.Count),
			Hash: fmt.Sprintf("%x", in.Hash[:8])}
		if in.Kind == entitlements.IncidentGap {
			r.Detail = "the issuer needed seq " + I64(in.NextSeq)
		} else {
			r.Detail = "other bytes than the accepted report, or a prev that is not it"
		}
		v.Incidents = append(v.Incidents, r)
	}
	for _, w := range o.Warnings {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d %% reached on %s (%s of %s tokens)", w.Threshold, Day(w.CrossedAt), Count(w.Used), Count(w.Budget)))
	}
	fork, gap, restart, stale := o.Flags()
	for _, f := range []struct {
		on         bool
		name, what string
	}{
		{fork, "fork", "a host sent a report that contradicts one already accepted (a copied or restored host?): it was refused and recorded"},
		{gap, "gap", "a host skipped reports the issuer has not received: it was asked for the missing seq"},
		{restart, "restart", "a host started a new chain after a fork, a gap or a loss of its state"},
		{stale, "stale", "a host has sent nothing for more than three of its report periods"},
	} {
		if f.on {
			v.Flags = append(v.Flags, UsageFlag{f.name, f.what})
		}
	}
	return v
}

func windowLabel(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		n := int64(d / (24 * time.Hour))
		if n == 1 {
			return "day"
		}
		return I64(n) + " days"
	}
	return d.String()
}

// shortID is an instance ID's end, enough to find it in the table it stands beside.
func shortID(id string) string {
	if len(id) <= 12 {
		return id
	}
	return "…" + id[len(id)-8:]
}
