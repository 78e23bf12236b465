package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeMetricsAccess runs the real `issuer serve` three ways: with neither a
// scrape token nor a metrics address, /metrics is not served on the public listener
// and the start says so; with a token, only a scrape that presents it gets the
// metrics, gauges included (read by the scheduler at start); with metrics.addr, they
// are served there and not on the public listener.
func TestServeMetricsAccess(t *testing.T) {
	c := newCLI(t)
	c.bootstrap("license", "revocation")

	p := c.startServe(t, "")
	if st, _ := scrape(t, p.url+"/metrics", ""); st != http.StatusNotFound {
		t.Errorf("no token, no address: /metrics answered %d", st)
	}
	if !strings.Contains(p.stderr.String(), "metrics: not served") {
		t.Errorf("the start does not say metrics are not served:\n%s", p.stderr)
	}
	p.cmd.Process.Kill()
	<-p.done

	// A bundle the gauges' first read (at start) finds, whatever the scheduler does.
	c.run("bundle", "publish", "--product", "genai-smart-router")
	const tok = "scrape-token-0123456789"
	p = c.startServe(t, "", "ISSUER_METRICS_TOKEN="+tok)
	if st, _ := scrape(t, p.url+"/metrics", ""); st != http.StatusUnauthorized {
		t.Errorf("with a token, a scrape without it: %d", st)
	}
	waitFor(t, 20*time.Second, "the gauges in a scrape with the token", func() bool {
		st, body := scrape(t, p.url+"/metrics", tok)
		return st == 200 && strings.Contains(body, "metrum_approval_queue_length") && strings.Contains(body, `metrum_bundle_expiry_seconds{product="genai-smart-router"}`)
	})
	p.cmd.Process.Kill()
	<-p.done

	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p = c.startServe(t, "metrics:\n  addr: "+addr+"\n")
	if st, _ := scrape(t, p.url+"/metrics", ""); st != http.StatusNotFound {
		t.Errorf("with metrics.addr, the public listener's /metrics: %d", st)
	}
	if st, body := scrape(t, "http://"+addr+"/metrics", ""); st != 200 || !strings.Contains(body, "metrum_ops_gauges_refresh_errors_total") {
		t.Errorf("metrics.addr: %d %.300s", st, body)
	}
}
