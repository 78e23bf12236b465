// Command leasebench measures the lease API under load, end to end: it starts a
// private, durable PostgreSQL (fsync and synchronous commit on, as in production),
// migrates it, issues a lease-required license, serves the real issuer handler on
// loopback, and drives POST /v1/leases from many simulated router hosts for a fixed
// time. In the same run it measures a ceiling: the same HTTP server answering with a
// pre-signed lease and no database. The last line is
//
//	leases: <N> req/s p50=<ms> p99=<ms> ceiling=<N> req/s ratio=<renewals/ceiling>
//
// Run: go run ./cmd/leasebench [-hosts 64] [-duration 15s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metrum/licensing/cmd/internal/benchkit"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/leases"
	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/internal/templates"
	"github.com/metrum/licensing/verify"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "leasebench:", err)
		os.Exit(1)
	}
}

type options struct {
	hosts    int
	duration time.Duration
	warmup   time.Duration
	batch    int
	workers  int
	durable  bool
	dbURL    string
	profile  string // CPU profile of the measured window, when set
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("leasebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.hosts, "hosts", 64, "simulated router hosts, each renewing in a loop on its own connection")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "measured time per phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time before each phase")
	fs.IntVar(&o.batch, "max-batch", 256, "lease requests per transaction at most")
	fs.IntVar(&o.workers, "workers", 2, "lease batches in flight")
	fs.BoolVar(&o.durable, "durable", true, "fsync and synchronous commit on (false: the test cluster's settings)")
	fs.StringVar(&o.dbURL, "database-url", "", "use this empty database instead of a private cluster")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the renewal phase to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }

	dir, err := os.MkdirTemp("", "leasebench-keys-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.dbURL == "" {
		log("starting a private PostgreSQL (durable=%v)…", o.durable)
	}
	url, stopDB, err := benchkit.Database(ctx, "leasebench", o.dbURL, o.durable)
	if err != nil {
		return err
	}
	defer stopDB()
	store, err := storage.Open(ctx, url)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		return err
	}
	svc, license, token, err := setup(ctx, store, dir, o.hosts)
	if err != nil {
		return err
	}
	log("license %s (max_instances %d, lease ttl %ds); %d hosts, %s per phase", license.ID, 2*o.hosts, license.Terms.LeaseTTLSeconds, o.hosts, o.duration)

	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	metrics := server.NewMetrics()
	ls := leases.New(store, svc, leases.Options{MaxBatch: o.batch, Workers: o.workers,
		Products: []string{templates.ProductRouter}, ObserveBatch: metrics.ObserveBatch})
	go ls.Run(bctx)
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	real := &server.Server{Svc: svc, Leases: ls, Metrics: metrics, Log: quiet}
	o.profile = *cpuProfile
	renew, err := drive(ctx, real.Handler(), o, license.ID, token, "renewals")
	if err != nil {
		return err
	}
	o.profile = ""
	log("%s", renew.detail())
	var rows int64
	store.Pool().QueryRow(ctx, `SELECT count(*) FROM lease_events WHERE license_id = $1`, license.ID).Scan(&rows)
	log("lease_events rows written: %d (every 200 has one)", rows)

	presigned, err := presign(ctx, svc, license.ID)
	if err != nil {
		return err
	}
	ceil := &server.Server{Svc: svc, Leases: presigned, Metrics: server.NewMetrics(), Log: quiet}
	ceiling, err := drive(ctx, ceil.Handler(), o, license.ID, token, "ceiling")
	if err != nil {
		return err
	}
	log("%s", ceiling.detail())
	fmt.Fprintf(stdout, "leases: %.0f req/s p50=%.2f p99=%.2f ceiling=%.0f req/s ratio=%.2f\n",
		renew.rate(), benchkit.MS(renew.p(50)), benchkit.MS(renew.p(99)), ceiling.rate(), renew.rate()/ceiling.rate())
	return nil
}

// setup makes keys, a customer and a lease-required pilot license with room for
// twice the simulated hosts, and returns its lease token.
func setup(ctx context.Context, store *storage.Store, dir string, hosts int) (*issuance.Service, *entitlements.License, string, error) {
	kek, err := signing.NewKEKFile(filepath.Join(dir, "kek"))
	if err != nil {
		return nil, nil, "", err
	}
	svc := issuance.New(store, issuance.Config{Keys: signing.NewKeys(signing.NewFileBackend(filepath.Join(dir, "keys"), kek)),
		Issuer: "metrum", RenewURL: "https://licensing.metrum.test/v1/leases", MakerChecker: true})
	admin := &entitlements.Staff{Email: "bench-admin", Role: entitlements.RoleAdmin}
	maker := &entitlements.Staff{Email: "bench-maker", Role: entitlements.RoleIssuer}
	checker := &entitlements.Staff{Email: "bench-checker", Role: entitlements.RoleApprover}
	for _, p := range []verify.Purpose{verify.PurposeLicense, verify.PurposeLease} {
		if _, err := svc.GenerateKey(ctx, entitlements.KeyInput{Product: templates.ProductRouter, Alg: verify.AlgEdDSA,
			Purposes: []verify.Purpose{p}}, true, admin); err != nil {
			return nil, nil, "", err
		}
	}
	c := &entitlements.Customer{Name: "Benchmark Fleet"}
	if err := svc.CreateCustomer(ctx, c, maker); err != nil {
		return nil, nil, "", err
	}
	e, err := svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: c.ID, Template: "pilot-30d",
		Overrides: entitlements.Overrides{Limits: map[string]int64{"max_instances": int64(2 * hosts)}}}, maker)
	if err != nil {
		return nil, nil, "", err
	}
	if _, err := svc.Approve(ctx, e.ID, checker); err != nil {
		return nil, nil, "", err
	}
	l, tok, err := svc.IssueWithToken(ctx, e.ID, maker)
	return svc, l, tok, err
}

