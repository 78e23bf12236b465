package main

import (
	"context"
	"testing"
	"time"
)

// TestDeadlineReachesTheDatabase: the request deadline is the database's too, not
// only the issuer's. A staff write waits behind a row lock another session holds;
// the real `issuer serve` is then killed (SIGKILL: it can't tell the database it gave
// up). The write's session stops waiting at the request deadline on its own
// (SET LOCAL lock_timeout), instead of queueing for the lock until its holder lets
// go, and never commits.
func TestDeadlineReachesTheDatabase(t *testing.T) {
	c := newCLI(t)
	c.bootstrap("license")
	var cust struct {
		ID string `json:"id"`
	}
	c.json(&cust, "customer", "create", "--name", "Held Co")
	p := c.startServe(t, "server:\n  request_deadline: 2s\n")
	ctx := context.Background()
	db := openTestStore(t, c.env["DATABASE_URL"]).Pool()
	holder, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, `SELECT 1 FROM customers WHERE id = $1 FOR UPDATE`, cust.ID); err != nil {
		t.Fatal(err)
	}
	waiting := func() int {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	c.env["ISSUER_URL"], c.env["ISSUER_AS"] = p.url, "maker@m.test"
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.try("customer", "update", "--id", cust.ID, "--name", "Renamed Co") // fails: the server is killed under it
	}()
	waitFor(t, 10*time.Second, "the write waiting on the lock", func() bool { return waiting() > 0 })
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done
	killed := time.Now()
	// The lock is still held: only the session's own bound can end its wait.
	waitFor(t, 10*time.Second, "the abandoned write to stop waiting on the lock", func() bool { return waiting() == 0 })
	t.Logf("the write's session stopped waiting %s after its issuer was killed (request deadline 2s)", time.Since(killed).Round(time.Millisecond))
	holder.Rollback(ctx)
	var name string
	if err := db.QueryRow(ctx, `SELECT name FROM customers WHERE id = $1`, cust.ID).Scan(&name); err != nil || name != "Held Co" {
		t.Fatalf("name %q %v: the abandoned write committed", name, err)
	}
}
