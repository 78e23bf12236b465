package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/verify"
)

// driveOptions are drive's flags.
type driveOptions struct {
	issuers, patroni, nodes  string
	databaseURL              string
	license, product, keyset string
	makerCreds, checkerCreds string
	runID                    string
	maxInstances             int

	hosts, newcomers, maxHosts, customerWriters                                  int
	renewEvery, joinEvery, retryEvery, releaseEvery, customerEvery, publishEvery time.Duration
	before, after, recoverTimeout, rejoinTimeout, goal                           time.Duration
	freeze                                                                       time.Duration
}

func (o *driveOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.issuers, "issuers", "", "issuer replica base URLs, comma-separated")
	fs.StringVar(&o.patroni, "patroni", "", "Patroni REST API URLs, comma-separated")
	fs.StringVar(&o.nodes, "nodes", "", "NAME=DATA_DIR of each node, comma-separated (to find the primary's postmaster)")
	fs.StringVar(&o.databaseURL, "database-url", "", "the multi-host URL the checks read the database with")
	fs.StringVar(&o.license, "license", "", "the lease-required license (its token: $HATEST_LEASE_TOKEN)")
	fs.StringVar(&o.product, "product", "genai-smart-router", "the license's product")
	fs.IntVar(&o.maxInstances, "max-instances", 0, "the license's max_instances (the seat bound)")
	fs.StringVar(&o.keyset, "keyset", "", "the issuer's exported key set (checks every lease's signature)")
	fs.StringVar(&o.makerCreds, "maker-credentials", "", "`issuer login` credentials of an issuer-role account (creates customers)")
	fs.StringVar(&o.checkerCreds, "checker-credentials", "", "`issuer login` credentials of an approver (publishes bundles)")
	fs.StringVar(&o.runID, "run-id", time.Now().UTC().Format("150405"), "names this run's customers")
	fs.IntVar(&o.hosts, "hosts", 24, "router hosts at the start, each renewing its lease")
	fs.IntVar(&o.newcomers, "newcomers", 6, "new hosts waiting for a slot at any time")
	fs.IntVar(&o.maxHosts, "max-hosts", 2000, "bound on the hosts one run may start")
	fs.IntVar(&o.customerWriters, "customer-writers", 2, "staff clients creating customers")
	fs.DurationVar(&o.renewEvery, "renew-every", 600*time.Millisecond, "each host's renewal interval (±20 %)")
	fs.DurationVar(&o.joinEvery, "join-every", time.Second, "a new host's retry interval while the slots are full")
	fs.DurationVar(&o.retryEvery, "retry-every", 200*time.Millisecond, "retry interval of a failed release or a first host's join")
	fs.DurationVar(&o.releaseEvery, "release-every", 1500*time.Millisecond, "a holder shuts down (releases) this often")
	fs.DurationVar(&o.customerEvery, "customer-every", 100*time.Millisecond, "pause between one writer's customers")
	fs.DurationVar(&o.publishEvery, "publish-every", 2*time.Second, "bundle publishing interval")
	fs.DurationVar(&o.before, "before", 8*time.Second, "load before the primary is killed")
	fs.DurationVar(&o.after, "after", 8*time.Second, "load after writes succeed again")
	fs.DurationVar(&o.recoverTimeout, "recover-timeout", 60*time.Second, "give up when writes don't succeed this long after the kill")
	fs.DurationVar(&o.rejoinTimeout, "rejoin-timeout", 30*time.Second, "how long to wait for the old primary to rejoin (reported only)")
	fs.DurationVar(&o.goal, "goal", 15*time.Second, "the longest acceptable outage")
	fs.DurationVar(&o.freeze, "freeze", 0, "instead of killing the primary, stop (SIGSTOP) its PostgreSQL processes for this long, then continue them")
}

// readToken reads the token of an `issuer login` credentials file.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var c struct{ Token string }
	if err := json.Unmarshal(b, &c); err != nil || c.Token == "" {
		return "", fmt.Errorf("%s: no token in it (%v)", path, err)
	}
	return c.Token, nil
}

