package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

// Dev accounts. Their passwords are random, made at first start and kept in
// .data/dev-logins.txt (0600) so a second start can print them again.
var devStaff = []struct {
	email string
	role  entitlements.Role
}{
	{"admin@metrum.local", entitlements.RoleAdmin},
	{"issuer@metrum.local", entitlements.RoleIssuer},
	{"approver@metrum.local", entitlements.RoleApprover},
	{"viewer@metrum.local", entitlements.RoleViewer},
}

// devKeys are the keys a dev issuer starts with: one per product and purpose, as in
// production (keys/README.md).
var devKeys = []struct {
	product, alg string
	purpose      verify.Purpose
}{
	{"genai-smart-router", verify.AlgEdDSA, verify.PurposeLicense},
	{"genai-smart-router", verify.AlgEdDSA, verify.PurposeRevocation},
	{"genai-smart-router", verify.AlgEdDSA, verify.PurposeLease},
	{"coresdk", verify.AlgRS256, verify.PurposeLicense},
	{"coresdk", verify.AlgES256, verify.PurposeRevocation},
}

func cmdDev(ctx context.Context, a *app, args []string) error {
	fs := a.flags("dev", "dev [--addr HOST:PORT] [--no-demo]",
		`Starts everything for local use with no manual step: a private PostgreSQL under
.data/pg (unless DATABASE_URL is set), migrations, a KEK and dev signing keys under
.data/ (never committed), demo staff accounts and a demo license, then serves on
loopback and prints the URL and a staff login. A second start reuses the same data.

An operator command: it opens the dev database and keys itself, and writes tokens for
the demo accounts under the data folder so that ISSUER_AS=email picks one.`)
	addr := fs.String("addr", "", "listen address (default server.addr, 127.0.0.1:8080; a free port if busy)")
	noDemo := fs.Bool("no-demo", false, "don't create the demo customer and license")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := a.config()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Database.DataDir, 0o711); err != nil {
		return err
	}
	if a.getenv("METRUM_KEK") == "" {
		if _, err := os.Stat(c.Signing.KEKFile); errors.Is(err, os.ErrNotExist) {
			if _, err := signing.NewKEKFile(c.Signing.KEKFile); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "created dev key-encryption key %s\n", c.Signing.KEKFile)
		}
	}
	fmt.Fprintln(a.stdout, "starting PostgreSQL and applying migrations…")
	svc, err := a.open(ctx)
	if err != nil {
		return err
	}
	applied, err := a.store.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		fmt.Fprintf(a.stdout, "applied %d migrations\n", len(applied))
	}
	logins, err := a.devStaff(ctx)
	if err != nil {
		return err
	}
	admin, _ := a.store.StaffByEmail(ctx, devStaff[0].email)
	if err := a.devKeys(ctx, svc, admin); err != nil {
		return err
	}
	if *addr != "" {
		c.Server.Addr = *addr
	}
	l, err := net.Listen("tcp", c.Server.Addr)
	if err != nil && *addr == "" {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return err
	}
	defer l.Close()
	renewNote := ""
	if svc.RenewURL == "" {
		// Lease-policy licenses must name an https renew URL (the verifier insists).
		// The dev server speaks plain HTTP on the same port: a local router is pointed
		// at the http:// address by hand.
		svc.RenewURL = "https://" + l.Addr().String() + "/v1/leases"
		renewNote = fmt.Sprintf("\n  leases:       licenses name %s; dev serves plain HTTP, so point a local router at http://%s/v1/leases", svc.RenewURL, l.Addr())
		// CLI commands against this dev database (another process) use it too.
		if err := os.WriteFile(filepath.Join(c.Database.DataDir, devRenewURLFile), []byte(svc.RenewURL+"\n"), 0o644); err != nil {
			return err
		}
	}
	if !*noDemo {
		if err := a.devDemo(ctx, svc); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
	}
	ks, err := svc.PublicKeySet(ctx)
	if err != nil {
		return err
	}
	keyset := filepath.Join(c.Database.DataDir, "keyset.json")
	if err := verify.WriteFileAtomic(keyset, ks, 0o644); err != nil {
		return err
	}
	if c.Releases.Dir == "" {
		c.Releases.Dir = filepath.Join(c.Database.DataDir, "releases")
	}
	releaseNote := a.devRelease(ctx, keyset, c.Releases.Dir)
	url := "http://" + l.Addr().String()
	var emails []string
	for _, d := range devStaff {
		emails = append(emails, d.email)
	}
	if err := a.writeDevTokens(ctx, url, emails...); err != nil {
		return fmt.Errorf("dev tokens: %w", err)
	}
	ps := a.portalService(true)
	ps.BaseURL = url
	portalLine := "(no demo portal user: run without --no-demo)"
	if !*noDemo {
		if portalLine, err = a.devPortal(ctx, ps); err != nil {
			return fmt.Errorf("demo portal user: %w", err)
		}
	}
	fmt.Fprintf(a.stdout, `
Metrum license issuer (dev) is running.

  URL:          %s/staff/login
  staff login:  %s
  portal:       %s
  key set:      %s   (verifier ... --keyset %s)
  downloads:    %s
  CLI:          ISSUER_AS=%s go run ./cmd/issuer license list   (dev tokens of the demo
                accounts are under %s/dev-tokens; elsewhere: issuer login --url %s)%s

Sign-in links of the portal are printed here (dev has no SMTP server).
Press Ctrl-C to stop (the database under %s stops with it).
`, url, logins, portalLine, keyset, keyset, releaseNote, devStaff[0].email, c.Database.DataDir, url, renewNote, c.Database.DataDir)
	// No load balancer watches a dev server's /readyz: Ctrl-C stops it without the
	// drain delay (the rest of the drain still runs).
	c.Server.DrainDelay = 0
	return a.serve(ctx, l, ps, true)
}