// presignedGranter answers every request with one lease signed up front: the
// ceiling's stand-in for the database path.
type presignedGranter struct{ lease *leases.Lease }

func (p presignedGranter) Grant(context.Context, []byte, string, string) (*leases.Lease, error) {
	return p.lease, nil
}
func (p presignedGranter) Release(context.Context, []byte, string) (*entitlements.ReleaseResult, error) {
	return &entitlements.ReleaseResult{Known: true}, nil
}

func presign(ctx context.Context, svc *issuance.Service, licenseID string) (presignedGranter, error) {
	k, err := svc.LeaseSigner(ctx, templates.ProductRouter)
	if err != nil {
		return presignedGranter{}, err
	}
	now := time.Now().UTC()
	payload := fmt.Sprintf(`{"schema":1,"lease_id":"lea_01HZY3QK8Y0000000000000001","license_id":%q,"instance_fingerprint":"host-0000",`+
		`"issued_at":%q,"expires_at":%q}`, licenseID, verify.FormatTime(now), verify.FormatTime(now.Add(time.Hour)))
	file, err := signing.SignEnvelope(k, verify.FormatLease, []byte(payload))
	return presignedGranter{&leases.Lease{LicenseID: licenseID, File: file}}, err
}

type phase struct {
	name    string
	ok      int64
	errs    map[int]int64
	elapsed time.Duration
	lat     []time.Duration
	// CPU time spent during the window by this process (server and load generator)
	// and by every PostgreSQL process.
	selfCPU, pgCPU time.Duration
}

func (p *phase) rate() float64 { return float64(p.ok) / p.elapsed.Seconds() }

func (p *phase) p(q float64) time.Duration {
	if len(p.lat) == 0 {
		return 0
	}
	return p.lat[min(len(p.lat)-1, int(float64(len(p.lat))*q/100))]
}

func (p *phase) detail() string {
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(p.ok) }
	return fmt.Sprintf("%-8s %8.0f req/s  ok=%d errors=%v  p50=%.2fms p90=%.2fms p99=%.2fms max=%.2fms  cpu/req: issuer+client %.0fµs, postgres %.0fµs",
		p.name, p.rate(), p.ok, p.errs, benchkit.MS(p.p(50)), benchkit.MS(p.p(90)), benchkit.MS(p.p(99)), benchkit.MS(p.p(100)), per(p.selfCPU), per(p.pgCPU))
}

// drive serves h on loopback and runs o.hosts closed-loop clients against it: each
// host renews its own lease as fast as answers come back. Warm-up first, then the
// measured window.
func drive(ctx context.Context, h http.Handler, o options, licenseID, token, name string) (*phase, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(l)
	defer hs.Close()
	url := "http://" + l.Addr().String() + "/v1/leases"
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: o.hosts, MaxIdleConnsPerHost: o.hosts, DisableCompression: true}}

	var measuring atomic.Bool
	stop := make(chan struct{})
	results := make([]struct {
		ok   int64
		errs map[int]int64
		lat  []time.Duration
	}, o.hosts)
	var wg sync.WaitGroup
	for i := range o.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.errs = map[int]int64{}
			body := fmt.Sprintf(`{"license_id":%q,"instance_fingerprint":"host-%04d"}`, licenseID, i)
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				resp, err := client.Do(req)
				status := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				if !measuring.Load() {
					continue
				}
				if status == http.StatusOK {
					r.ok++
					r.lat = append(r.lat, time.Since(t0))
				} else {
					r.errs[status]++
				}
			}
		}()
	}
	w, err := benchkit.Measure(o.warmup, o.duration, o.profile, &measuring)
	if err != nil {
		close(stop)
		wg.Wait()
		return nil, err
	}
	close(stop)
	wg.Wait()
	p := &phase{name: name, elapsed: w.Elapsed, errs: map[int]int64{}, selfCPU: w.SelfCPU, pgCPU: w.PgCPU}
	for _, r := range results {
		p.ok += r.ok
		p.lat = append(p.lat, r.lat...)
		for k, v := range r.errs {
			p.errs[k] += v
		}
	}
	slices.Sort(p.lat)
	if p.ok == 0 {
		return p, errors.New(name + ": no request succeeded")
	}
	return p, nil
}
