package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/leases"
	"github.com/metrum/licensing/internal/mail"
	"github.com/metrum/licensing/internal/metering"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/purchase"
	"github.com/metrum/licensing/internal/ratelimit"
	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/internal/server/drain"
	"github.com/metrum/licensing/internal/templates"
)

func cmdMigrate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("migrate", "migrate [--json]", `Applies pending database migrations (embedded goose SQL files).

An operator command: it opens the database itself (DATABASE_URL); no key.`)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := a.openStore(ctx); err != nil {
		return err
	}
	applied, err := a.store.Migrate(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(map[string]any{"applied": applied})
	}
	if len(applied) == 0 {
		fmt.Fprintln(a.stdout, "database is up to date")
	}
	for _, m := range applied {
		fmt.Fprintln(a.stdout, "applied", m)
	}
	return nil
}

func cmdServe(ctx context.Context, a *app, args []string) error {
	fs := a.flags("serve", "serve [--addr HOST:PORT]",
		`Runs the HTTP service (staff console and API, portal, customer and lease APIs) until
interrupted. Production use: set DATABASE_URL and METRUM_KEK, run `+"`issuer migrate`"+` first.

An operator command, and the only process that opens the signing keys (the KEK file,
the PKCS#11 PIN): staff act through it, from the browser or the CLI.`)
	addr := fs.String("addr", "", "listen address (default server.addr)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := a.productionChecks(); err != nil {
		return err
	}
	if _, err := a.open(ctx); err != nil {
		return err
	}
	if *addr != "" {
		a.cfg.Server.Addr = *addr
	}
	l, err := net.Listen("tcp", a.cfg.Server.Addr)
	if err != nil {
		return err
	}
	return a.serve(ctx, l, a.portalService(false), false)
}

// serve runs the HTTP server on l until ctx ends, then drains it (internal/server/drain:
// /readyz 503 for server.drain_delay, then connections close after their next
// response, within server.shutdown_timeout). The revocation bundle scheduler runs
// beside it.
func (a *app) serve(ctx context.Context, l net.Listener, ps *portal.Service, dev bool) error {
	if err := a.svc.CheckTemplates(ctx); err != nil {
		return err
	}
	// The bundle scheduler is awaited at shutdown: a publish in progress finishes (or
	// rolls back) before the process, and its database pool, goes away.
	sctx, stopScheduler := context.WithCancel(ctx)
	schedulerDone := make(chan struct{})
	go func() { a.svc.RunBundleScheduler(sctx, a.cfg.Issuer.BundleCheckInterval); close(schedulerDone) }()
	defer func() { stopScheduler(); <-schedulerDone }()
	metrics := server.NewMetrics()
	// The operational gauges are read beside the scheduler, never on a request's path.
	gauges := server.NewOpsGauges(metrics)
	gaugesDone := make(chan struct{})
	go func() { a.svc.WatchOps(sctx, opsGaugeInterval, gauges.Observe); close(gaugesDone) }()
	defer func() { stopScheduler(); <-gaugesDone }()
	lc, sl := a.cfg.Leases, a.cfg.Server.Lifecycle
	leaseSvc := leases.New(a.store, a.svc, leases.Options{MaxBatch: lc.MaxBatch, Workers: lc.Workers,
		Products: []string{templates.ProductRouter, templates.ProductCoreSDK}, ObserveBatch: metrics.ObserveBatch,
		Limiter: ratelimit.New(lc.RatePerLicense, lc.BurstPerLicense, 0), Deadline: sl.LeaseDeadline})
	// The lease workers outlive the HTTP drain below: requests still in flight at
	// shutdown get their decisions, not a 503 at their deadline.
	wctx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	workersDone := make(chan struct{}, 2)
	go func() { leaseSvc.Run(wctx); workersDone <- struct{}{} }()
	defer func() { stopWorkers(); <-workersDone; <-workersDone }()
	usageSvc := a.meteringService(ps)
	go func() { usageSvc.Run(wctx); workersDone <- struct{}{} }()
	var buy *purchase.Service
	if a.cfg.Stripe.Enabled() {
		var err error
		if buy, err = purchase.New(a.cfg.Stripe, a.store, a.svc, ps, ps.BaseURL, a.logger()); err != nil {
			return err
		}
	}
	srv := &server.Server{Svc: a.svc, Leases: leaseSvc, Metrics: metrics, Log: a.logger(),
		SecureCookies: strings.HasPrefix(a.cfg.Server.BaseURL, "https://"), BaseURL: a.cfg.Server.BaseURL, TrustedProxies: a.cfg.Server.TrustedProxyNets(),
		Portal: ps, Purchase: buy, CustomerLimit: ratelimit.New(a.cfg.Customer.RatePerToken, a.cfg.Customer.BurstPerToken, 0),
		Usage: usageSvc, UsageLimit: ratelimit.New(a.cfg.Usage.RatePerCredential, a.cfg.Usage.BurstPerCredential, 0),
		LeaseDeadline: sl.LeaseDeadline, RequestDeadline: sl.RequestDeadline}
	stopMetrics, err := a.metricsAccess(srv, dev)
	if err != nil {
		return err
	}
	defer stopMetrics()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	d := drain.New(hs, drain.Options{Delay: sl.DrainDelay, Timeout: sl.ShutdownTimeout, Log: a.logger()})
	srv.Draining = d.Draining
	// A drain that had to cut connections still ends in exit 0: the report says what
	// was cut, and the process was asked to stop.
	_, err = d.Serve(ctx, l)
	return err
}

