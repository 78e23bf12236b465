package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

const customerTokenHelp = `Usage: issuer customer token <create|list|revoke> [flags]

  create   make a customer API token for a customer (printed once)
  list     list a customer's API tokens (never the tokens)
  revoke   revoke a customer API token (it stops working at once)
`

const portalHelp = `Usage: issuer portal <invite|users|disable|enable> [flags]

  invite   add a portal user to a customer and mail them a sign-in link
  users    list a customer's portal users
  disable  disable a portal user (their sessions end at once)
  enable   enable a disabled portal user again
`

func cmdCustomerToken(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "customer token", args, map[string]cmdFunc{"create": tokenCreate, "list": tokenList, "revoke": tokenRevoke}, customerTokenHelp)
}

func cmdPortal(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "portal", args, map[string]cmdFunc{"invite": portalInvite, "users": portalUsers,
		"disable": func(ctx context.Context, a *app, args []string) error { return portalSetDisabled(ctx, a, args, true) },
		"enable":  func(ctx context.Context, a *app, args []string) error { return portalSetDisabled(ctx, a, args, false) }}, portalHelp)
}

func tokenCreate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("customer token create", "customer token create --customer cus_… --name NAME [--days N | --never] [--as STAFF] [--json]",
		`Makes a customer API token for scripts that fetch the customer's license files
(customer-api.md). It is read-only, printed once, and stored only as a hash; the
customer can list and revoke it in the portal. Issuers and above.`)
	customer := fs.String("customer", "", "customer ID (required)")
	name := fs.String("name", "", "what the token is for (required)")
	days := fs.Int("days", 90, "expires after this many days")
	never := fs.Bool("never", false, "never expires (only when a script can't be given a new token)")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	if *days < 1 || *days > 3650 {
		return entitlements.Invalid(map[string]string{"days": "1 to 3650"})
	}
	lifetime := time.Duration(*days) * 24 * time.Hour
	if *never {
		lifetime = entitlements.TokenNeverExpires
	}
	tok, t, err := svc.CreateCustomerToken(ctx, *customer, *name, lifetime)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(map[string]any{"id": t.ID, "customer_id": t.CustomerID, "name": t.Name, "token": tok,
			"expires_at": optTimeJSON(t.ExpiresAt), "created_at": verify.FormatTime(t.CreatedAt)})
	}
	fmt.Fprintf(a.stdout, "created customer API token %s (%s) for %s\ntoken (shown once; the customer's scripts send it as a Bearer token): %s\n", t.ID, t.Name, t.CustomerID, tok)
	return nil
}

func tokenList(ctx context.Context, a *app, args []string) error {
	fs := a.flags("customer token list", "customer token list --customer cus_… [--json]", "Lists a customer's API tokens (never the tokens themselves).")
	customer := fs.String("customer", "", "customer ID (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	list, err := svc.ListCustomerTokens(ctx, *customer)
	if err != nil {
		return err
	}
	now := time.Now()
	return printListing(a, *asJSON, list, listing[*entitlements.CustomerToken]{
		empty:  "no API tokens for " + *customer + ": make one with `issuer customer token create`",
		header: "ID\tNAME\tACTIVE\tCREATED\tEXPIRES\tLAST USED",
		row: func(t *entitlements.CustomerToken) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", t.ID, t.Name, strconv.FormatBool(t.Active(now)), verify.FormatTime(t.CreatedAt), optText(t.ExpiresAt, "never"), optText(t.LastUsedAt, "never"))
		},
		json: func(t *entitlements.CustomerToken) map[string]any {
			return map[string]any{"id": t.ID, "name": t.Name, "active": t.Active(now), "created_at": verify.FormatTime(t.CreatedAt),
				"created_by": t.CreatedBy, "expires_at": optTimeJSON(t.ExpiresAt), "last_used_at": optTimeJSON(t.LastUsedAt), "revoked_at": optTimeJSON(t.RevokedAt)}
		},
	})
}

func optText(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return verify.FormatTime(*t)
}

func tokenRevoke(ctx context.Context, a *app, args []string) error {
	fs := a.flags("customer token revoke", "customer token revoke --customer cus_… --id ctk_… [--as STAFF] [--json]",
		"Revokes a customer API token: it stops working at once.")
	customer := fs.String("customer", "", "customer ID (required)")
	id := fs.String("id", "", "token ID (required)")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	if err := svc.RevokeCustomerToken(ctx, *customer, *id); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(map[string]any{"id": *id, "revoked": true})
	}
	fmt.Fprintf(a.stdout, "revoked %s; it stopped working at once\n", *id)
	return nil
}

func portalInvite(ctx context.Context, a *app, args []string) error {
	fs := a.flags("portal invite", "portal invite --customer cus_… --email EMAIL [--name NAME] [--as STAFF] [--json]",
		`Adds a portal user to a customer and mails them a one-time sign-in link (SMTP from
mail.smtp_addr; the dev issuer prints it to its console instead). Issuers and above.`)
	customer := fs.String("customer", "", "customer ID (required)")
	email := fs.String("email", "", "the person's email (required)")
	name := fs.String("name", "", "their name")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	u, err := svc.Invite(ctx, *customer, *email, *name)
	if err != nil {
		if u != nil {
			return fmt.Errorf("portal user %s was added, but the sign-in link was not sent: %w (they can ask for one on /portal/sign-in)", u.Email, err)
		}
		return err
	}
	if *asJSON {
		return a.printJSON(map[string]any{"id": u.ID, "customer_id": u.CustomerID, "email": u.Email, "invited": true})
	}
	fmt.Fprintf(a.stdout, "invited %s to the portal of %s; a sign-in link was sent\n", u.Email, u.CustomerID)
	return nil
}

func portalUsers(ctx context.Context, a *app, args []string) error {
	fs := a.flags("portal users", "portal users --customer cus_… [--json]", "Lists a customer's portal users.")
	customer := fs.String("customer", "", "customer ID (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	list, err := svc.ListPortalUsers(ctx, *customer)
	if err != nil {
		return err
	}
	return printListing(a, *asJSON, list, listing[*entitlements.PortalUser]{
		empty:  "no portal users for " + *customer + ": invite one with `issuer portal invite`",
		header: "ID\tEMAIL\tENABLED\tLAST SIGN-IN",
		row: func(u *entitlements.PortalUser) string {
			return fmt.Sprintf("%d\t%s\t%t\t%s", u.ID, u.Email, u.DisabledAt == nil, optText(u.LastSignIn, "never"))
		},
		json: func(u *entitlements.PortalUser) map[string]any {
			return map[string]any{"id": u.ID, "email": u.Email, "name": u.Name, "enabled": u.DisabledAt == nil,
				"created_at": verify.FormatTime(u.CreatedAt), "last_sign_in_at": optTimeJSON(u.LastSignIn)}
		},
	})
}

func portalSetDisabled(ctx context.Context, a *app, args []string, disabled bool) error {
	verb := map[bool]string{true: "disable", false: "enable"}[disabled]
	fs := a.flags("portal "+verb, "portal "+verb+" --customer cus_… --id N [--as STAFF] [--json]", "Disables or enables a portal user; disabling ends their sessions at once.")
	customer := fs.String("customer", "", "customer ID (required)")
	id := fs.Int64("id", 0, "portal user ID (required; see `issuer portal users`)")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	if err := svc.SetPortalUserDisabled(ctx, *customer, *id, disabled); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(map[string]any{"id": *id, "enabled": !disabled})
	}
	fmt.Fprintf(a.stdout, "portal user %d %sd\n", *id, verb)
	return nil
}
