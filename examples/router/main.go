// Command router is the reference router: a minimal HTTP service that enforces its
// Metrum license the way GenAI Smart Router's "License-Protected Deployments" page
// describes, with package enforce and package usage, and nothing else. It is what
// docs/host.md walks through and what the tests drive as a real process.
//
//	router --addr ADDR --license PATH --product NAME [--keyset PATH] [--bundle PATH]
//	       [--require-current-bundle] [--fail-closed-on-bundle-error] [--state PATH]
//	       [--instance-fingerprint FP] [--recheck-interval D] [--grace-on-validation-error D]
//	       [--admin-token T] [--usage-dir DIR] [--report-url URL --lease-token T] [--lease PATH]
//
// Routes: GET /readyz (200 serving, 503 blocked), GET /admin/license/status (bearer
// admin token), POST /v1/chat (feature "routing"; its {"tokens": N} count against the
// license's token budget), GET /metrics (bearer admin token when one is set).
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
	"os/signal"
	"syscall"
	"time"

	"github.com/metrum/licensing/enforce"
	"github.com/metrum/licensing/keys"
	"github.com/metrum/licensing/usage"
	"github.com/metrum/licensing/usage/usagehttp"
	"github.com/metrum/licensing/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a bad command line (exit 2).
type usageError struct{ error }

type config struct {
	addr, license, product, keyset, bundle, state, fingerprint string
	requireCurrent, failClosed                                 bool
	recheck, graceCap                                          time.Duration
	adminToken, usageDir, reportURL, leaseToken, lease         string
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "", "listen address, e.g. 127.0.0.1:8080 (required)")
	fs.StringVar(&c.license, "license", "", "the issued license.json (or a CoreSDK license.jwk) (required)")
	fs.StringVar(&c.product, "product", "", "this router's product, e.g. genai-smart-router (required)")
	fs.StringVar(&c.keyset, "keyset", "", "trusted key set (default: the release key set built in)")
	fs.StringVar(&c.bundle, "bundle", "", "revocation bundle: given, revocation is checked")
	fs.BoolVar(&c.requireCurrent, "require-current-bundle", false, "block unless a current revocation bundle is present")
	fs.BoolVar(&c.failClosed, "fail-closed-on-bundle-error", false, "block on a malformed, expired, untrusted or rolled-back bundle")
	fs.StringVar(&c.state, "state", "", "license state file on durable private storage")
	fs.StringVar(&c.fingerprint, "instance-fingerprint", "", "this instance's fingerprint, for an instance-bound license")
	fs.DurationVar(&c.recheck, "recheck-interval", time.Hour, "how often the license is checked again")
	fs.DurationVar(&c.graceCap, "grace-on-validation-error", 24*time.Hour, "the operator's cap on grace after a transient validation error (0: the license's own period)")
	fs.StringVar(&c.adminToken, "admin-token", os.Getenv("ROUTER_ADMIN_TOKEN"), "bearer token of /admin/license/status and /metrics (or $ROUTER_ADMIN_TOKEN; none: admin status off)")
	fs.StringVar(&c.usageDir, "usage-dir", "", "folder of the usage recorder (reports, host key, 0700)")
	fs.StringVar(&c.reportURL, "report-url", "", "issuer's usage endpoint (https://…/v1/usage): upload reports when online")
	fs.StringVar(&c.leaseToken, "lease-token", os.Getenv("ROUTER_LEASE_TOKEN"), "the license's lease token, the upload's credential (or $ROUTER_LEASE_TOKEN)")
	fs.StringVar(&c.lease, "lease", "", "the lease file of a lease-required license, kept current by a lease client beside the router (watched)")
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return nil, usageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	case c.addr == "" || c.license == "" || c.product == "":
		return nil, usageError{errors.New("--addr, --license and --product are required")}
	case (c.reportURL == "") != (c.leaseToken == ""):
		return nil, usageError{errors.New("--report-url and --lease-token go together")}
	case c.reportURL != "" && c.usageDir == "":
		return nil, usageError{errors.New("--report-url needs --usage-dir (reports are kept there until accepted)")}
	case c.recheck <= 0 || c.graceCap < 0:
		return nil, usageError{errors.New("--recheck-interval must be positive and --grace-on-validation-error not negative")}
	}
	return c, nil
}

func loadKeySet(path string) (*verify.KeySet, error) {
	data := keys.ReleaseKeySet
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, err
		}
	}
	ks, err := verify.ParseKeySet(data)
	if err != nil {
		return nil, err
	}
	if len(ks.Keys()) == 0 {
		return nil, errors.New("this build trusts no keys: build it with the release key set (scripts/release-verifier embeds it the same way), or pass --keyset")
	}
	return ks, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	ks, err := loadKeySet(c.keyset)
	if err != nil {
		return err
	}
	var rec *usage.Recorder
	if c.usageDir != "" {
		uo := usage.Options{Dir: c.usageDir, Reporter: "metrum-reference-router/1", Logger: log}
		if c.reportURL != "" {
			if uo.Uploader, err = usagehttp.New(c.reportURL, c.leaseToken, nil); err != nil {
				return usageError{err}
			}
		}
		if rec, err = usage.Open(uo); err != nil {
			return err
		}
	}
	o := enforce.Options{License: enforce.File(c.license), Product: c.product, KeySet: ks,
		RequireCurrentBundle: c.requireCurrent, FailClosedOnBundleError: c.failClosed, StatePath: c.state,
		InstanceFingerprint: c.fingerprint, RecheckInterval: c.recheck, GraceOnValidationError: c.graceCap,
		Usage: rec, Logger: log}
	if c.bundle != "" {
		o.Bundle = enforce.File(c.bundle)
	}
	if c.lease != "" {
		o.Lease = enforce.File(c.lease)
	}
	e, err := enforce.New(o)
	if err != nil {
		if rec != nil {
			rec.Close()
		}
		return err
	}
	defer e.Close()
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newServer(e, rec, c.adminToken, log).routes(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "router: listening on http://%s\n", ln.Addr())

	bg, stopBG := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { e.Run(bg); done <- struct{}{} }()
	if rec != nil {
		go func() { rec.Run(bg); done <- struct{}{} }()
	} else {
		done <- struct{}{}
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	// Drain: stop taking requests, then stop checking, then close the usage period
	// (its report is written, and sent when online) and let go of the folder.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	stopBG()
	<-done
	<-done
	if rec != nil {
		if uerr := rec.Shutdown(sctx); uerr != nil {
			log.Warn("usage: shutdown", "err", uerr)
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
