package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/staffapi"
	"github.com/metrum/licensing/internal/staffclient"
	"github.com/metrum/licensing/verify"
)

// Files `issuer dev` writes under the data folder for the CLI of the same machine: the
// running issuer's URL and a token per demo account (0600).
const (
	devURLFile  = "dev-url"
	devTokenDir = "dev-tokens"
)

// credentials is what `issuer login` keeps (0600) under the user's config folder.
type credentials struct {
	URL   string `json:"url"`
	Email string `json:"email"`
	Token string `json:"token"`
}

// credentialsPath is ISSUER_CREDENTIALS, else <user config dir>/metrum-issuer/credentials.json.
func (a *app) credentialsPath() string {
	if p := a.getenv("ISSUER_CREDENTIALS"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "metrum-issuer", "credentials.json")
}

func readCredentials(path string) (credentials, error) {
	var c credentials
	if path == "" {
		return c, os.ErrNotExist
	}
	b, err := signing.ReadSecretFile("credentials", path)
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}

func writeCredentials(path string, c credentials) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	return verify.WriteFileAtomic(path, append(b, '\n'), 0o600)
}

func cmdLogin(ctx context.Context, a *app, args []string) error {
	fs := a.flags("login", "login [--url URL] [--email EMAIL] [--name NAME] [--days N] [--change-password] [--json] < password",
		`Signs in to an issuer and keeps a personal access token (0600) in the user's config
folder (ISSUER_CREDENTIALS names another file): every other command then acts as you,
through the issuer's staff API, with your role. The password is read from the first
line of standard input (or ISSUER_STAFF_PASSWORD); it never goes on the command line.
The token expires after --days (default 90, at most 365); 'issuer token list|revoke'
manage yours.

--change-password replaces your password as you sign in (a password an admin set must
be replaced before a token is made): the new one is read from ISSUER_STAFF_NEW_PASSWORD
or the second line of standard input. Your other sessions end.`)
	url := fs.String("url", "", "the issuer's URL (default $ISSUER_URL)")
	email := fs.String("email", "", "your staff email (required)")
	name := fs.String("name", "", "a name for the token (default: issuer login DATE)")
	days := fs.Int("days", 90, "token lifetime in days")
	change := fs.Bool("change-password", false, "replace your password as you sign in (the new one from ISSUER_STAFF_NEW_PASSWORD or stdin's second line)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *url == "" {
		*url = a.getenv("ISSUER_URL")
	}
	if *url == "" || *email == "" {
		fs.Usage()
		return errUsage
	}
	in := bufio.NewReader(stdin)
	readLine := func() string {
		line, _ := in.ReadString('\n')
		return strings.TrimRight(line, "\r\n")
	}
	pw := a.getenv("ISSUER_STAFF_PASSWORD")
	if pw == "" {
		pw = readLine()
	}
	var next string
	if *change {
		if next = a.getenv("ISSUER_STAFF_NEW_PASSWORD"); next == "" {
			next = readLine()
		}
		if next == "" {
			return fmt.Errorf("--change-password: no new password (ISSUER_STAFF_NEW_PASSWORD or the second line of standard input)")
		}
	}
	var tok staffapi.NewToken
	err := staffclient.New(*url, "").Do(ctx, staffapi.Login, staffapi.LoginRequest{Email: *email, Password: pw, TokenName: *name,
		Lifetime: time.Duration(*days) * 24 * time.Hour, NewPassword: next}, &tok)
	if err != nil {
		return err
	}
	path := a.credentialsPath()
	if err := writeCredentials(path, credentials{URL: strings.TrimRight(*url, "/"), Email: tok.Record.Email, Token: tok.Token}); err != nil {
		return fmt.Errorf("signed in, but the credentials file %s could not be written: %w", path, err)
	}
	if *asJSON {
		return a.printJSON(map[string]any{"email": tok.Record.Email, "token_id": tok.Record.ID, "expires_at": verify.FormatTime(tok.Record.ExpiresAt), "credentials": path})
	}
	if *change {
		fmt.Fprintf(a.stdout, "password changed for %s\n", tok.Record.Email)
	}
	fmt.Fprintf(a.stdout, "signed in as %s; token %s expires %s (kept in %s)\n", tok.Record.Email, tok.Record.ID, verify.FormatTime(tok.Record.ExpiresAt), path)
	return nil
}

