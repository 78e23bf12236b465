package enforce

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

const coreSDK = "coresdk"

// Plan holds CoreSDK's plan checks (its "Plan enforcement" table): max_tenants
// against a count the caller gives, max_rps as a token bucket, and feature gates, each
// refused with CoreSDK's plan-limit problem. While the license itself does not serve,
// each check returns the license's own problem instead.
type Plan struct {
	e *Enforcer
	// tat is the token bucket as a single atomic: the time (Unix ns) at which the
	// bucket would be full again (GCRA, the virtual-scheduling form of a token bucket),
	// so taking a token is one compare-and-swap, no lock.
	tat     atomic.Int64
	tenants atomic.Int64
}

// Plan returns the enforcer's CoreSDK plan checks.
func (e *Enforcer) Plan() *Plan { return e.plan }

func (p *Plan) blocked() *Problem {
	if s := p.e.snap.Load(); !s.serving {
		return LicenseProblem(s.status.Reason, "")
	}
	return nil
}

// CheckTenants admits one more tenant when current (the caller's count of active
// tenants) is below max_tenants, and records current as
// coresdk_license_tenants_active. At the limit it refuses: "Your plan allows 50
// tenants. Current count: 50."
func (p *Plan) CheckTenants(current int64) error {
	p.tenants.Store(current)
	if b := p.blocked(); b != nil {
		return b
	}
	if max, limited := p.e.Limit("max_tenants"); limited && current >= max {
		return PlanLimit(fmt.Sprintf("Your plan allows %d tenants. Current count: %d.", max, current))
	}
	return nil
}

// SetTenantsActive records the active tenant count for the gauge without a check.
func (p *Plan) SetTenantsActive(n int64) { p.tenants.Store(n) }

// TakeRequest takes one request from the max_rps token bucket (its size is one
// second's worth, max_rps), or refuses it with Retry-After until a token is back.
func (p *Plan) TakeRequest() error {
	if b := p.blocked(); b != nil {
		return b
	}
	rps, limited := p.e.Limit("max_rps")
	if !limited {
		return nil
	}
	refuse := func(wait time.Duration) error {
		pr := PlanLimit(fmt.Sprintf("Your plan allows %d requests per second.", rps))
		pr.RetryAfter = wait
		return pr
	}
	if rps <= 0 {
		return refuse(0)
	}
	interval := int64(time.Second) / rps
	tolerance := int64(time.Second) - interval // a burst of rps requests
	now := p.e.now().UnixNano()
	for {
		tat := p.tat.Load()
		t := max(tat, now)
		if t-now > tolerance {
			return refuse(time.Duration(t - now - tolerance))
		}
		if p.tat.CompareAndSwap(tat, t+interval) {
			return nil
		}
	}
}

// CheckFeature refuses a feature the plan does not include (CoreSDK: "requests to
// disabled features return 403").
func (p *Plan) CheckFeature(name string) error {
	if b := p.blocked(); b != nil {
		return b
	}
	if !p.e.Allow(name) {
		p.e.metrics.coreBlocked.WithLabelValues(name).Inc()
		return PlanLimit(fmt.Sprintf("Your plan does not include the feature %s.", name))
	}
	return nil
}

// Middleware checks a request before its handler runs, as CoreSDK does: it counts it
// in coresdk_license_requests_total{tenant,plan} (tenant from the function given, ""
// when nil), takes it from the max_rps bucket, and, when feature is not "", checks the
// plan includes it; a refusal is answered with the plan-limit (or license) problem.
func (p *Plan) Middleware(feature string, tenant func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t := ""
			if tenant != nil {
				t = tenant(r)
			}
			p.e.metrics.coreRequests.WithLabelValues(t, p.e.snap.Load().status.Plan).Inc()
			err := p.TakeRequest()
			if err == nil && feature != "" {
				err = p.CheckFeature(feature)
			}
			if err != nil {
				err.(*Problem).Write(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
