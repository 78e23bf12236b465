// Command issuer is the Metrum license issuer: the HTTP service (staff UI, portal,
// lease API) and the operator CLI over the same service layer.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/metrum/licensing/internal/entitlements"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "issuer:", describe(err))
		}
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// describe shows the safe message of domain errors, with field messages.
func describe(err error) string {
	var de *entitlements.Error
	if errors.As(err, &de) {
		s := de.Message
		for f, m := range de.Fields {
			s += fmt.Sprintf("\n  %s: %s", f, m)
		}
		if de.Code == entitlements.EINTERNAL || de.Code == entitlements.EUNAVAILABLE {
			s += fmt.Sprintf(" (%v)", de.Err)
		}
		return s
	}
	return err.Error()
}

const usage = `issuer — the Metrum license issuer

Usage: issuer <command> [flags]    (issuer <command> --help for each)

Operator (open the database or keys themselves; on the issuer's host):
  dev           start everything locally: private Postgres under .data/, migrations,
                dev keys, demo data; serves on 127.0.0.1 and prints the URL and logins
  serve         run the HTTP service against DATABASE_URL (production); the only
                process that opens signing keys
  migrate       apply database migrations
  recover --from-bundle FILE...   after a restore from backup: re-apply what the
                published bundles show, raise bundle sequences, quarantine leases
  staff create --bootstrap   the first admin account
  keys rewrap   re-seal the file keys under a new KEK
  audit verify  check the audit trail's hash chain (read-only)
  healthcheck   exit 0 when a running issuer answers /readyz (container health checks)

Staff (through the issuer's staff API, as you; sign in first):
  login         sign in: keeps a personal access token (0600) in your config folder
  whoami        who the CLI acts as, and with which role
  token         create | list | revoke            (your personal access tokens)

Records:
  customer      create | update | list | token create|list|revoke (customer API tokens)
  portal        invite | users | disable | enable   (customer portal users)
  order         queue | show | review               (self-service orders; refunds and disputes)
  entitlement   create | approve | reject | cancel | list | show
  license       issue | list | show | download | renew | replace | top-up |
                revoke | suspend | reinstate | restore-previous | rotate-lease-token
  bundle        publish | list | download        (revocation bundles)
  lease         slots | history                  (online leases of a license)
  audit         list | verify                    (the hash-chained audit trail)
  staff         create
  keys          generate | rotate | activate | retire | not-after | list |
                export-keyset | rewrap
  templates     list the license templates

Environment: ISSUER_URL and ISSUER_TOKEN (else the credentials of 'issuer login';
ISSUER_AS=email picks a demo account of 'issuer dev'); operator commands read
DATABASE_URL, ISSUER_CONFIG (YAML file), METRUM_KEK or ISSUER_KEK_FILE. See README.md.
`

var errUsage = errors.New("usage")

type cmdFunc func(ctx context.Context, a *app, args []string) error

var commands = map[string]cmdFunc{
	"dev":         cmdDev,
	"serve":       cmdServe,
	"migrate":     cmdMigrate,
	"recover":     cmdRecover,
	"customer":    cmdCustomer,
	"login":       cmdLogin,
	"whoami":      cmdWhoAmI,
	"token":       cmdToken,
	"portal":      cmdPortal,
	"order":       cmdOrder,
	"entitlement": cmdEntitlement,
	"license":     cmdLicense,
	"staff":       cmdStaff,
	"keys":        cmdKeys,
	"templates":   cmdTemplates,
	"bundle":      cmdBundle,
	"audit":       cmdAudit,
	"lease":       cmdLease,
	"healthcheck": cmdHealthcheck,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "issuer: unknown command %q\n\n%s", args[0], usage)
		return errUsage
	}
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	defer a.close()
	if err := cmd(ctx, a, args[1:]); !errors.Is(err, errHelp) {
		return err
	}
	return nil
}

// stdin is where commands read secrets typed or piped in.
var stdin io.Reader = os.Stdin
