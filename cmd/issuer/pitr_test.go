package main

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/pgcluster"
)

// archive is a durable PostgreSQL cluster that archives its WAL to a pgBackRest
// repository (stanza "issuer"), as docs/operations.md "Continuous archiving" sets
// one up, all under one temp folder.
type archive struct {
	t       *testing.T
	base    string // 0755, so the postgres user reaches what is in it
	conf    string // pgbackrest.conf
	primary *pgcluster.Cluster
}

func newArchive(t *testing.T) *archive {
	t.Helper()
	if _, err := exec.LookPath("pgbackrest"); err != nil {
		t.Fatalf("pgbackrest is needed (scripts/setup --test installs it): %v", err)
	}
	base, err := pgcluster.MkdirTemp("pitr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	a := &archive{t: t, base: base, conf: filepath.Join(base, "pgbackrest.conf")}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	primary := filepath.Join(base, "primary")
	conf := fmt.Sprintf(`[global]
repo1-path=%[1]s/repo
log-path=%[1]s/log
lock-path=%[1]s/lock
log-level-console=warn
log-level-file=off
start-fast=y
compress-type=lz4
[issuer]
pg1-path=%[2]s/data
pg1-port=%[3]d
pg1-socket-path=%[2]s
`, base, primary, port)
	if err := os.WriteFile(a.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	a.primary, err = pgcluster.Start(context.Background(), pgcluster.Options{Dir: primary, Durable: true, Port: port,
		Settings: []string{"wal_level=replica", "archive_mode=on",
			"archive_command=pgbackrest --config=" + a.conf + " --stanza=issuer archive-push %p"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.primary.Stop() })
	for _, d := range []string{"repo", "log", "lock"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := a.primary.Chown(filepath.Join(base, d)); err != nil {
			t.Fatal(err)
		}
	}
	a.backrest("stanza-create")
	a.backrest("check")
	return a
}

// backrest runs one pgbackrest command on the stanza, as the server's owner.
func (a *archive) backrest(args ...string) string {
	a.t.Helper()
	all := append([]string{"--config=" + a.conf, "--stanza=issuer"}, args...)
	out, err := a.primary.Command(context.Background(), "pgbackrest", all...).CombinedOutput()
	if err != nil {
		a.t.Fatalf("pgbackrest %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// restore restores the newest backup into a new cluster named name, replaying the
// archive up to the given recovery target (no options: to the end of the archive),
// starts it, and waits until recovery has ended and it accepts writes.
func (a *archive) restore(name string, target ...string) *pgcluster.Cluster {
	a.t.Helper()
	dir := filepath.Join(a.base, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		a.t.Fatal(err)
	}
	if err := a.primary.Chown(dir); err != nil {
		a.t.Fatal(err)
	}
	// archive-mode=off: the restored copy must not push its new timeline into the
	// original's archive while the original still runs (a real restore keeps it on).
	a.backrest(append([]string{"--pg1-path=" + filepath.Join(dir, "data"), "--archive-mode=off", "restore"}, target...)...)
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Durable: true})
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(func() { c.Stop() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		var inRecovery bool
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery)
			conn.Close(ctx)
		}
		if err == nil && !inRecovery {
			return c
		}
		// A recovery that can't reach its target stops the server (postmaster.pid goes).
		_, gone := os.Stat(filepath.Join(dir, "data", "postmaster.pid"))
		if time.Now().After(deadline) || gone != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			a.t.Fatalf("restored cluster %s is not serving writes (%v):\n%s", name, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPointInTimeRestore: with WAL archived continuously to pgBackRest, a restore to a
// point in time has everything committed before it and nothing after, and `issuer
// recover` then runs cleanly on it: to the noted time it re-applies what the newest
// bundle shows; to the end of the archive it finds nothing to apply and still
// raises the sequence and starts the lease quarantine. All writes go through the
// issuer's staff and lease APIs.
func TestPointInTimeRestore(t *testing.T) {
	a := newArchive(t)
	ctx := context.Background()
	db := a.primary.URL("issuer")
	conn, err := pgx.Connect(ctx, a.primary.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE issuer`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	c := newCLI(t)
	c.env["DATABASE_URL"] = db
	dir := c.env["ISSUER_DATA_DIR"]
	c.bootstrap("license", "revocation", "lease")
	c.env["ISSUER_AS"] = "maker@m.test"
	customer := func(name string) string {
		var cu struct {
			ID string `json:"id"`
		}
		c.json(&cu, "customer", "create", "--name", name)
		return cu.ID
	}
	issue := func(cust, tmpl string, extra ...string) (id, token string) {
		var ent, lic struct {
			ID         string `json:"id"`
			LeaseToken string `json:"lease_token"`
		}
		c.json(&ent, append([]string{"entitlement", "create", "--customer", cust, "--template", tmpl}, extra...)...)
		c.run("entitlement", "approve", "--id", ent.ID, "--as", "checker@m.test")
		c.json(&lic, "license", "issue", "--entitlement", ent.ID)
		return lic.ID, lic.LeaseToken
	}
	publish := func(out string) int64 {
		var b struct {
			Sequence int64 `json:"sequence"`
		}
		c.json(&b, "bundle", "publish", "--product", "genai-smart-router", "--as", "checker@m.test", "--out", out)
		return b.Sequence
	}
	revoke := func(id string) {
		c.run("license", "revoke", "--id", id, "--reason", "refund", "--yes", "--as", "checker@m.test")
	}

	// A, then the base backup.
	custA := customer("Before the backup")
	licA, _ := issue(custA, "enterprise-annual")
	pilot, token := issue(custA, "pilot-30d", "--limit", "max_instances=3")
	if got := leaseProbe(t, c.url, token, pilot, "host-a"); got != http.StatusOK {
		t.Fatalf("host-a's lease: %d", got)
	}
	seqA := publish(filepath.Join(dir, "a.json"))
	a.backrest("--type=full", "backup")
	// pgBackRest chooses the backup for a time target by its stop time, kept in whole
	// seconds: a target in the second the backup ended finds none.
	time.Sleep(1100 * time.Millisecond)

	// B, after the backup and before the target.
	custB := customer("After the backup")
	licB, _ := issue(custB, "enterprise-annual")
	revoke(licA)
	seqB := publish(filepath.Join(dir, "b.json"))
	var target string
	if err := openTestStore(t, db).Pool().QueryRow(ctx, `SELECT clock_timestamp()::text`).Scan(&target); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)

	// C, after the target; then make sure its WAL is in the archive.
	custC := customer("After the target")
	licC, _ := issue(custC, "enterprise-annual")
	revoke(licB)
	revoke(licC)
	latest := filepath.Join(dir, "c.json")
	seqC := publish(latest)
	a.backrest("check") // switches the WAL segment and waits until it is archived
	t.Logf("bundles #%d (A) #%d (B) #%d (C); target %s", seqA, seqB, seqC, target)

	// Restore to the target: A and B, nothing of C.
	atT := a.restore("at-target", "--type=time", "--target="+target, "--target-action=promote")
	rt := &cli{t: t, env: maps.Clone(c.env)}
	rt.env["DATABASE_URL"] = atT.URL("issuer")
	st := openTestStore(t, rt.env["DATABASE_URL"]).Pool()
	expect := func(what, query string, arg any, want string) {
		t.Helper()
		var got string
		if err := st.QueryRow(ctx, query, arg).Scan(&got); err != nil && err != pgx.ErrNoRows {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	const status = `SELECT status FROM licenses WHERE id = $1`
	const name = `SELECT name FROM customers WHERE id = $1`
	const bundle = `SELECT sequence::text FROM revocation_bundles WHERE sequence = $1`
	expect("customer A", name, custA, "Before the backup")
	expect("customer B", name, custB, "After the backup")
	expect("customer C", name, custC, "")
	expect("license A", status, licA, "revoked")
	expect("license B (revoked after the target)", status, licB, "active")
	expect("license C", status, licC, "")
	expect("bundle B", bundle, seqB, fmt.Sprint(seqB))
	expect("bundle C", bundle, seqC, "")
	if t.Failed() {
		t.FailNow()
	}

	// recover from C's bundle: B's revocation is re-applied, C is kept as unknown, and
	// the sequence rises to C's.
	rt.run("migrate")
	rep := recoverJSON(rt, latest)
	if rep.SequenceAfter != seqC || rep.Outcomes[licB] != "applied" || rep.Outcomes[licC] != "unknown" || rep.Outcomes[licA] != "already" || !rep.Quarantine {
		t.Fatalf("recover at the target: %+v", rep)
	}
	expect("license B after recover", status, licB, "revoked")

	// Restore to the end of the archive: everything; recover applies nothing, and
	// still raises the sequence (here: keeps it at C's) and starts the quarantine.
	end := a.restore("at-end")
	re := &cli{t: t, env: maps.Clone(c.env)}
	re.env["DATABASE_URL"] = end.URL("issuer")
	st = openTestStore(t, re.env["DATABASE_URL"]).Pool()
	expect("customer C at the end", name, custC, "After the target")
	expect("license B at the end", status, licB, "revoked")
	expect("bundle C at the end", bundle, seqC, fmt.Sprint(seqC))
	re.run("migrate")
	rep = recoverJSON(re, latest)
	for id, o := range rep.Outcomes {
		if o != "already" {
			t.Errorf("recover at the end: %s %s, want already", id, o)
		}
	}
	if rep.SequenceBefore != seqC || rep.SequenceAfter != seqC || !rep.Quarantine {
		t.Fatalf("recover at the end: %+v", rep)
	}
	re.startIssuer()
	re.devToken("checker@m.test")
	re.env["ISSUER_AS"] = "checker@m.test"
	var again struct {
		Sequence int64 `json:"sequence"`
	}
	re.json(&again, "bundle", "publish", "--product", "genai-smart-router")
	if again.Sequence <= seqC {
		t.Fatalf("the restored issuer published #%d, not above #%d", again.Sequence, seqC)
	}
	// The quarantine: host-a's slot is known and renews; a new host waits, though
	// two of the three slots are free.
	if got := leaseProbe(t, re.url, token, pilot, "host-a"); got != http.StatusOK {
		t.Fatalf("host-a renewing after the restore: %d", got)
	}
	if got := leaseProbe(t, re.url, token, pilot, "host-new"); got != http.StatusConflict {
		t.Fatalf("a new host during the quarantine: %d", got)
	}
}

// recovered is what `issuer recover --json` says of one bundle.
type recovered struct {
	SequenceBefore, SequenceAfter int64
	Outcomes                      map[string]string // license → applied, unknown, already, …
	Quarantine                    bool
}

func recoverJSON(c *cli, bundle string) recovered {
	c.t.Helper()
	var out struct {
		Recovered []struct {
			SequenceBefore int64               `json:"sequence_before"`
			SequenceAfter  int64               `json:"sequence_after"`
			Entries        []map[string]string `json:"entries"`
			Quarantine     *string             `json:"lease_quarantine_from"`
		} `json:"recovered"`
	}
	c.json(&out, "recover", "--from-bundle", bundle)
	if len(out.Recovered) != 1 {
		c.t.Fatalf("recover: %+v", out)
	}
	r := out.Recovered[0]
	rep := recovered{SequenceBefore: r.SequenceBefore, SequenceAfter: r.SequenceAfter, Outcomes: map[string]string{}, Quarantine: r.Quarantine != nil}
	for _, e := range r.Entries {
		rep.Outcomes[e["license_id"]] = e["outcome"]
	}
	return rep
}
