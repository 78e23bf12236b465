package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/metrum/licensing/internal/config"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/logctx"
	"github.com/metrum/licensing/internal/mail"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/ratelimit"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/signing/pkcs11"
	"github.com/metrum/licensing/internal/staffclient"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/verify"
)

// devRenewURLFile, under the data folder, holds the lease renew URL `issuer dev`
// chose, for CLI commands run against the dev database.
const devRenewURLFile = "dev-lease-renew-url"

// app is what a command needs, opened lazily.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	cfg            *config.Config
	store          *storage.Store
	svc            *issuance.Service
	log            *slog.Logger
	fileKeys       *signing.FileBackend
	cleanup        []func()
	// devDB: the private dev database under data_dir is in use (no DATABASE_URL).
	devDB bool
}

func (a *app) close() {
	for i := len(a.cleanup) - 1; i >= 0; i-- {
		a.cleanup[i]()
	}
}

func (a *app) config() (*config.Config, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	c, err := config.Load(a.getenv("ISSUER_CONFIG"), a.getenv)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	a.cfg = c
	return c, nil
}

func (a *app) logger() *slog.Logger {
	if a.log == nil {
		// Lines logged for a request name it: the server puts its ID in the context.
		a.log = slog.New(logctx.Handler(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	}
	return a.log
}

// open connects to the configured database and builds the service.
func (a *app) open(ctx context.Context) (*issuance.Service, error) {
	if a.svc != nil {
		return a.svc, nil
	}
	if err := a.openStore(ctx); err != nil {
		return nil, err
	}
	return a.service(a.store)
}

// openStore opens the database only (operator commands that read it, such as `audit
// verify`, open no key).
func (a *app) openStore(ctx context.Context) error {
	if a.store != nil {
		return nil
	}
	c, err := a.config()
	if err != nil {
		return err
	}
	if c.Database.URL == "" {
		// The dev database: lease-policy licenses name the running dev server's URL.
		if c.Issuer.LeaseRenewURL == "" {
			if b, err := os.ReadFile(filepath.Join(c.Database.DataDir, devRenewURLFile)); err == nil {
				c.Issuer.LeaseRenewURL = strings.TrimSpace(string(b))
			}
		}
		a.devDB = true
		url, cl, err := devDatabaseURL(c)
		if cl != nil && !cl.Shared {
			a.cleanup = append(a.cleanup, func() { _ = cl.Stop() })
		}
		if err != nil {
			return err
		}
		c.Database.URL = url
	}
	store, err := storage.Open(ctx, c.Database.URL)
	if err != nil {
		return err
	}
	a.cleanup = append(a.cleanup, store.Close)
	a.store = store
	return nil
}

func (a *app) service(store *storage.Store) (*issuance.Service, error) {
	keys, err := a.keyBackends()
	if err != nil {
		return nil, err
	}
	a.store = store
	ic := a.cfg.Issuer
	a.svc = issuance.New(store, issuance.Config{Keys: keys, Issuer: ic.Name, CoreSDKIssuer: ic.CoreSDKIssuer,
		RenewURL: ic.LeaseRenewURL, MakerChecker: ic.MakerChecker, Changeover: ic.Changeover,
		BundleTTL: ic.BundleTTL, BundleRetention: ic.BundleRetention, Log: a.logger()})
	return a.svc, nil
}

// portalService is the customer portal and API over the open store. Mail goes through
// SMTP when configured; dev prints sign-in links to its console instead.
func (a *app) portalService(dev bool) *portal.Service {
	var m mail.Mailer = mail.Unconfigured{}
	switch {
	case a.cfg.Mail.SMTPAddr != "":
		m = &mail.SMTP{Addr: a.cfg.Mail.SMTPAddr, From: a.cfg.Mail.From, Username: a.cfg.Mail.Username, Password: a.getenv("ISSUER_SMTP_PASSWORD")}
	case dev:
		m = &mail.Console{Out: a.stdout}
	}
	var rel *portal.Releases
	if a.cfg.Releases.Dir != "" {
		rel = &portal.Releases{Dir: a.cfg.Releases.Dir}
	}
	return portal.New(a.store, portal.Config{Mailer: m, BaseURL: a.cfg.Server.BaseURL, Log: a.logger(),
		SignInLimit: ratelimit.New(5.0/900, 5, 0), Releases: rel})
}

// keyBackends opens the file backend and, when configured, the PKCS#11 token.
func (a *app) keyBackends() (*signing.Keys, error) {
	kek, err := a.kek()
	if err != nil {
		return nil, err
	}
	a.fileKeys = signing.NewFileBackend(a.cfg.Signing.KeyDir, kek)
	backends := []signing.Backend{a.fileKeys}
	if p := a.cfg.Signing.PKCS11; p.Enabled() {
		pin := a.getenv("METRUM_PKCS11_PIN")
		if pin == "" && p.PinFile != "" {
			b, err := signing.ReadSecretFile("PKCS#11 PIN", p.PinFile) // 0600, like the KEK file
			if err != nil {
				return nil, err
			}
			pin = strings.TrimSpace(string(b))
		}
		hsm, closeHSM, err := pkcs11.New(pkcs11.Config{Module: p.Module, TokenLabel: p.TokenLabel, Pin: pin})
		if err != nil {
			return nil, err
		}
		a.cleanup = append(a.cleanup, func() { _ = closeHSM() })
		backends = append(backends, hsm)
	}
	return signing.NewKeys(backends...), nil
}

func (a *app) kek() (*signing.KEK, error) {
	if v := a.getenv("METRUM_KEK"); v != "" {
		return signing.ParseKEK(v)
	}
	k, err := signing.LoadKEKFile(a.cfg.Signing.KEKFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no key-encryption key: set METRUM_KEK or create %s (issuer dev does this for you)", a.cfg.Signing.KEKFile)
	}
	return k, err
}

// parseAPI parses a command's flags and returns the staff API client of whoever the
// CLI's credentials name (as points at the --as flag, read after parsing).
func (a *app) parseAPI(fs *flag.FlagSet, args []string, as *string) (remote, error) {
	if err := parse(fs, args); err != nil {
		return remote{}, err
	}
	return a.api(*as)
}

// api returns the staff API client. The issuer URL is ISSUER_URL, else the
// credentials file's, else the running dev issuer's; the token is ISSUER_TOKEN, else
// the dev token of the account --as / ISSUER_AS names (scripts/dev's demo accounts
// only: it must exist under the data folder), else the credentials file's that
// `issuer login` wrote. The CLI itself never opens the database or a key.
func (a *app) api(as string) (remote, error) {
	c, err := a.config()
	if err != nil {
		return remote{}, err
	}
	creds, err := readCredentials(a.credentialsPath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return remote{}, fmt.Errorf("credentials file: %w (it must be yours alone, 0600: run `issuer login` again)", err)
	}
	url := firstOf(a.getenv("ISSUER_URL"), creds.URL)
	if url == "" {
		if b, err := os.ReadFile(filepath.Join(c.Database.DataDir, devURLFile)); err == nil {
			url = strings.TrimSpace(string(b))
		}
	}
	if as == "" {
		as = a.getenv("ISSUER_AS")
	}
	token := a.getenv("ISSUER_TOKEN")
	switch {
	case token != "":
	case as != "":
		b, err := signing.ReadSecretFile("dev token", filepath.Join(c.Database.DataDir, devTokenDir, strings.ToLower(as)))
		if err != nil {
			return remote{}, fmt.Errorf("--as / ISSUER_AS picks a demo account's token of `issuer dev` only, and %s has none here (%v): sign in with `issuer login` instead", as, err)
		}
		token = strings.TrimSpace(string(b))
	case creds.Token != "":
		token = creds.Token
	default:
		return remote{}, errors.New("not signed in: run `issuer login --url https://your-issuer` (or set ISSUER_URL and ISSUER_TOKEN)")
	}
	return remote{c: staffclient.New(url, token)}, nil
}

func firstOf(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// flags makes a FlagSet whose --help explains the command.
func (a *app) flags(name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "Usage: issuer %s\n\n%s\n\nFlags:\n", synopsis, strings.TrimSpace(help))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags; --help is not an error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		return errUsage
	}
	return nil
}

var errHelp = errors.New("help")

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	b, err := json.Marshal(v, jsontext.WithIndent("  "), json.Deterministic(true))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", b)
	return err
}