// meteringService is usage metering over the open store: its warnings go out through
// the portal's mailer (the SMTP path of the sign-in links), or nowhere when mail is
// not configured (they are still recorded and shown on the dashboard).
func (a *app) meteringService(ps *portal.Service) *metering.Service {
	var m mail.Mailer = ps.Mailer
	if _, none := m.(mail.Unconfigured); none {
		m = nil
		a.logger().Warn("usage warnings will not be mailed: mail.smtp_addr is not set (they are shown on the staff dashboard)")
	}
	u := a.cfg.Usage
	return metering.New(a.store, metering.Options{MaxBatch: u.MaxBatch, Workers: u.Workers, Retention: u.Retention,
		Mailer: m, BaseURL: a.cfg.Server.BaseURL, Log: a.logger(), Deadline: a.cfg.Server.Lifecycle.RequestDeadline})
}

// opsGaugeInterval is how often the operational gauges are read from the database.
const opsGaugeInterval = 30 * time.Second

// metricsAccess decides where /metrics is served, and says so at start: behind the
// scrape token (metrics.token) on the public listener, on a listener of its own
// (metrics.addr, behind the token too when set), openly only for issuer dev on
// loopback, and otherwise not at all. It returns what stops the metrics listener.
func (a *app) metricsAccess(srv *server.Server, dev bool) (func(), error) {
	m := a.cfg.Metrics
	srv.MetricsToken = m.Token
	switch {
	case m.Addr != "":
		srv.MetricsOff = true
		ml, err := net.Listen("tcp", m.Addr)
		if err != nil {
			return nil, fmt.Errorf("metrics.addr: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.MetricsHandler())
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
		go func() { _ = ms.Serve(ml) }()
		a.logger().Info("metrics: served on a listener of its own", "addr", ml.Addr().String(), "token_required", m.Token != "")
		return func() { _ = ms.Close() }, nil
	case m.Token != "":
		a.logger().Info("metrics: served on the public listener at /metrics, behind the scrape token (metrics.token)")
	case dev:
		srv.MetricsOpen = true
		a.logger().Info("metrics: served openly at /metrics (issuer dev, loopback)")
	default:
		a.logger().Warn("metrics: not served: set metrics.token (ISSUER_METRICS_TOKEN) for a bearer-protected /metrics, or metrics.addr (ISSUER_METRICS_ADDR) for a listener of its own")
	}
	return func() {}, nil
}
