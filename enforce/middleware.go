package enforce

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metrum/licensing/usage"
)

// Feature gates one feature, with its request counter resolved once so that a
// counted check stays lock-free.
type Feature struct {
	e        *Enforcer
	name     string
	requests prometheus.Counter
}

// Feature returns the gate of a licensed feature (a product capability such as
// "routing"). Make it once, at setup, and use it per request.
func (e *Enforcer) Feature(name string) *Feature {
	return &Feature{e: e, name: name, requests: e.metrics.requests.WithLabelValues(name)}
}

// Name is the feature's name.
func (f *Feature) Name() string { return f.name }

// Allow is Enforcer.Allow, counted: metrum_license_requests_total{feature} always,
// and metrum_license_blocked_total{feature,reason} (and CoreSDK's
// coresdk_license_feature_blocked_total) when refused.
func (f *Feature) Allow() bool {
	f.requests.Inc()
	if f.e.Allow(f.name) {
		return true
	}
	p := f.Refusal()
	f.e.metrics.blocked.WithLabelValues(f.name, string(p.Reason)).Inc()
	if f.e.o.Product == coreSDK {
		f.e.metrics.coreBlocked.WithLabelValues(f.name).Inc()
	}
	return false
}

// Refusal is the problem that answers a request for this feature now: the license's
// own reason while it does not serve (503), else license-feature-forbidden (403).
func (f *Feature) Refusal() *Problem {
	s := f.e.snap.Load()
	if !s.serving {
		return LicenseProblem(s.status.Reason, "")
	}
	return LicenseProblem(ReasonFeatureForbidden, fmt.Sprintf("The feature %q is not licensed for this deployment.", f.name))
}

// Gate is net/http middleware that serves the route only while the feature is
// allowed, and otherwise answers its license-* problem with the request ID. From echo:
// e.Use(echo.WrapMiddleware(feature.Gate)), or per route.
func (f *Feature) Gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.Allow() {
			next.ServeHTTP(w, r)
			return
		}
		f.Refusal().Write(w, r)
	})
}

// Spend counts one request of n tokens against the license's token budget and
// returns nil, or the problem that refuses it: the license's reason while it does not
// serve; license-limit-exceeded once the budget is spent (403, or 429 with
// Retry-After when it is a rolling window that will refill). A license with a
// token_budget or usage_window_seconds and no Options.Usage to count it is refused
// (fail closed: a budget nobody counts is no budget).
func (e *Enforcer) Spend(n int64) *Problem {
	s := e.snap.Load()
	if !s.serving {
		return LicenseProblem(s.status.Reason, "")
	}
	if n < 0 {
		return &Problem{Type: ProblemBase + "invalid", Title: "Bad Request", Status: http.StatusBadRequest, Detail: "tokens must be a non-negative integer"}
	}
	if e.o.Usage == nil {
		_, budget := s.status.Limits["token_budget"]
		_, window := s.status.Limits["usage_window_seconds"]
		if budget || window {
			e.o.Logger.Error("license: the license has a token budget but no usage recorder is configured (--usage-dir): refusing")
			e.metrics.spendRefused.Inc()
			return LicenseProblem(ReasonLimitExceeded, "The license's token budget can't be counted on this deployment. Give your operator the request ID.")
		}
		return nil
	}
	if s.license == nil || e.o.Usage.License() != s.license.LicenseID {
		// The recorder is not on the license served (it could not switch: see the
		// log); counting against another license's budget would be wrong.
		e.o.Logger.Error("license: the usage recorder is not counting the license served: refusing", "license_id", s.status.LicenseID)
		e.metrics.spendRefused.Inc()
		return LicenseProblem(ReasonLimitExceeded, "Usage can't be counted on this deployment now. Give your operator the request ID.")
	}
	err := e.o.Usage.Consume(n)
	var le *usage.LimitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le) && le.Window > 0:
		e.metrics.spendRefused.Inc()
		p := LicenseProblem(ReasonLimitExceeded, fmt.Sprintf("The license's token budget for its %s usage window is spent; retry later.", le.Window))
		p.Status, p.RetryAfter = http.StatusTooManyRequests, le.RetryAfter
		return p
	case errors.As(err, &le):
		e.metrics.spendRefused.Inc()
		return LicenseProblem(ReasonLimitExceeded, "The license's token budget is spent.")
	}
	// Not metering this license (the recorder could not switch to it): fail closed.
	e.o.Logger.Error("license: usage not counted: refusing", "err", err)
	e.metrics.spendRefused.Inc()
	return LicenseProblem(ReasonLimitExceeded, "Usage can't be counted on this deployment now. Give your operator the request ID.")
}
