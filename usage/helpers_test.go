package usage_test

import (
	"crypto/ed25519"
	"sync"
	"testing"
	"time"

	"github.com/metrum/licensing/usage"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 6, 1, 10, 17, 3, 0, time.UTC)

const (
	licA = "lic_01HZY3QK8Y0000000000000001"
	licB = "lic_01HZY3QK8Y0000000000000002"
)

func license(id string, budget int64, window time.Duration) usage.License {
	return usage.License{ID: id, Product: "genai-smart-router", ExpiresAt: t0.Add(365 * 24 * time.Hour), TokenBudget: budget, Window: window}
}

func mustOpen(t *testing.T, dir string, c *clock, up usage.Uploader) *usage.Recorder {
	t.Helper()
	r, err := usage.Open(usage.Options{Dir: dir, Now: c.Now, Uploader: up, Reporter: "usage-test/1"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// exported returns every report a folder holds, verified, in order.
func exported(t *testing.T, dir string) []*usage.Report {
	t.Helper()
	bodies, n, err := usage.Export(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []*usage.Report
	keys := map[string]ed25519.PublicKey{}
	for _, b := range bodies {
		envs, err := usage.ParseBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range envs {
			r, err := usage.Parse(e, nil) // a chain's first report carries its key
			for _, k := range keys {
				if r != nil {
					break
				}
				r, err = usage.Parse(e, k)
			}
			if r == nil {
				t.Fatalf("report does not verify with any chain's key: %v", err)
			}
			keys[r.InstanceID] = r.Key
			out = append(out, r)
		}
	}
	if len(out) != n {
		t.Fatalf("Export said %d reports, bodies hold %d", n, len(out))
	}
	return out
}

// byChain groups reports by instance, in order.
func byChain(rs []*usage.Report) map[string][]*usage.Report {
	m := map[string][]*usage.Report{}
	for _, r := range rs {
		m[r.InstanceID] = append(m[r.InstanceID], r)
	}
	return m
}

func sum(rs []*usage.Report, name string) int64 {
	var n int64
	for _, r := range rs {
		n += r.Counters[name]
	}
	return n
}