// devPortalEmail is the demo customer's portal user.
const devPortalEmail = "ops@acme.example"

// devPortal makes the demo portal user once and returns a fresh one-time sign-in link
// for it (15 minutes; ask for another on the sign-in page, printed here too).
func (a *app) devPortal(ctx context.Context, ps *portal.Service) (string, error) {
	list, err := a.store.ListCustomers(ctx, 0, 1)
	if err != nil || len(list) == 0 {
		return "(no demo customer)", err
	}
	users, err := a.store.ListPortalUsers(ctx, list[0].ID)
	if err != nil {
		return "", err
	}
	if len(users) == 0 {
		if _, err := a.store.CreatePortalUser(ctx, list[0].ID, devPortalEmail, "Acme operator", "dev"); err != nil {
			return "", err
		}
	}
	tok, _, err := a.store.CreateSignInLink(ctx, devPortalEmail)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s/portal/sign-in/link?token=%s   (%s; one use, 15 minutes)", ps.BaseURL, tok, devPortalEmail), nil
}

// devStaff creates the dev accounts once and returns the admin login line.
func (a *app) devStaff(ctx context.Context) (string, error) {
	path := filepath.Join(a.cfg.Database.DataDir, "dev-logins.txt")
	n, err := a.store.CountStaff(ctx)
	if err != nil {
		return "", err
	}
	if n == 0 {
		var lines []string
		for _, s := range devStaff {
			raw := make([]byte, 12)
			_, _ = rand.Read(raw)
			pw := base64.RawURLEncoding.EncodeToString(raw)
			st := &entitlements.Staff{Email: s.email, Name: strings.Split(s.email, "@")[0], Role: s.role}
			if err := entitlements.ValidateNewStaff(st, pw); err != nil {
				return "", err
			}
			if err := a.store.CreateStaff(ctx, st, pw, "dev"); err != nil {
				return "", err
			}
			lines = append(lines, fmt.Sprintf("%s %s %s", s.email, pw, s.role))
		}
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return "", err
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "(dev-logins.txt missing: create an account with `issuer staff create`)", nil
	}
	first := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	if len(first) < 2 {
		return "", fmt.Errorf("%s is malformed", path)
	}
	return fmt.Sprintf("%s / %s   (all dev accounts: %s)", first[0], first[1], path), nil
}

