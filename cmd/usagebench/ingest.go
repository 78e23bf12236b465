package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/metrum/licensing/cmd/internal/benchkit"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/usage"
	"github.com/metrum/licensing/verify"
)

// host is one simulated router host: its license, lease token and a chain of
// reports signed in advance (so the load generator's signing does not compete with
// the issuer during the measured window), cut into upload bodies.
type host struct {
	license, token string
	bodies         [][]byte
	reports        int
}

// chainLen is how many reports each host has ready: more than any machine here
// ingests per host in the default window.
const chainLen = 4000

// newHosts gives each host a seeded license, a lease token for it, and a fresh chain
// of one-minute reports ending before now (with the real usage package: usage.Sign).
func newHosts(ctx context.Context, store *storage.Store, o options) ([]*host, error) {
	hosts := make([]*host, o.hosts)
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	errs := make(chan error, o.hosts)
	end := time.Now().UTC().Truncate(time.Minute)
	for i := range hosts {
		tok := make([]byte, 32)
		rand.Read(tok)
		h := &host{license: licenseID(i + 1), token: verify.EncodeB64(tok)}
		hash := sha256.Sum256([]byte(h.token))
		if _, err := store.Pool().Exec(ctx, `INSERT INTO lease_tokens (license_id, token_hash) VALUES ($1, $2)`, h.license, hash[:]); err != nil {
			return nil, err
		}
		hosts[i] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := h.sign(end.Add(-chainLen*time.Minute), o.perBody); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return hosts, <-errs
}

func (h *host) sign(start time.Time, perBody int) error {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	ins := "ins_" + ulid.Make().String()
	totals := map[string]int64{"tokens": 0, "requests": 0}
	prev := ""
	envs := make([][]byte, 0, chainLen)
	for s := int64(1); s <= chainLen; s++ {
		c := map[string]int64{"tokens": 100 + s%900, "requests": 1 + s%7}
		t := map[string]int64{"tokens": totals["tokens"] + c["tokens"], "requests": totals["requests"] + c["requests"]}
		p := usage.Payload{Schema: 1, LicenseID: h.license, Product: "genai-smart-router", InstanceID: ins, Seq: s, Prev: prev,
			PeriodStart: start.Add(time.Duration(s-1) * time.Minute).Format(time.RFC3339), PeriodEnd: start.Add(time.Duration(s) * time.Minute).Format(time.RFC3339),
			Counters: c, Totals: t, Reporter: "usagebench/1"}
		if s == 1 {
			p.HostKey = usage.PublicJWK(priv.Public().(ed25519.PublicKey))
		}
		env, err := usage.Sign(priv, &p)
		if err != nil {
			return err
		}
		envs = append(envs, env)
		prev, totals = usage.Hash(env), t
	}
	for i := 0; i < len(envs); i += perBody {
		h.bodies = append(h.bodies, usage.MarshalBatch(envs[i:min(i+perBody, len(envs))]))
	}
	return nil
}

type phase struct {
	reports, bodies int64
	errs            map[int]int64
	elapsed         time.Duration
	lat             []time.Duration
	exhausted       int
	sent            []int // bodies each host had accepted (warm-up included)
	perBody         int
	// CPU time of this process (issuer and load generator) and of PostgreSQL in the
	// measured window.
	selfCPU, pgCPU time.Duration
}

func (p *phase) rate() float64 { return float64(p.reports) / p.elapsed.Seconds() }

func (p *phase) p(q float64) time.Duration {
	if len(p.lat) == 0 {
		return 0
	}
	return p.lat[min(len(p.lat)-1, int(float64(len(p.lat))*q/100))]
}

func (p *phase) detail() string {
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(p.reports) }
	return fmt.Sprintf("ingestion: %.0f reports/s (%.0f uploads/s of %d) ok=%d errors=%v p50=%.2fms p90=%.2fms p99=%.2fms max=%.2fms hosts out of reports: %d; cpu/report: issuer+client %.0fµs, postgres %.0fµs",
		p.rate(), float64(p.bodies)/p.elapsed.Seconds(), p.perBody, p.reports, p.errs, benchkit.MS(p.p(50)), benchkit.MS(p.p(90)), benchkit.MS(p.p(99)), benchkit.MS(p.p(100)), p.exhausted,
		per(p.selfCPU), per(p.pgCPU))
}

// drive runs every host closed-loop (its next body as soon as the last is answered)
// against url: warm-up, then the measured window.
func drive(ctx context.Context, url string, hosts []*host, o options) (*phase, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: len(hosts), MaxIdleConnsPerHost: len(hosts), DisableCompression: true}}
	var measuring atomic.Bool
	stop := make(chan struct{})
	type result struct {
		reports, bodies int64
		errs            map[int]int64
		lat             []time.Duration
		sent            int
		exhausted       bool
	}
	results := make([]result, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.errs = map[int]int64{}
			for r.sent < len(h.bodies) {
				select {
				case <-stop:
					return
				default:
				}
				body := h.bodies[r.sent]
				req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+h.token)
				t0 := time.Now()
				resp, err := client.Do(req)
				status := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				if status == http.StatusOK {
					r.sent++ // otherwise the same body again (a retry is always safe)
				}
				if !measuring.Load() {
					continue
				}
				if status == http.StatusOK {
					r.bodies++
					r.reports += int64(h.reports0(r.sent-1, o.perBody))
					r.lat = append(r.lat, time.Since(t0))
				} else {
					r.errs[status]++
				}
			}
			r.exhausted = true
		}()
	}
	w, err := benchkit.Measure(o.warmup, o.duration, o.cpuProfile, &measuring)
	if err != nil {
		close(stop)
		wg.Wait()
		return nil, err
	}
	close(stop)
	wg.Wait()
	p := &phase{elapsed: w.Elapsed, errs: map[int]int64{}, perBody: o.perBody, selfCPU: w.SelfCPU, pgCPU: w.PgCPU}
	for i, r := range results {
		p.reports += r.reports
		p.bodies += r.bodies
		p.lat = append(p.lat, r.lat...)
		for k, v := range r.errs {
			p.errs[k] += v
		}
		if r.exhausted {
			p.exhausted++
		}
		p.sent = append(p.sent, r.sent)
		hosts[i].reports = min(r.sent*o.perBody, chainLen)
	}
	slices.Sort(p.lat)
	if p.reports == 0 {
		return p, errors.New("no upload succeeded")
	}
	return p, nil
}

// reports0 is how many reports body i of a host holds.
func (h *host) reports0(i, perBody int) int { return min(perBody, chainLen-i*perBody) }

// checkIngested makes sure the issuer holds exactly what it answered 200 for: every
// host's chain ends at the seq its last accepted body ended with.
func checkIngested(ctx context.Context, store *storage.Store, hosts []*host, p *phase) error {
	for _, h := range hosts {
		var seq int64
		err := store.Pool().QueryRow(ctx, `SELECT coalesce(max(last_seq), 0) FROM usage_chains WHERE license_id = $1 AND reporter = 'usagebench/1'`, h.license).Scan(&seq)
		if err != nil {
			return err
		}
		if seq != int64(h.reports) {
			return fmt.Errorf("host of %s: the issuer holds seq %d, its accepted uploads end at %d", h.license, seq, h.reports)
		}
	}
	return nil
}
