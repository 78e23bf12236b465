// Command usagebench measures usage metering end to end. It starts a private, durable
// PostgreSQL (fsync and synchronous commit on, as in production), migrates it, seeds
// 100,000 licenses with 90 days of daily rollups (SQL generate_series), then:
//
//  1. ingestion: simulated router hosts, each with its own license and lease token,
//     upload signed reports of their own chains (made with the real usage package) to
//     the real POST /v1/usage over loopback HTTP, closed-loop, for a fixed time;
//  2. pages: the console's usage pages (a license's usage page over random licenses,
//     the list past 80 %, the dashboard with its usage line, the billing CSV) through
//     the real handler, signed in as staff.
//
// It prints each phase's figures and, as its last line,
//
//	usage: <N> reports/s p50=<ms> p99=<ms>
//
// where p50 and p99 are of the upload requests (-per-body reports each).
//
// Run: go run ./cmd/usagebench   (-hosts, -per-body, -duration, -licenses, -days scale it)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/signal"
	"time"

	"github.com/metrum/licensing/cmd/internal/benchkit"
	"github.com/metrum/licensing/internal/metering"
	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/internal/storage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "usagebench:", err)
		os.Exit(1)
	}
}

type options struct {
	hosts, perBody, licenses, days, rounds int
	maxBatch, workers                      int
	duration, warmup                       time.Duration
	durable                                bool
	dbURL                                  string
	cpuProfile                             string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("usagebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.hosts, "hosts", 64, "simulated router hosts uploading in a loop, each on its own connection, license and chain")
	fs.IntVar(&o.perBody, "per-body", 10, "reports per upload body (a host sending what closed since its last upload)")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "measured ingestion time")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured ingestion time before it")
	fs.IntVar(&o.licenses, "licenses", 100_000, "licenses to seed")
	fs.IntVar(&o.days, "days", 90, "days of daily rollups per seeded license")
	fs.IntVar(&o.rounds, "rounds", 200, "requests per page")
	fs.IntVar(&o.maxBatch, "max-batch", 64, "uploads decided per transaction at most (usage.max_batch)")
	fs.IntVar(&o.workers, "workers", 2, "batches in flight (usage.workers)")
	fs.BoolVar(&o.durable, "durable", true, "fsync and synchronous commit on (false: the test cluster's settings)")
	fs.StringVar(&o.dbURL, "database-url", "", "use this empty database instead of a private cluster")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured ingestion to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.hosts < 1 || o.perBody < 1 || o.perBody > 1000 || o.licenses < o.hosts*2 || o.days < 1 {
		return fmt.Errorf("want -hosts ≥ 1, -per-body 1…1000, -licenses ≥ 2 × hosts, -days ≥ 1")
	}
	log := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	if o.dbURL == "" {
		log("starting a private PostgreSQL (durable=%v)…", o.durable)
	}
	url, stopDB, err := benchkit.Database(ctx, "usagebench", o.dbURL, o.durable)
	if err != nil {
		return err
	}
	defer stopDB()
	store, err := storage.Open(ctx, url)
	if err != nil {
		return err
	}
	defer store.Close()
	svc, admin, done, err := benchkit.Issuer(ctx, store, "usagebench")
	if err != nil {
		return err
	}
	defer done()
	t0 := time.Now()
	log("seeding %d licenses with %d days of rollups…", o.licenses, o.days)
	if err := seed(ctx, store, o.licenses, o.days, log); err != nil {
		return err
	}
	log("seeded in %s", time.Since(t0).Round(time.Second))
	hosts, err := newHosts(ctx, store, o)
	if err != nil {
		return err
	}

	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	usageSvc := metering.New(store, metering.Options{MaxBatch: o.maxBatch, Workers: o.workers, Log: quiet})
	go usageSvc.Run(bctx)
	srv := &server.Server{Svc: svc, Usage: usageSvc, Log: quiet}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	ing, err := drive(ctx, ts.URL+"/v1/usage", hosts, o)
	if err != nil {
		return err
	}
	log("%s", ing.detail())
	if err := checkIngested(ctx, store, hosts, ing); err != nil {
		return err
	}
	// The same console without usage metering: the dashboard's cost without its usage
	// line, for comparison.
	bare := httptest.NewServer((&server.Server{Svc: svc, Log: quiet}).Handler())
	defer bare.Close()
	if err := measurePages(ctx, store, ts.URL, bare.URL, admin.Email, o, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "usage: %.0f reports/s p50=%.2f p99=%.2f\n", ing.rate(), benchkit.MS(ing.p(50)), benchkit.MS(ing.p(99)))
	return nil
}
