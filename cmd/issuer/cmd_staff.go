package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/storage"
)

const staffHelp = `Usage: issuer staff <create> [flags]

  create   add a staff account (password read from stdin or ISSUER_STAFF_PASSWORD)
`

func cmdStaff(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "staff", args, map[string]cmdFunc{"create": staffCreate}, staffHelp)
}

func staffCreate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("staff create", "staff create --email EMAIL --role ROLE [--name NAME] [--json] < password",
		`Adds a staff account. The password (12+ characters) is read from the first line of
standard input, or from ISSUER_STAFF_PASSWORD; it never goes on the command line.
Roles: viewer, issuer, approver, admin. The first account needs no --as; later ones
must be created by an admin.`)
	email := fs.String("email", "", "email (required)")
	name := fs.String("name", "", "display name")
	role := fs.String("role", "viewer", "viewer, issuer, approver or admin")
	as, asJSON := actorFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	pw := a.getenv("ISSUER_STAFF_PASSWORD")
	if pw == "" {
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		pw = strings.TrimRight(line, "\r\n")
	}
	if _, err := a.open(ctx); err != nil {
		return err
	}
	// Without --as this is the bootstrap of the first admin, which the database
	// allows only while no account exists (two racing bootstraps: one wins).
	actor := storage.BootstrapActor
	if *as != "" || a.getenv("ISSUER_AS") != "" {
		by, err := a.actor(ctx, *as)
		if err != nil {
			return err
		}
		if !by.Role.AtLeast(entitlements.RoleAdmin) {
			return entitlements.Errorf(entitlements.EFORBIDDEN, "creating staff accounts needs the admin role")
		}
		actor = by.Email
	}
	st := &entitlements.Staff{Email: *email, Name: *name, Role: entitlements.Role(*role)}
	if err := a.store.CreateStaff(ctx, st, pw, actor); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(map[string]any{"id": st.ID, "email": st.Email, "role": st.Role})
	}
	fmt.Fprintf(a.stdout, "created %s staff account %s\n", st.Role, st.Email)
	return nil
}