// sub dispatches "noun verb" commands.
func sub(ctx context.Context, a *app, noun string, args []string, verbs map[string]cmdFunc, help string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(a.stdout, help)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	f, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(a.stderr, "issuer %s: unknown command %q\n\n%s", noun, args[0], help)
		return errUsage
	}
	err := f(ctx, a, args[1:])
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// listing is how a list command prints: JSON with --json, else an aligned table, or a
// message saying what to do when there is nothing to show.
type listing[T any] struct {
	empty  string                 // shown when there are no rows
	header string                 // tab-separated column names
	row    func(T) string         // one tab-separated row, no newline
	json   func(T) map[string]any // the --json form of a row
	// more, when set, names the next page's flag after a full page ("--before 12").
	more func(last T) string
	full bool // the page was full: there may be more
}

func printListing[T any](a *app, asJSON bool, rows []T, l listing[T]) error {
	if asJSON {
		out := make([]map[string]any, 0, len(rows))
		for _, r := range rows {
			out = append(out, l.json(r))
		}
		return a.printJSON(out)
	}
	if len(rows) == 0 {
		fmt.Fprintln(a.stdout, l.empty)
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, l.header)
	for _, r := range rows {
		fmt.Fprintln(tw, l.row(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if l.full && l.more != nil {
		fmt.Fprintf(a.stdout, "more: %s\n", l.more(rows[len(rows)-1]))
	}
	return nil
}

// actorFlags adds the --as and --json flags most commands take.
func actorFlags(fs *flag.FlagSet) (as *string, asJSON *bool) {
	return fs.String("as", "", "staff email to act as (default $ISSUER_AS)"), fs.Bool("json", false, "print JSON")
}

// optTimeJSON renders an optional time for --json output: RFC 3339, or null.
func optTimeJSON(t *time.Time) any {
	if t == nil {
		return nil
	}
	return verify.FormatTime(*t)
}
