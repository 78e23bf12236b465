package config

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Lifecycle is how the HTTP server drains on SIGTERM and how long a request may take
// (docs/operations.md, "Drain" and "Deadlines"). Its YAML keys sit under server:.
type Lifecycle struct {
	// DrainDelay: after SIGTERM, /readyz answers 503 at once while everything else is
	// served as before for this long, so the load balancer takes the replica out of
	// rotation before any connection is closed.
	DrainDelay time.Duration `yaml:"drain_delay"`
	// ShutdownTimeout bounds what comes after the delay: connections close after
	// their next response, requests in flight finish; what is left then is cut.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// LeaseDeadline bounds a lease API request, from its arrival to its answer.
	LeaseDeadline time.Duration `yaml:"lease_deadline"`
	// RequestDeadline bounds every other request (staff console and API, portal,
	// customer API, bundles); each item of a bulk stream gets it of its own.
	RequestDeadline time.Duration `yaml:"request_deadline"`
}

// DefaultLifecycle is what Lifecycle is with nothing set.
var DefaultLifecycle = Lifecycle{DrainDelay: 5 * time.Second, ShutdownTimeout: 15 * time.Second,
	LeaseDeadline: 2 * time.Second, RequestDeadline: 15 * time.Second}

// Metrics is where Prometheus scrapes /metrics. `issuer serve` serves it only with a
// token or on an address of its own: never openly on the public listener.
type Metrics struct {
	// Token (ISSUER_METRICS_TOKEN; better from the environment) is the bearer token a
	// scrape must present.
	Token string `yaml:"token"`
	// Addr (ISSUER_METRICS_ADDR), when set, serves /metrics on a listener of its own
	// (say a private interface) instead of the public one.
	Addr string `yaml:"addr"`
}

// minMetricsToken: a scrape token is a password; shorter ones are guessable.
const minMetricsToken = 16

// loadOps reads the environment overrides of the operations settings.
func loadOps(c *Config, getenv func(string) string) {
	if v := getenv("ISSUER_METRICS_TOKEN"); v != "" {
		c.Metrics.Token = v
	}
	if v := getenv("ISSUER_METRICS_ADDR"); v != "" {
		c.Metrics.Addr = v
	}
}

// validateOps checks the drain, deadline and metrics settings.
func (c *Config) validateOps() []error {
	var errs []error
	l := c.Server.Lifecycle
	if l.DrainDelay < 0 || l.DrainDelay > 5*time.Minute {
		errs = append(errs, errors.New("server.drain_delay must be between 0 and 5m"))
	}
	if l.ShutdownTimeout < time.Second || l.ShutdownTimeout > 10*time.Minute {
		errs = append(errs, errors.New("server.shutdown_timeout must be between 1s and 10m"))
	}
	// The lease path reserves part of its deadline for the answer (internal/leases):
	// below 500ms almost nothing is left for the database.
	if l.LeaseDeadline < 500*time.Millisecond || l.LeaseDeadline > time.Minute {
		errs = append(errs, errors.New("server.lease_deadline must be between 500ms and 1m"))
	}
	if l.RequestDeadline < time.Second || l.RequestDeadline > 10*time.Minute {
		errs = append(errs, errors.New("server.request_deadline must be between 1s and 10m"))
	}
	if m := c.Metrics; m.Token != "" && len(m.Token) < minMetricsToken {
		errs = append(errs, fmt.Errorf("metrics.token must be at least %d characters", minMetricsToken))
	}
	if a := c.Metrics.Addr; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("metrics.addr %q: want host:port", a))
		} else if a == c.Server.Addr {
			errs = append(errs, errors.New("metrics.addr must differ from server.addr"))
		}
	}
	return errs
}
