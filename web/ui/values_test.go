package ui

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 25_000_000: "25,000,000",
		-1234567: "-1,234,567", 1<<53 - 1: "9,007,199,254,740,991", math.MinInt64: "-9,223,372,036,854,775,808"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSeconds(t *testing.T) {
	for n, want := range map[int64]string{0: "0 seconds", 1: "1 second", 59: "59 seconds", 60: "1 minute", 3600: "1 hour",
		21600: "6 hours", 86400: "24 hours", 259200: "72 hours", 345600: "4 days", 2592000: "30 days", 5400: "1 hour 30 minutes",
		90061: "25 hours 1 minute 1 second", 349200: "4 days 1 hour", 31536000: "365 days", -3600: "-1 hour"} {
		if got := Seconds(n); got != want {
			t.Errorf("Seconds(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestLimitsReadable(t *testing.T) {
	cases := []struct {
		wire string
		v    int64
		name string
		text string
	}{
		{"token_budget", 25_000_000, "Token budget", "25,000,000 tokens"},
		{"token_budget", 1, "Token budget", "1 token"},
		{"usage_window_seconds", 2592000, "Usage window", "30 days"},
		{"max_instances", 4, "Instance limit", "4 instances"},
		{"max_instances", 1, "Instance limit", "1 instance"},
		{"max_concurrency", 256, "Concurrency limit", "256 requests at once"},
		{"seats", 10, "Seats", "10 seats"},
		{"max_tenants", 3, "Tenant limit", "3 tenants"},
		{"max_rps", 5000, "Rate limit", "5,000 requests per second"},
		{"max_widgets", 12000, "Max widgets", "12,000"}, // unknown: its wire name, a plain number
	}
	for _, c := range cases {
		v := Limit(c.wire, c.v)
		if v.Name != c.name || v.Text != c.text || v.Wire != c.wire {
			t.Errorf("Limit(%s, %d) = %+v, want %s / %s", c.wire, c.v, v, c.name, c.text)
		}
	}
	got := Limits(map[string]int64{"zeta": 1, "max_instances": 2, "token_budget": 3, "alpha": 4, "usage_window_seconds": 60})
	var order []string
	for _, v := range got {
		order = append(order, v.Wire)
	}
	if want := []string{"token_budget", "usage_window_seconds", "max_instances", "alpha", "zeta"}; !slices.Equal(order, want) {
		t.Fatalf("Limits order %v, want %v", order, want)
	}
	if len(Limits(nil)) != 0 {
		t.Fatal("no limits listed something")
	}
}

func TestFeaturesReadable(t *testing.T) {
	got := Features([]string{"pii_filtering", "saml", "new_thing"})
	want := []Value{{Name: "PII filtering", Wire: "pii_filtering"}, {Name: "SAML single sign-on", Wire: "saml"}, {Name: "New thing", Wire: "new_thing"}}
	if !slices.Equal(got, want) {
		t.Fatalf("Features = %+v", got)
	}
}

func TestAbout(t *testing.T) {
	for d, want := range map[time.Duration]string{365*24*time.Hour - 3*time.Second: "365 days", 72 * time.Hour: "72 hours",
		30*time.Hour + 20*time.Minute: "30 hours", 90*time.Minute + 10*time.Second: "1 hour 30 minutes"} {
		if got := About(d); got != want {
			t.Errorf("About(%s) = %q, want %q", d, got, want)
		}
	}
}
