package ui

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Value is one licensed term as people read it, with its wire name beside it for
// support: {Name: "Token budget", Text: "25,000,000 tokens", Wire: "token_budget"}.
type Value struct {
	Name string
	// Text is the value in words and units; "" for a feature (its name says it).
	Text string
	Wire string
}

// limitInfo is how a limit reads: its name for people and how its number reads.
type limitInfo struct {
	name   string
	format func(int64) string
}

// limitTable names every limit a template sets (formats.md section 3 and the
// registry), in the order pages list them. A limit not listed here is shown by its
// wire name and a plain number.
var limitTable = []struct {
	wire string
	limitInfo
}{
	{"token_budget", limitInfo{"Token budget", unit("token", "tokens")}},
	{"usage_window_seconds", limitInfo{"Usage window", Seconds}},
	{"max_instances", limitInfo{"Instance limit", unit("instance", "instances")}},
	{"max_concurrency", limitInfo{"Concurrency limit", unit("request at once", "requests at once")}},
	{"seats", limitInfo{"Seats", unit("seat", "seats")}},
	{"max_tenants", limitInfo{"Tenant limit", unit("tenant", "tenants")}},
	{"max_rps", limitInfo{"Rate limit", unit("request per second", "requests per second")}},
	{"release_budget", limitInfo{"Early release limit", unit("release", "releases")}},
}

// featureNames names the features of both products (seed: "routing, usage
// reporting, admin reports, dynamic routing, …"; CoreSDK's plan gates).
var featureNames = map[string]string{
	"admin_reports":             "Admin reports",
	"audit_export":              "Audit export",
	"dynamic_routing":           "Dynamic routing",
	"external_policy_routing":   "External policy routing",
	"model_group_contracts":     "Model-group contracts",
	"pii_filtering":             "PII filtering",
	"private_upstreams":         "Private upstreams",
	"retention_rollups":         "Retention rollups",
	"routing":                   "Routing",
	"typescript_policy_routing": "TypeScript policy routing",
	"usage_export":              "Usage export",
	"usage_reporting":           "Usage reporting",
	"audit_trails":              "Audit trails",
	"feature_flags":             "Feature flags",
	"hsm":                       "HSM support",
	"saml":                      "SAML single sign-on",
	"scim":                      "SCIM provisioning",
}

func unit(one, many string) func(int64) string {
	return func(n int64) string {
		if n == 1 {
			return "1 " + one
		}
		return Count(n) + " " + many
	}
}

func limitOf(wire string) (limitInfo, int) {
	for i, l := range limitTable {
		if l.wire == wire {
			return l.limitInfo, i
		}
	}
	return limitInfo{name: humanize(wire), format: Count}, len(limitTable)
}

// humanize makes a wire name readable when no better name is known:
// "max_widgets" → "Max widgets".
func humanize(wire string) string {
	s := strings.ReplaceAll(wire, "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Named reports whether a feature or limit has a name in the tables above (one
// without is shown by its wire name made readable).
func Named(wire string) bool {
	_, i := limitOf(wire)
	_, f := featureNames[wire]
	return f || i < len(limitTable)
}

// LimitName is a limit's name for people.
func LimitName(wire string) string { l, _ := limitOf(wire); return l.name }

// LimitText is a limit's value in words and units: "25,000,000 tokens", "30 days".
func LimitText(wire string, v int64) string { l, _ := limitOf(wire); return l.format(v) }

// Limit is one limit as a Value.
func Limit(wire string, v int64) Value {
	l, _ := limitOf(wire)
	return Value{Name: l.name, Text: l.format(v), Wire: wire}
}

// Limits lists limits as Values in the table's order (unknown ones last, by wire
// name). No limits reads as an empty list: the page says "unlimited".
func Limits(m map[string]int64) []Value {
	wires := make([]string, 0, len(m))
	for k := range m {
		wires = append(wires, k)
	}
	slices.SortFunc(wires, func(a, b string) int {
		_, ia := limitOf(a)
		_, ib := limitOf(b)
		return cmp.Or(cmp.Compare(ia, ib), strings.Compare(a, b))
	})
	out := make([]Value, 0, len(wires))
	for _, w := range wires {
		out = append(out, Limit(w, m[w]))
	}
	return out
}

// FeatureName is a feature's name for people.
func FeatureName(wire string) string {
	if n, ok := featureNames[wire]; ok {
		return n
	}
	return humanize(wire)
}

// Features lists features as Values, in the order given (licenses keep them sorted).
func Features(wires []string) []Value {
	out := make([]Value, 0, len(wires))
	for _, w := range wires {
		out = append(out, Value{Name: FeatureName(w), Wire: w})
	}
	return out
}

// Count writes an integer with thousands separators: 25000000 → "25,000,000".
func Count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Seconds writes a number of seconds in the largest units that say it exactly, days
// from four days on (people say "72 hours", "30 days"): 2592000 → "30 days", 259200
// → "72 hours", 21600 → "6 hours", 5400 → "1 hour 30 minutes", 0 → "0 seconds".
func Seconds(n int64) string {
	if n == 0 {
		return "0 seconds"
	}
	if n < 0 {
		return "-" + Seconds(-n)
	}
	units := []struct {
		size      int64
		one, many string
	}{{86400, "day", "days"}, {3600, "hour", "hours"}, {60, "minute", "minutes"}, {1, "second", "seconds"}}
	if n < 4*86400 {
		units = units[1:]
	}
	var parts []string
	for _, u := range units {
		if q := n / u.size; q > 0 {
			parts = append(parts, unit(u.one, u.many)(q))
			n -= q * u.size
		}
	}
	return strings.Join(parts, " ")
}

// Date is the day of a time, UTC: "2026-12-02" (lists; pages show ui.Day).
func Date(t time.Time) string { return t.UTC().Format("2006-01-02") }

// Duration writes a duration as Seconds does (whole seconds).
func Duration(d time.Duration) string { return Seconds(int64(d / time.Second)) }

// About writes a long span in its largest unit, rounded: a license's term of 365
// days less the seconds it took to issue is "365 days"; under four days in hours,
// under two hours in minutes.
func About(d time.Duration) string {
	switch {
	case d >= 96*time.Hour:
		return Duration(d.Round(24 * time.Hour))
	case d >= 2*time.Hour:
		return Duration(d.Round(time.Hour))
	}
	return Duration(d.Round(time.Minute))
}
