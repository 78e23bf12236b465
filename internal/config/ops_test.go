package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpsSettings: the drain, deadline and metrics keys sit where the README says
// (server.drain_delay, metrics.token, …), have their defaults, take the environment,
// and bad values are reported.
func TestOpsSettings(t *testing.T) {
	c, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Lifecycle != DefaultLifecycle || c.Metrics != (Metrics{}) {
		t.Fatalf("defaults: %+v %+v", c.Server.Lifecycle, c.Metrics)
	}
	p := filepath.Join(t.TempDir(), "issuer.yaml")
	os.WriteFile(p, []byte("server:\n  drain_delay: 1s\n  shutdown_timeout: 3s\n  lease_deadline: 1500ms\n  request_deadline: 20s\nmetrics:\n  addr: 127.0.0.1:9100\n"), 0o600)
	c, err = Load(p, env(map[string]string{"ISSUER_METRICS_TOKEN": "a-scrape-token-of-length"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Lifecycle{DrainDelay: time.Second, ShutdownTimeout: 3 * time.Second, LeaseDeadline: 1500 * time.Millisecond, RequestDeadline: 20 * time.Second}
	if c.Server.Lifecycle != want || c.Metrics.Addr != "127.0.0.1:9100" || c.Metrics.Token != "a-scrape-token-of-length" {
		t.Fatalf("%+v %+v", c.Server.Lifecycle, c.Metrics)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte("server:\n  drain_delay: -1s\n  shutdown_timeout: 0s\n  lease_deadline: 10ms\nmetrics:\n  token: short\n  addr: 127.0.0.1:8080\n"), 0o600)
	c, err = Load(p, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	for _, w := range []string{"drain_delay", "shutdown_timeout", "lease_deadline", "metrics.token", "metrics.addr"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("%s not reported: %v", w, err)
		}
	}
}
