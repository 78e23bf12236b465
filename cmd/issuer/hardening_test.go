package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestRecoverWhenNoAdminIsLeft: with every admin disabled, the bootstrap refuses
// (accounts exist) and the operator's --recover makes an enabled admin again, on the
// issuer's host; with an enabled admin, --recover refuses.
func TestRecoverWhenNoAdminIsLeft(t *testing.T) {
	c := newCLI(t)
	c.run("migrate")
	c.run("staff", "create", "--email", "root@m.test", "--role", "admin", "--bootstrap")
	store := openTestStore(t, c.env["DATABASE_URL"])
	if _, err := store.Pool().Exec(context.Background(), `UPDATE staff_users SET disabled_at = now()`); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := c.try("staff", "create", "--email", "root@m.test", "--role", "admin", "--bootstrap"); err == nil {
		t.Fatalf("a second bootstrap went through: %s", errOut)
	}
	out := c.run("staff", "create", "--email", "root@m.test", "--role", "admin", "--bootstrap", "--recover")
	if !strings.Contains(out, "enabled admin again") {
		t.Fatalf("recover: %s", out)
	}
	var n int
	store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM staff_users WHERE role = 'admin' AND disabled_at IS NULL`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d enabled admins after recovery", n)
	}
	store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE action = 'staff.recover_admin'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d recovery audit events", n)
	}
	if _, _, err := c.try("staff", "create", "--email", "other@m.test", "--role", "admin", "--bootstrap", "--recover"); err == nil ||
		!strings.Contains(describe(err), "an enabled admin exists") {
		t.Fatalf("recover with an admin enabled: %v", err)
	}
}

// TestServeRefusesUnsafeProductionSettings (issue 20, production defaults).
func TestServeRefusesUnsafeProductionSettings(t *testing.T) {
	random := "q6cJ7VQ3XkQm0fN8yXH0v8dL0t2r5o9bQ1V6d3uYJzE="
	for name, c := range map[string]struct {
		env  map[string]string
		want string // "" = accepted
	}{
		"no database": {map[string]string{"METRUM_KEK": random}, "DATABASE_URL"},
		"http beyond loopback": {map[string]string{"DATABASE_URL": "postgres://x/y", "METRUM_KEK": random, "ISSUER_ADDR": "0.0.0.0:8080",
			"ISSUER_BASE_URL": "http://licensing.example.com"}, "allow_insecure_http"},
		"http beyond loopback, allowed": {map[string]string{"DATABASE_URL": "postgres://x/y", "METRUM_KEK": random, "ISSUER_ADDR": "0.0.0.0:8080",
			"ISSUER_BASE_URL": "http://licensing.example.com", "ISSUER_ALLOW_INSECURE_HTTP": "1"}, ""},
		"https beyond loopback": {map[string]string{"DATABASE_URL": "postgres://x/y", "METRUM_KEK": random, "ISSUER_ADDR": ":8080",
			"ISSUER_BASE_URL": "https://licensing.example.com"}, ""},
		"http on loopback": {map[string]string{"DATABASE_URL": "postgres://x/y", "METRUM_KEK": random}, ""},
		"all-zero KEK":     {map[string]string{"DATABASE_URL": "postgres://x/y", "METRUM_KEK": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, "not random"},
		"counting KEK":     {map[string]string{"DATABASE_URL": "postgres://x/y", "METRUM_KEK": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}, "not random"},
	} {
		a := &app{getenv: func(k string) string { return c.env[k] }, stdout: io.Discard, stderr: io.Discard}
		err := a.productionChecks()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want a refusal naming %q", name, err, c.want)
		}
	}
}