func drive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("drive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o driveOptions
	o.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "hatest: %s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, a...)...)
	}
	nodes := map[string]string{}
	for _, kv := range split(o.nodes) {
		name, dir, _ := strings.Cut(kv, "=")
		nodes[name] = dir
	}
	l := &load{o: o, issuers: split(o.issuers), token: os.Getenv("HATEST_LEASE_TOKEN"),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128, DisableCompression: true}}}
	if len(l.issuers) == 0 || o.license == "" || o.maxInstances < 1 || l.token == "" || len(nodes) < 2 {
		return errors.New("drive: -issuers, -license, -max-instances, -nodes and $HATEST_LEASE_TOKEN are required")
	}
	ksb, err := os.ReadFile(o.keyset)
	if err != nil {
		return err
	}
	if l.keys, err = verify.ParseKeySet(ksb); err != nil {
		return err
	}
	if l.maker, err = readToken(o.makerCreds); err != nil {
		return err
	}
	if l.checker, err = readToken(o.checkerCreds); err != nil {
		return err
	}
	p := &patroni{urls: split(o.patroni), client: &http.Client{Timeout: time.Second}}
	if _, ms, err := p.waitCluster(ctx, 60*time.Second, true); err != nil {
		return err
	} else {
		logf("cluster before: %v", ms)
	}

	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	start := time.Now()
	l.start(lctx)
	logf("load: %d hosts (+%d waiting for a slot, one release every %s), %d customer writers, a bundle every %s, over %d replicas",
		o.hosts, o.newcomers, o.releaseEvery, o.customerWriters, o.publishEvery, len(l.issuers))
	if !sleep(ctx, o.before) {
		return ctx.Err()
	}
	if n := countAcks(l.snapshot(), time.Time{}); n == 0 {
		return errors.New("no write was acknowledged before the failover: the setup is broken")
	}

	// Kill the primary's postmaster.
	ms, err := p.members(ctx)
	if err != nil {
		return err
	}
	old, ok := leaderOf(ms)
	if !ok || nodes[old.Name] == "" {
		return fmt.Errorf("no running leader among %v with a known data directory", ms)
	}
	var frozen []int
	if o.freeze > 0 {
		if frozen, err = freezePostmaster(nodes[old.Name]); err != nil {
			return err
		}
		defer thaw(frozen)
		logf("froze the primary %s: SIGSTOP to its %d PostgreSQL processes for %s (t=%.1fs)", old.Name, len(frozen), o.freeze, time.Since(start).Seconds())
	} else {
		pid, err := killPostmaster(nodes[old.Name])
		if err != nil {
			return err
		}
		logf("killed the primary %s: SIGKILL to postmaster %d (t=%.1fs)", old.Name, pid, time.Since(start).Seconds())
	}
	killAt := time.Now()

	// Drive on until another node leads and writes of both kinds succeed again.
	deadline := killAt.Add(o.recoverTimeout)
	var promotedAt, recoveredAt time.Time
	for time.Now().Before(deadline) && recoveredAt.IsZero() {
		if frozen != nil && time.Since(killAt) >= o.freeze {
			thaw(frozen)
			frozen = nil
			logf("continued %s's PostgreSQL processes (SIGCONT)", old.Name)
		}
		if promotedAt.IsZero() {
			if ms, err := p.members(ctx); err == nil {
				if nl, ok := leaderOf(ms); ok && nl.Name != old.Name {
					promotedAt = time.Now()
					logf("%s leads (timeline %d) %.1fs after the kill", nl.Name, nl.Timeline, promotedAt.Sub(killAt).Seconds())
				}
			}
		} else {
			recs := l.snapshot()
			if t1, t2 := firstAck(recs, kindLease, promotedAt), firstAck(recs, kindCustomer, promotedAt); !t1.IsZero() && !t2.IsZero() {
				recoveredAt = later(t1, t2)
				logf("leases and staff writes acknowledged again %.1fs after the kill", recoveredAt.Sub(killAt).Seconds())
			}
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	if frozen != nil {
		thaw(frozen)
		frozen = nil
		logf("continued %s's PostgreSQL processes (SIGCONT)", old.Name)
	}
	if recoveredAt.IsZero() {
		logf("writes did not recover within %s of the kill (promoted: %v)", o.recoverTimeout, !promotedAt.IsZero())
	} else if !sleep(ctx, o.after) {
		return ctx.Err()
	}
	stopLoad()
	l.wg.Wait()
	end := time.Now()
	logf("load stopped after %.1fs", end.Sub(start).Seconds())
	rejoin(ctx, p, old.Name, killAt, o.rejoinTimeout, logf)
	return report(ctx, &o, l, end, stdout, logf)
}

// rejoin waits, bounded, for the old primary to come back as the synchronous standby
// and says how long it took (Patroni's pg_rewind path; not a pass criterion).
func rejoin(ctx context.Context, p *patroni, name string, since time.Time, timeout time.Duration, logf func(string, ...any)) {
	deadline := time.Now().Add(timeout)
	var last []member
	for time.Now().Before(deadline) {
		if ms, err := p.members(ctx); err == nil {
			last = ms
			for _, m := range ms {
				if m.Name == name && m.Place == "sync_standby" && (m.State == "streaming" || m.State == "running") {
					logf("%s rejoined as the synchronous standby %.1fs after the kill: %v", name, time.Since(since).Seconds(), ms)
					return
				}
			}
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return
		}
	}
	logf("%s had not rejoined as the synchronous standby %s after the load: %v", name, timeout, last)
}

// report reads the database, checks, prints the summary and the last line.
func report(ctx context.Context, o *driveOptions, l *load, end time.Time, stdout io.Writer, logf func(string, ...any)) error {
	recs := l.records
	var customerIDs []string
	for _, r := range recs {
		if r.Kind == kindCustomer && r.acknowledged() {
			customerIDs = append(customerIDs, r.ID)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, o.databaseURL)
	if err != nil {
		return fmt.Errorf("checks: %w", err)
	}
	defer conn.Close(context.Background())
	st, err := readDB(cctx, conn, o.license, o.product, customerIDs)
	if err != nil {
		return fmt.Errorf("checks: %w", err)
	}
	for _, line := range summarize(recs) {
		logf("%s", line)
	}
	lost, why := lostWrites(recs, st)
	for _, w := range why {
		logf("LOST %s", w)
	}
	invalid := 0
	for _, r := range recs {
		if r.Invalid {
			invalid++
			if invalid <= 10 {
				logf("INVALID lease answer for %s: %s", r.Host, r.Err)
			}
		}
	}
	hostMax, dbMax := maxConcurrent(l.spans), maxOccupied(st.events)
	seatsOK := hostMax <= o.maxInstances && dbMax <= o.maxInstances && st.occupied <= o.maxInstances
	logf("seats (bound %d): at most %d hosts held a lease at once (their own leases); at most %d slots occupied (the database's lease history, %d rows); %d occupied now",
		o.maxInstances, hostMax, dbMax, len(st.events), st.occupied)
	acked := countAcks(recs, time.Time{})
	outage := longestOutage(recs, end)
	fmt.Fprintf(stdout, "failover: unavailable=%.1fs acknowledged=%d lost=%d seats_ok=%v\n", outage.Seconds(), acked, lost, seatsOK)
	if lost > 0 || !seatsOK || invalid > 0 || outage >= o.goal {
		return errGoalMissed
	}
	return nil
}

// summarize counts, per kind of write, the answers by status.
func summarize(recs []record) []string {
	type tally struct {
		n, acked, failed int
		status           map[int]int
	}
	kinds := map[string]*tally{}
	for _, r := range recs {
		t := kinds[r.Kind]
		if t == nil {
			t = &tally{status: map[int]int{}}
			kinds[r.Kind] = t
		}
		t.n++
		t.status[r.Status]++
		if r.acknowledged() {
			t.acked++
		} else if r.failed() {
			t.failed++
		}
	}
	var out []string
	for _, k := range []string{kindLease, kindRelease, kindCustomer, kindBundle} {
		if t := kinds[k]; t != nil {
			codes := make([]int, 0, len(t.status))
			for c := range t.status {
				codes = append(codes, c)
			}
			slices.Sort(codes)
			var s []string
			for _, c := range codes {
				s = append(s, fmt.Sprintf("%d×%d", t.status[c], c))
			}
			out = append(out, fmt.Sprintf("%-8s %5d attempts, %5d acknowledged, %4d failed (status: %s; 0 = no answer)", k, t.n, t.acked, t.failed, strings.Join(s, " ")))
		}
	}
	return out
}

// countAcks counts the acknowledged writes completed after since.
func countAcks(recs []record, since time.Time) int {
	n := 0
	for i := range recs {
		if recs[i].acknowledged() && recs[i].End.After(since) {
			n++
		}
	}
	return n
}

// firstAck is the completion time of the first acknowledged write of kind sent after
// since (zero if none).
func firstAck(recs []record, kind string, since time.Time) time.Time {
	var first time.Time
	for i := range recs {
		r := &recs[i]
		if r.Kind == kind && r.acknowledged() && r.Start.After(since) && (first.IsZero() || r.End.Before(first)) {
			first = r.End
		}
	}
	return first
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
