package server_test

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server"
)

var metricName = regexp.MustCompile(`metrum_[a-z0-9_]+`)

// exported is every metrum_ metric a running issuer exports (a lease granted and
// refused, the gauges read once), from its own scrape.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	e := mustLeaseServer(t, 0, 0)
	g := server.NewOpsGauges(e.metrics)
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{})
	e.grant(t, tok, lic.ID, "host-1")
	e.grant(t, "not-the-token", lic.ID, "host-2")
	if _, err := e.svc.PublishBundle(context.Background(), "genai-smart-router", lChecker); err != nil {
		t.Fatal(err)
	}
	keys, err := e.svc.ListKeys(context.Background(), lAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetKeyNotAfter(context.Background(), keys[0].KID, time.Now().Add(400*24*time.Hour), lAdmin); err != nil {
		t.Fatal(err)
	}
	st, err := e.svc.OpsStatus(context.Background())
	g.Observe(st, err)
	names := map[string]bool{}
	for _, line := range strings.Split(e.scrape(t), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], "metrum_") {
			names[f[2]] = true
			if f[3] == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					names[f[2]+s] = true
				}
			}
		}
	}
	if len(names) < 10 {
		t.Fatalf("only %d metrum_ metrics exported: %v", len(names), names)
	}
	return names
}

// TestDeployedRulesAndDashboardUseExportedMetrics: every alert rule in
// deploy/prometheus and every panel of the Grafana dashboard in deploy/grafana is
// well formed and queries only metrics the issuer exports (a renamed metric must
// not silently blind an alert), and the alerts cover what docs/operations.md says.
func TestDeployedRulesAndDashboardUseExportedMetrics(t *testing.T) {
	names := exported(t)
	check := func(where, expr string) {
		t.Helper()
		found := metricName.FindAllString(expr, -1)
		if len(found) == 0 {
			t.Errorf("%s: queries no issuer metric: %s", where, expr)
		}
		for _, m := range found {
			if !names[m] {
				t.Errorf("%s: %s is not exported by the issuer", where, m)
			}
		}
	}
	b, err := os.ReadFile("../../deploy/prometheus/issuer-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatal(err)
	}
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			if r.Alert == "" || r.For == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %q: needs alert, for, labels.severity and annotations.summary", r.Alert)
			}
			check("alert "+r.Alert, r.Expr)
		}
	}
	for _, want := range []string{"MetrumBundleExpiringSoon", "MetrumSigningKeyNotAfterSoon", "MetrumApprovalQueueGrowing", "MetrumLeaseRefusalsHigh"} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
	b, err = os.ReadFile("../../deploy/grafana/issuer-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) < 5 {
		t.Fatalf("dashboard: uid %q, title %q, %d panels", dash.UID, dash.Title, len(dash.Panels))
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			check("panel "+p.Title, q.Expr)
		}
	}
}
