package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/metrum/licensing/internal/entitlements"
)

const staffHelp = `Usage: issuer staff <create> [flags]

  create   add a staff account (password read from stdin or ISSUER_STAFF_PASSWORD)
`

func cmdStaff(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "staff", args, map[string]cmdFunc{"create": staffCreate}, staffHelp)
}

func staffCreate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("staff create", "staff create --email EMAIL --role ROLE [--name NAME] [--bootstrap [--recover]] [--json] < password",
		`Adds a staff account. The password (12+ characters) is read from the first line of
standard input, or from ISSUER_STAFF_PASSWORD; it never goes on the command line.
Roles: viewer, issuer, approver, admin.

Signed in (issuer login), an admin adds accounts through the issuer's staff API. The
very first account is the operator's bootstrap: with --bootstrap (or with no
credentials at all) the command opens the database itself (DATABASE_URL) and adds an
admin only while no account exists; two racing bootstraps make one account.

No enabled admin left (say, the last one was disabled)? On the issuer's host, with
--bootstrap --recover --role admin, the command makes that account (new or existing)
an enabled admin with the new password, only while no other enabled admin exists;
audited as staff.recover_admin. The console and the staff API refuse any change that
would leave no enabled admin.`)
	email := fs.String("email", "", "email (required)")
	name := fs.String("name", "", "display name")
	role := fs.String("role", "viewer", "viewer, issuer, approver or admin")
	bootstrap := fs.Bool("bootstrap", false, "operator: create the first admin directly in the database")
	recover := fs.Bool("recover", false, "operator, with --bootstrap: when no enabled admin is left, make this account an enabled admin with a new password")
	as, asJSON := actorFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	pw := a.getenv("ISSUER_STAFF_PASSWORD")
	if pw == "" {
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		pw = strings.TrimRight(line, "\r\n")
	}
	svc, apiErr := a.api(*as)
	st := &entitlements.Staff{Email: *email, Name: *name, Role: entitlements.Role(*role)}
	if *bootstrap || apiErr != nil {
		if !*bootstrap && (*as != "" || a.getenv("ISSUER_AS") != "" || a.getenv("ISSUER_TOKEN") != "") {
			return apiErr // credentials were meant, and don't work: say why
		}
		if err := a.openStore(ctx); err != nil {
			return err
		}
		if err := entitlements.ValidateBootstrap(st, pw); err != nil {
			return err
		}
		if *recover {
			if err := a.store.RecoverAdmin(ctx, st, pw); err != nil {
				return err
			}
			if *asJSON {
				return a.printJSON(map[string]any{"id": st.ID, "email": st.Email, "role": st.Role, "recovered": true})
			}
			fmt.Fprintf(a.stdout, "%s is an enabled admin again (no other enabled admin was left); its sessions ended\n", st.Email)
			return nil
		}
		if err := a.store.CreateStaff(ctx, st, pw, entitlements.BootstrapActor); err != nil {
			return err
		}
	} else {
		created, err := svc.CreateStaff(ctx, *email, *name, *role, pw)
		if err != nil {
			return err
		}
		st = created
	}
	if *asJSON {
		return a.printJSON(map[string]any{"id": st.ID, "email": st.Email, "role": st.Role})
	}
	fmt.Fprintf(a.stdout, "created %s staff account %s\n", st.Role, st.Email)
	return nil
}
