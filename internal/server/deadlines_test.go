package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/leases"
	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/internal/staffapi"
	"github.com/metrum/licensing/internal/storage"
)

// answer is one lease request's outcome, as a host saw it.
type answer struct {
	fp      string
	status  int
	problem string // the problem type's code, for errors
	took    time.Duration
	err     error
}

// postLease is a host's POST /v1/leases (safe from any goroutine).
func postLease(url, token, lic, fp string) answer {
	start := time.Now()
	body := fmt.Sprintf(`{"license_id":%q,"instance_fingerprint":%q}`, lic, fp)
	req, _ := http.NewRequest("POST", url+"/v1/leases", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	a := answer{fp: fp, err: err}
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.status = resp.StatusCode
		var p problem
		if json.Unmarshal(b, &p) == nil && p.Type != "" {
			a.problem = p.Type[strings.LastIndex(p.Type, "/")+1:]
		}
	}
	a.took = time.Since(start)
	return a
}

// rowsOf counts what the database holds for a host: its slot and its events.
func (e *leaseEnv) rowsOf(t *testing.T, lic, fp string) (slots, events int) {
	t.Helper()
	err := e.store.Pool().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM leases WHERE license_id = $1 AND instance_fingerprint = $2),
		(SELECT count(*) FROM lease_events WHERE license_id = $1 AND instance_fingerprint = $2)`, lic, fp).Scan(&slots, &events)
	if err != nil {
		t.Fatal(err)
	}
	return slots, events
}

// waitBackendsDone waits until none of pids is inside a transaction any more (each
// has ended, or is idle): what a frozen batch was going to commit, it has by then.
func (e *leaseEnv) waitBackendsDone(t *testing.T, pids []int32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := e.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE pid = ANY($1) AND pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle'`, pids).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends still busy 30s after the thaw", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLeaseCommitGuard: a lease batch whose COMMIT reaches the server only after the
// batch's commit-by time (its backend was frozen right after the batch had sent its
// writes and COMMIT) is rolled back by the server's commit guard, not committed. The
// margin between the guard closing and the caller's deadline is widened, so the
// backend is thawed inside it, before the caller gives up (whose cancel request
// would otherwise abort the statements first and hide the guard).
func TestLeaseCommitGuard(t *testing.T) {
	e := mustLeaseServer(t, 0, 0)
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{})
	// One connection, whose statement cache the warm-up fills: the batch under test
	// then sends its writes and COMMIT in one go (a statement new to a connection is
	// described first, a round trip during which nothing more is sent).
	url := e.store.Pool().Config().ConnString()
	one, err := storage.Open(context.Background(), url+map[bool]string{true: "&", false: "?"}[strings.Contains(url, "?")]+"pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	sum := sha256.Sum256([]byte(tok))
	grant := func(ctx context.Context, fp string, precommit func([]entitlements.LeaseDecision) error) error {
		req := entitlements.LeaseRequest{TokenHash: sum[:], LicenseID: lic.ID, Fingerprint: fp,
			NewLeaseID: entitlements.NewID(entitlements.PrefixLease), Exclusive: true}
		_, err := one.GrantLeases(ctx, []entitlements.LeaseRequest{req}, leases.Rules{}, precommit)
		return err
	}
	none := func([]entitlements.LeaseDecision) error { return nil }
	wctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := grant(wctx, "warm-up", none); err != nil {
		t.Fatal(err)
	}
	// Deadline in 4 s, the guard closing 2.5 s before it.
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(4*time.Second))
	defer cancel()
	ctx = storage.WithLeaseCommitMargin(ctx, 2500*time.Millisecond)
	var pid int32
	var thawed sync.Once
	thaw := func() { thawed.Do(func() { syscall.Kill(int(pid), syscall.SIGCONT) }) }
	t.Cleanup(thaw)
	freeze := func([]entitlements.LeaseDecision) error {
		// The batch's backend is the one session of this database inside a
		// transaction; freeze it just before the writes and the COMMIT go out, and
		// thaw it once the guard has closed (at about 1.5 s), well before the deadline.
		err := e.store.Pool().QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'idle in transaction'`).Scan(&pid)
		if err != nil {
			return err
		}
		if err := syscall.Kill(int(pid), syscall.SIGSTOP); err != nil {
			return err
		}
		time.AfterFunc(time.Until(start.Add(2200*time.Millisecond)), thaw)
		return nil
	}
	err = grant(ctx, "guarded-host", freeze)
	if code := entitlements.ErrorCode(err); code != entitlements.EUNAVAILABLE || !strings.Contains(err.Error(), "reached COMMIT after its deadline") {
		t.Fatalf("a batch whose COMMIT reached the server after its commit-by time: %v (code %s), want the guard's refusal", err, code)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("the refusal came after the deadline (%s): the guard was not what stopped it", took)
	}
	e.waitBackendsDone(t, []int32{pid})
	if slots, events := e.rowsOf(t, lic.ID, "guarded-host"); slots+events != 0 {
		t.Fatalf("the batch committed after its commit-by time: %d slot rows, %d events", slots, events)
	}
	// The guard is no obstacle in time: the same host's request commits.
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := grant(ctx, "guarded-host", none); err != nil {
		t.Fatal(err)
	}
	if slots, _ := e.rowsOf(t, lic.ID, "guarded-host"); slots != 1 {
		t.Fatalf("in time: %d slots", slots)
	}
}

// TestLeaseFrozenDatabase freezes the whole PostgreSQL cluster (SIGSTOP: a hung
// primary) under a load of new hosts: every request is answered within its deadline
// (plus slack) with a 503, and after the thaw nothing a 503 answered is in the
// database, while every lease answered 200 is.
func TestLeaseFrozenDatabase(t *testing.T) {
	cl := pgtest.OwnCluster(t, "this test freezes the database")
	const deadline = time.Second
	e := mustLeaseServer(t, 0, 0, func(s *server.Server) { s.LeaseDeadline = deadline })
	lic, tok := e.mustLeaseLicense(t, entitlements.EntitlementInput{Overrides: entitlements.Overrides{Limits: map[string]int64{"max_instances": 100000}}})
	if a := postLease(e.ts.URL, tok, lic.ID, "warm"); a.status != 200 {
		t.Fatalf("before the freeze: %+v", a)
	}
	var pids []int32
	if err := e.store.Pool().QueryRow(context.Background(), `SELECT array_agg(pid) FROM pg_stat_activity WHERE datname = current_database()`).Scan(&pids); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		answers []answer
		n       int
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	next := func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("host-%d", n)
	}
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := postLease(e.ts.URL, tok, lic.ID, next())
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
			}
		}()
	}
	count := func(status int) int {
		mu.Lock()
		defer mu.Unlock()
		c := 0
		for _, a := range answers {
			if a.status == status {
				c++
			}
		}
		return c
	}
	waitCond(t, 20*time.Second, "leases granted before the freeze", func() bool { return count(200) >= 30 })
	thaw, err := cl.Freeze()
	if err != nil {
		t.Fatal(err)
	}
	frozenAt := time.Now()
	var thawOnce sync.Once
	doThaw := func() { thawOnce.Do(func() { _ = thaw() }) }
	t.Cleanup(doThaw)
	// Frozen for several deadlines: the hosts keep asking, each request its own.
	waitCond(t, 30*time.Second, "503s while frozen", func() bool { return count(503) >= 12 && time.Since(frozenAt) > 4*deadline })
	doThaw()
	waitCond(t, 30*time.Second, "leases granted after the thaw", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(answers) > 0 && answers[len(answers)-1].status == 200
	})
	close(stop)
	wg.Wait()
	e.waitBackendsDone(t, pids)

	var refused, unknown, granted int
	var slowest time.Duration
	for _, a := range answers {
		slots, events := e.rowsOf(t, lic.ID, a.fp)
		switch {
		case a.err != nil:
			t.Errorf("%s: %v", a.fp, a.err)
		case a.status == 200:
			granted++
			if slots != 1 || events != 1 {
				t.Errorf("%s was granted a lease, but the database has %d slots and %d events for it", a.fp, slots, events)
			}
		case a.status == 503:
			refused++
			if a.problem == entitlements.EOUTCOMEUNKNOWN {
				unknown++
			}
			// unavailable: nothing changed, certainly. outcome-unknown: the COMMIT was
			// sent and may have landed (docs/operations.md, "Deadlines"): at most the
			// one slot and its event, never more (a retry reuses the slot).
			if (a.problem != entitlements.EOUTCOMEUNKNOWN && slots+events != 0) || slots > 1 || events > 1 || slots != events {
				t.Errorf("%s was answered 503 (%s), but the database has %d slots and %d events for it", a.fp, a.problem, slots, events)
			}
			slowest = max(slowest, a.took)
		default:
			t.Errorf("%s: %d %s", a.fp, a.status, a.problem)
		}
	}
	// The bound is a behaviour, with generous slack for a loaded machine.
	if slowest > deadline+2*time.Second {
		t.Errorf("the slowest 503 took %s; the deadline is %s", slowest, deadline)
	}
	t.Logf("%d granted, %d answered 503 (%d outcome unknown); slowest 503 %s (deadline %s)", granted, refused, unknown, slowest, deadline)
}

// TestStaffRequestDeadline: a staff API write stuck behind a lock another session
// holds is answered 503 at the request deadline, and does not commit when the lock
// is released afterwards.
func TestStaffRequestDeadline(t *testing.T) {
	const deadline = time.Second
	e := mustLeaseServer(t, 0, 0, func(s *server.Server) { s.RequestDeadline = deadline })
	ctx := context.Background()
	st := &entitlements.Staff{Email: "ops@staff.test", Role: entitlements.RoleIssuer}
	if err := e.store.CreateStaff(ctx, st, "a long enough password", "test"); err != nil {
		t.Fatal(err)
	}
	tok, _, err := e.store.CreateStaffToken(ctx, st.ID, "test", time.Now().Add(time.Hour), "test")
	if err != nil {
		t.Fatal(err)
	}
	c := &entitlements.Customer{Name: "Locked Co"}
	if err := e.svc.CreateCustomer(ctx, c, lMaker); err != nil {
		t.Fatal(err)
	}
	// Another session holds the customer's row, as a stuck transaction would.
	holder, err := e.store.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, `SELECT 1 FROM customers WHERE id = $1 FOR UPDATE`, c.ID); err != nil {
		t.Fatal(err)
	}
	released, holderDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(holderDone)
		// Long past the deadline: without one, the write would wait for this.
		select {
		case <-time.After(8 * time.Second):
		case <-released:
		}
		holder.Rollback(ctx)
	}()
	b, _ := json.Marshal(staffapi.CustomerUpdateRequest{ID: c.ID, Name: "Renamed Co"})
	req, _ := http.NewRequest("POST", e.ts.URL+staffapi.Prefix+staffapi.CustomerUpdate, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	start := time.Now()
	r := do(t, req)
	took := time.Since(start)
	wantProblem(t, r, 503, entitlements.EUNAVAILABLE)
	if took > deadline+3*time.Second {
		t.Fatalf("answered after %s; the request deadline is %s", took, deadline)
	}
	// The server stopped waiting too, while the lock is still held: the abandoned
	// write holds no connection and no place in the lock queue.
	waitCond(t, 3*time.Second, "no session waiting on the held lock", func() bool {
		var n int
		e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return n == 0
	})
	close(released)
	// The lock gone, the write's session (whatever it was going to do) done too.
	<-holderDone
	var pids []int32
	if err := e.store.Pool().QueryRow(ctx, `SELECT array_agg(pid) FROM pg_stat_activity WHERE datname = current_database()`).Scan(&pids); err != nil {
		t.Fatal(err)
	}
	e.waitBackendsDone(t, pids)
	got, err := e.store.GetCustomer(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Locked Co" {
		t.Fatalf("the write answered 503 committed afterwards: %q", got.Name)
	}
	t.Logf("answered 503 after %s (deadline %s)", took.Round(time.Millisecond), deadline)
}

func waitCond(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
