package main

import (
	"context"
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