func cmdWhoAmI(ctx context.Context, a *app, args []string) error {
	fs := a.flags("whoami", "whoami [--json]",
		`Asks the issuer who the CLI acts as (its token: ISSUER_TOKEN, ISSUER_AS or the
credentials of 'issuer login') and prints the account and its role. It fails when
the token is unknown, expired or revoked.`)
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	st, err := svc.WhoAmI(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(map[string]any{"email": st.Email, "name": st.Name, "role": st.Role, "url": svc.c.URL})
	}
	fmt.Fprintf(a.stdout, "%s (%s), role %s, at %s\n", st.Email, firstOf(st.Name, "no name"), st.Role, svc.c.URL)
	return nil
}

// writeDevTokens makes a personal access token for each of the given dev accounts and
// writes it (0600) under the data folder, with the dev issuer's URL beside them, so
// that `ISSUER_AS=email issuer …` acts as that account on this machine (dev only).
func (a *app) writeDevTokens(ctx context.Context, url string, emails ...string) error {
	dir := filepath.Join(a.cfg.Database.DataDir, devTokenDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, email := range emails {
		st, err := a.store.StaffByEmail(ctx, email)
		if err != nil {
			return err
		}
		tok, _, err := a.store.CreateStaffToken(ctx, st.ID, "issuer dev", time.Now().Add(30*24*time.Hour), "dev")
		if err != nil {
			return err
		}
		if err := verify.WriteFileAtomic(filepath.Join(dir, email), []byte(tok+"\n"), 0o600); err != nil {
			return err
		}
	}
	return verify.WriteFileAtomic(filepath.Join(a.cfg.Database.DataDir, devURLFile), []byte(url+"\n"), 0o644)
}

func cmdToken(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "token", args, map[string]cmdFunc{"create": tokenNew, "list": tokenMine, "revoke": tokenDrop}, `Usage: issuer token <create|list|revoke> [flags]

  create   make another personal access token for yourself (printed once)
  list     list your tokens
  revoke   revoke a token (yours; admins: anyone's); it stops at once
`)
}

func tokenNew(ctx context.Context, a *app, args []string) error {
	fs := a.flags("token create", "token create --name NAME [--days N] [--json]",
		"Makes a personal access token that acts as you (for a script or another machine), printed once.")
	name := fs.String("name", "", "where it is used (required)")
	days := fs.Int("days", 90, "lifetime in days (at most 365)")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	t, err := svc.CreateStaffToken(ctx, *name, time.Duration(*days)*24*time.Hour)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(map[string]any{"id": t.Record.ID, "token": t.Token, "expires_at": verify.FormatTime(t.Record.ExpiresAt)})
	}
	fmt.Fprintf(a.stdout, "token %s (%s) expires %s\ntoken (shown once; ISSUER_TOKEN=… for the CLI): %s\n", t.Record.ID, t.Record.Name, verify.FormatTime(t.Record.ExpiresAt), t.Token)
	return nil
}

func tokenMine(ctx context.Context, a *app, args []string) error {
	fs := a.flags("token list", "token list [--json]", "Lists your personal access tokens (never the tokens).")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	list, err := svc.ListStaffTokens(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	return printListing(a, *asJSON, list, listing[*entitlements.StaffToken]{
		empty:  "no tokens",
		header: "ID\tNAME\tACTIVE\tEXPIRES\tLAST USED",
		row: func(t *entitlements.StaffToken) string {
			return fmt.Sprintf("%s\t%s\t%t\t%s\t%s", t.ID, t.Name, t.RevokedAt == nil && t.ExpiresAt.After(now), verify.FormatTime(t.ExpiresAt), optText(t.LastUsedAt, "never"))
		},
		json: func(t *entitlements.StaffToken) map[string]any {
			return map[string]any{"id": t.ID, "name": t.Name, "created_at": verify.FormatTime(t.CreatedAt), "expires_at": verify.FormatTime(t.ExpiresAt),
				"last_used_at": optTimeJSON(t.LastUsedAt), "revoked_at": optTimeJSON(t.RevokedAt)}
		},
	})
}

func tokenDrop(ctx context.Context, a *app, args []string) error {
	fs := a.flags("token revoke", "token revoke --id stk_… [--json]", "Revokes a personal access token: it stops working at once.")
	id := fs.String("id", "", "token ID (required)")
	as, asJSON := actorFlags(fs)
	svc, err := a.parseAPI(fs, args, as)
	if err != nil {
		return err
	}
	if err := svc.RevokeStaffToken(ctx, *id); err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(map[string]any{"id": *id, "revoked": true})
	}
	fmt.Fprintf(a.stdout, "revoked %s; it stopped working at once\n", *id)
	return nil
}
