package server

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metrum/licensing/internal/issuance"
)

// OpsGauges are the issuer's operational gauges (docs/operations.md, "Metrics and
// alerts"; the alert rules in deploy/prometheus). The scheduler hands them a snapshot
// (Observe, from issuance.WatchOps); a scrape computes the times left from it against
// the clock of the scrape, and never touches the database.
type OpsGauges struct {
	mu       sync.Mutex
	st       *issuance.OpsStatus
	okAt     time.Time
	failures float64
	now      func() time.Time

	keyDays, bundleAge, bundleLeft, expiring, drafts, orders, refreshed, errs *prometheus.Desc
}

// NewOpsGauges registers the operational gauges in m's registry.
func NewOpsGauges(m *Metrics) *OpsGauges {
	g := &OpsGauges{now: time.Now,
		keyDays: prometheus.NewDesc("metrum_signing_key_not_after_days", "Days until a published signing key's not_after (negative: past it).",
			[]string{"kid", "product", "purposes"}, nil),
		bundleAge: prometheus.NewDesc("metrum_bundle_age_seconds", "Seconds since the product's latest revocation bundle was issued.",
			[]string{"product"}, nil),
		bundleLeft: prometheus.NewDesc("metrum_bundle_expiry_seconds", "Seconds until the product's latest revocation bundle expires (negative: expired).",
			[]string{"product"}, nil),
		expiring: prometheus.NewDesc("metrum_licenses_expiring", "Active licenses ending within the window.", []string{"within"}, nil),
		drafts:   prometheus.NewDesc("metrum_approval_queue_length", "Entitlements waiting for approval (drafts).", nil, nil),
		orders:   prometheus.NewDesc("metrum_order_review_queue_length", "Self-service orders waiting in the staff queue (refunds, disputes).", nil, nil),
		refreshed: prometheus.NewDesc("metrum_ops_gauges_refreshed_timestamp_seconds",
			"When the gauges above were last read from the database (Unix time).", nil, nil),
		errs: prometheus.NewDesc("metrum_ops_gauges_refresh_errors_total", "Failed reads of the gauges above.", nil, nil),
	}
	m.Register(g)
	return g
}

// Observe takes the scheduler's snapshot, or counts its failure (the last good
// snapshot stays, and metrum_ops_gauges_refreshed_timestamp_seconds ages).
func (g *OpsGauges) Observe(st *issuance.OpsStatus, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.failures++
		return
	}
	g.st, g.okAt = st, g.now()
}

// Describe implements prometheus.Collector.
func (g *OpsGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.keyDays, g.bundleAge, g.bundleLeft, g.expiring, g.drafts, g.orders, g.refreshed, g.errs} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the snapshot, with times left against now.
func (g *OpsGauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	st, okAt, failures := g.st, g.okAt, g.failures
	g.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(g.errs, prometheus.CounterValue, failures)
	if st == nil {
		return // nothing read yet: no numbers rather than zeros
	}
	now := g.now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(g.refreshed, float64(okAt.UnixMilli())/1000)
	for _, k := range st.Keys {
		gauge(g.keyDays, k.NotAfter.Sub(now).Hours()/24, k.KID, k.Product, k.Purposes)
	}
	for _, b := range st.Bundles {
		gauge(g.bundleAge, now.Sub(b.IssuedAt).Seconds(), b.Product)
		gauge(g.bundleLeft, b.ExpiresAt.Sub(now).Seconds(), b.Product)
	}
	gauge(g.expiring, float64(st.Expiring7d), "7d")
	gauge(g.expiring, float64(st.Expiring30d), "30d")
	gauge(g.drafts, float64(st.Drafts))
	gauge(g.orders, float64(st.OrdersInReview))
}
