// Command hatest is the Go side of scripts/ha-test, which starts etcd, two PostgreSQL
// nodes under Patroni (synchronous replication) and two `issuer serve` replicas on
// loopback, and sets up a lease-required license through the issuer CLI. hatest then
// drives the failover run and checks it:
//
//	hatest ports N             print N free loopback TCP ports
//	hatest wait-cluster …      wait for a Patroni leader with a synchronous standby
//	hatest drive …             the failover run (see drive's flags)
//
// drive sends lease renewals from many simulated router hosts, new hosts trying to
// take slots, clean-shutdown releases and staff writes (customers, revocation
// bundles) through both issuer replicas; after a while it kills the primary's
// postmaster with SIGKILL, keeps driving until Patroni has promoted the synchronous
// standby and writes succeed again, drives a while longer, and then checks against
// the database that every acknowledged write is there and that the hosts holding an
// unexpired lease never outnumbered the license's seats. Its last line is
//
//	failover: unavailable=<s>s acknowledged=<N> lost=<N> seats_ok=<bool>
//
// and it exits 1 when lost > 0, seats_ok is false, a lease was invalid, or the
// outage reached the goal (-goal, 15 s).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errGoalMissed) {
			fmt.Fprintln(os.Stderr, "hatest:", err)
		}
		os.Exit(1)
	}
}

// errGoalMissed: the run finished and printed its line, but missed a goal.
var errGoalMissed = errors.New("the failover missed a goal")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: hatest ports N | wait-cluster … | drive …")
	}
	switch args[0] {
	case "ports":
		return ports(args[1:], stdout)
	case "wait-cluster":
		return waitClusterCmd(ctx, args[1:], stdout, stderr)
	case "drive":
		return drive(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// ports prints n distinct free loopback ports on one line. They are free when
// printed; the caller binds them at once.
func ports(args []string, stdout io.Writer) error {
	var n int
	if len(args) != 1 {
		return errors.New("usage: hatest ports N")
	}
	if _, err := fmt.Sscan(args[0], &n); err != nil || n < 1 || n > 64 {
		return errors.New("ports: N must be 1..64")
	}
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close() // held until all are chosen, so none repeats
		out = append(out, fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
	}
	_, err := fmt.Fprintln(stdout, strings.Join(out, " "))
	return err
}

// waitClusterCmd waits for a healthy cluster and prints its leader's name and port.
func waitClusterCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wait-cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urls := fs.String("patroni", "", "the nodes' Patroni REST API URLs, comma-separated")
	timeout := fs.Duration("timeout", 90*time.Second, "how long to wait")
	needSync := fs.Bool("sync", true, "wait for a synchronous standby too (false: a running leader is enough)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p := &patroni{urls: split(*urls), client: &http.Client{Timeout: 2 * time.Second}}
	leader, ms, err := p.waitCluster(ctx, *timeout, *needSync)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "hatest: cluster %v\n", ms)
	_, err = fmt.Fprintln(stdout, leader.Name, leader.Port)
	return err
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
