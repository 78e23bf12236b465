package enforce

import (
	"github.com/prometheus/client_golang/prometheus"
)

// counters are the enforcer's counters; the gauges are read from the verdict at
// scrape time (collector), so a scrape never checks anything.
type counters struct {
	requests     *prometheus.CounterVec
	blocked      *prometheus.CounterVec
	spendRefused prometheus.Counter
	coreRequests *prometheus.CounterVec
	coreBlocked  *prometheus.CounterVec
}

func newCounters() *counters {
	return &counters{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metrum_license_requests_total",
			Help: "Requests checked by a feature gate."}, []string{"feature"}),
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metrum_license_blocked_total",
			Help: "Requests a feature gate refused, by the license-* reason."}, []string{"feature", "reason"}),
		spendRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "metrum_usage_refused_total",
			Help: "Requests refused because the license's token budget or usage window is spent."}),
		// CoreSDK's names, as its document spells them with dots as underscores.
		coreRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coresdk_license_requests_total",
			Help: "All requests, labelled by tenant and plan."}, []string{"tenant", "plan"}),
		coreBlocked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coresdk_license_feature_blocked_total",
			Help: "Requests blocked by feature gate."}, []string{"feature"}),
	}
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	dStatus     = desc("metrum_license_status", "1 for the current status (valid, grace, blocked), 0 for the others.", "status")
	dInfo       = desc("metrum_license_info", "The safe status fields of the license checked, as labels; always 1.", "status", "reason", "license_id", "customer_id", "sku", "key_id")
	dDays       = desc("metrum_license_days_until_expiry", "Calendar days until the license expires (0 or less: expired).")
	dExpiry     = desc("metrum_license_expiry_timestamp_seconds", "When the license expires, Unix time.")
	dGrace      = desc("metrum_license_grace_active", "1 while grace serves the license last observed valid.")
	dSeq        = desc("metrum_license_bundle_sequence", "Sequence of the revocation bundle checked.")
	dBundleAge  = desc("metrum_license_bundle_age_seconds", "Seconds since the revocation bundle checked was issued.")
	dChecked    = desc("metrum_license_last_check_timestamp_seconds", "When the license was last checked, Unix time.")
	dUsed       = desc("metrum_usage_tokens_used", "Tokens counted against the license's token budget (over its term or its usage window).")
	dBudget     = desc("metrum_usage_token_budget", "The license's token budget.")
	dPending    = desc("metrum_usage_reports_pending", "Usage reports not yet accepted by the issuer.")
	dUploaded   = desc("metrum_usage_last_upload_timestamp_seconds", "When the issuer last accepted an upload, Unix time.")
	dCoreTenant = desc("coresdk_license_tenants_active", "Currently active tenant count.")
	dCoreDays   = desc("coresdk_license_days_until_expiry", "Days until the license token expires.")
)

// Collector returns the Prometheus collector of the license gauges and counters both
// product documents name: the router's (status, days until expiry, grace active,
// bundle sequence and age, requests and refusals by feature, the usage budget) and,
// for product coresdk, CoreSDK's four (coresdk_license_requests_total,
// coresdk_license_tenants_active, coresdk_license_feature_blocked_total,
// coresdk_license_days_until_expiry). Register it once: reg.MustRegister(e.Collector()).
func (e *Enforcer) Collector() prometheus.Collector { return collector{e} }

type collector struct{ e *Enforcer }

func (c collector) core() bool { return c.e.o.Product == coreSDK }

func (c collector) counters() []prometheus.Collector {
	m := c.e.metrics
	out := []prometheus.Collector{m.requests, m.blocked, m.spendRefused}
	if c.core() {
		out = append(out, m.coreRequests, m.coreBlocked)
	}
	return out
}

// Describe sends the descriptions of every metric the collector can send.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dStatus, dInfo, dDays, dExpiry, dGrace, dSeq, dBundleAge, dChecked} {
		ch <- d
	}
	if c.e.o.Usage != nil {
		ch <- dUsed
		ch <- dBudget
		ch <- dPending
		ch <- dUploaded
	}
	if c.core() {
		ch <- dCoreTenant
		ch <- dCoreDays
	}
	for _, k := range c.counters() {
		k.Describe(ch)
	}
}

// Collect reads the verdict (and the recorder) once and sends the metrics.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st := c.e.Status()
	now := c.e.now()
	for _, s := range []State{StateValid, StateGrace, StateBlocked} {
		gauge(dStatus, b2f(st.State == s), string(s))
	}
	gauge(dInfo, 1, string(st.State), string(st.Reason), st.LicenseID, st.CustomerID, st.SKU, st.KeyID)
	if !st.ExpiresAt.IsZero() {
		gauge(dDays, float64(st.DaysUntilExpiry))
		gauge(dExpiry, float64(st.ExpiresAt.Unix()))
		if c.core() {
			gauge(dCoreDays, float64(st.DaysUntilExpiry))
		}
	}
	gauge(dGrace, b2f(st.GraceActive))
	if st.BundleSequence != nil {
		gauge(dSeq, float64(*st.BundleSequence))
		gauge(dBundleAge, now.Sub(st.BundleIssuedAt).Seconds())
	}
	gauge(dChecked, float64(st.CheckedAt.Unix()))
	if u := c.e.o.Usage; u != nil {
		us := u.Status()
		gauge(dUsed, float64(us.Used))
		if us.TokenBudget >= 0 {
			gauge(dBudget, float64(us.TokenBudget))
		}
		gauge(dPending, float64(us.Pending))
		if !us.LastUpload.IsZero() {
			gauge(dUploaded, float64(us.LastUpload.Unix()))
		}
	}
	if c.core() {
		gauge(dCoreTenant, float64(c.e.plan.tenants.Load()))
	}
	for _, k := range c.counters() {
		k.Collect(ch)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