func (a *app) devKeys(ctx context.Context, svc *issuance.Service, admin *entitlements.Staff) error {
	for _, k := range devKeys {
		if _, err := a.store.ActiveKey(ctx, k.product, string(k.purpose)); err == nil {
			continue
		}
		rec, err := svc.GenerateKey(ctx, entitlements.KeyInput{Product: k.product, Alg: k.alg, Purposes: []verify.Purpose{k.purpose}}, true, admin)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "generated dev %s key %s for %s/%s\n", k.alg, rec.KID, k.product, k.purpose)
	}
	return nil
}

// devDemo issues one enterprise-annual license for a demo customer, once.
func (a *app) devDemo(ctx context.Context, svc *issuance.Service) error {
	list, err := a.store.ListCustomers(ctx, 0, 1)
	if err != nil || len(list) > 0 {
		return err
	}
	maker, _ := a.store.StaffByEmail(ctx, devStaff[1].email)
	checker, _ := a.store.StaffByEmail(ctx, devStaff[2].email)
	if maker == nil || checker == nil {
		return nil
	}
	cust := &entitlements.Customer{Name: "Acme Corp (demo)", Email: "ops@acme.example"}
	if err := svc.CreateCustomer(ctx, cust, maker); err != nil {
		return err
	}
	e, err := svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: cust.ID, Template: "enterprise-annual",
		ContractRef: "DEMO-0001"}, maker)
	if err != nil {
		return err
	}
	if _, err := svc.Approve(ctx, e.ID, checker); err != nil {
		return err
	}
	l, err := svc.Issue(ctx, e.ID, maker)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "demo: customer %s, license %s (%s)\n", cust.ID, l.ID, l.SKU)
	return nil
}

// devRelease builds the verifier release the portal's Downloads page serves, once:
// scripts/release-verifier with the dev key set embedded, for this machine's platform
// and linux/amd64, into dir (built aside and renamed, so the page never lists half a
// release). It runs in the background; the page lists the files once it is done.
// It returns what to print.
func (a *app) devRelease(ctx context.Context, keyset, dir string) string {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return dir + " (the verifier the portal's Downloads page serves)"
	}
	script := filepath.Join("scripts", "release-verifier")
	if _, err := os.Stat(script); err != nil {
		return "none (run from the repository to build the dev verifier release: scripts/release-verifier)"
	}
	platforms := runtime.GOOS + "/" + runtime.GOARCH
	if platforms != "linux/amd64" {
		platforms += ",linux/amd64"
	}
	logPath := dir + ".log"
	go func() {
		tmp, err := os.MkdirTemp(filepath.Dir(dir), ".releases-")
		if err != nil {
			fmt.Fprintf(a.stderr, "dev verifier release: %v\n", err)
			return
		}
		defer os.RemoveAll(tmp)
		out := filepath.Join(tmp, "release")
		logf, err := os.Create(logPath)
		if err != nil {
			fmt.Fprintf(a.stderr, "dev verifier release: %v\n", err)
			return
		}
		defer logf.Close()
		cmd := exec.CommandContext(ctx, script, "--keyset", keyset, "--out", out, "--version", "v0.0.0-dev", "--platforms", platforms)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(a.stderr, "dev verifier release failed (%v): see %s\n", err, logPath)
			return
		}
		if err := os.Rename(out, dir); err != nil {
			fmt.Fprintf(a.stderr, "dev verifier release: %v\n", err)
			return
		}
		fmt.Fprintf(a.stdout, "dev verifier release built in %s (%s): the portal's Downloads page serves it\n", dir, platforms)
	}()
	return dir + " (building the dev verifier release in the background, once; log " + logPath + ")"
}
