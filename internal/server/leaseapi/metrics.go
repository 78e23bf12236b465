package leaseapi

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the issuer's Prometheus metrics, in a registry of their own (no global
// state: tests and benchmarks run several servers in one process).
type Metrics struct {
	reg          *prometheus.Registry
	leaseReqs    *prometheus.CounterVec
	leaseSeconds *prometheus.HistogramVec
	// LeaseBatch observes the size of each lease batch (leases.Options.ObserveBatch).
	LeaseBatch prometheus.Histogram
}

// NewMetrics registers the issuer's metrics and the Go runtime's.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.leaseReqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metrum_lease_requests_total",
		Help: "Lease API requests by outcome (granted, renewed, released, refused, error) and reason code."}, []string{"outcome", "reason"})
	m.leaseSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "metrum_lease_request_seconds",
		Help:    "Time to answer POST /v1/leases, by outcome.",
		Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5}}, []string{"outcome"})
	m.LeaseBatch = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "metrum_lease_batch_size",
		Help: "Lease requests decided per database transaction (group commit).", Buckets: prometheus.ExponentialBuckets(1, 2, 10)})
	m.reg.MustRegister(m.leaseReqs, m.leaseSeconds, m.LeaseBatch,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Register adds collectors of other parts of the issuer (its operational gauges) to
// the one registry /metrics serves.
func (m *Metrics) Register(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// ObserveBatch records one lease batch's size.
func (m *Metrics) ObserveBatch(n int) {
	if m != nil {
		m.LeaseBatch.Observe(float64(n))
	}
}

func (m *Metrics) observeLease(outcome, reason string, d time.Duration) {
	if m == nil {
		return
	}
	m.leaseReqs.WithLabelValues(outcome, reason).Inc()
	if d > 0 {
		m.leaseSeconds.WithLabelValues(outcome).Observe(d.Seconds())
	}
}
