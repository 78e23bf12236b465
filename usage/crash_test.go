package usage_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metrum/licensing/usage"
)

// TestMain runs the crash child when TestCrash starts this binary with
// USAGE_CRASH_DIR (it never returns: it dies at the hook, or exits 3 if the hook was
// never reached); otherwise the tests.
func TestMain(m *testing.M) {
	if dir := os.Getenv("USAGE_CRASH_DIR"); dir != "" {
		crashChild(dir, os.Getenv("USAGE_CRASH_AT"))
	}
	os.Exit(m.Run())
}

// crashChild is the recorder in a child process that dies by SIGKILL at a durable
// write's hook, while it closes a period; TestCrash checks what survived.
func crashChild(dir, point string) {
	check := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
	}
	c := newClock(t0)
	r, err := usage.Open(usage.Options{Dir: dir, Now: c.Now, Reporter: "usage-test/1"})
	check(err)
	check(r.SetLicense(license(licA, 1000, 0)))
	check(r.Consume(100))
	c.Add(time.Hour)
	check(r.Tick()) // report 1: 100 tokens
	check(r.Consume(23))
	check(r.Add("images", 4))
	c.Add(time.Hour)
	usage.SetHook(func(p string) {
		if p == point {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	})
	r.Tick() // report 2: 23 tokens, 4 images; killed on the way
	fmt.Fprintf(os.Stderr, "crash child: the hook %q was never reached\n", point)
	os.Exit(3)
}

// A recorder killed between writing and renaming a report (the state file that holds
// it), or just after, or after its counts were checkpointed but before the report was
// written, loses nothing and counts nothing twice after a restart.
func TestCrash(t *testing.T) {
	for _, point := range []string{
		"before-rename:usage-state.json", // the report written, not yet renamed into place
		"after-rename:usage-state.json",  // renamed, the next period's checkpoint not written
		"after-rename:usage-open.json",   // the closing period's counts checkpointed, no report yet
	} {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "USAGE_CRASH_DIR="+dir, "USAGE_CRASH_AT="+point)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the child was not killed at the hook: %v\n%s", err, out)
			}
			if point == "before-rename:usage-state.json" {
				if m, _ := filepath.Glob(filepath.Join(dir, ".usage-state.json.tmp-*")); len(m) != 1 {
					t.Fatalf("the crash left no half-written state file: %v", m)
				}
			}
			c := newClock(t0.Add(2*time.Hour + time.Minute))
			r := mustOpen(t, dir, c, nil) // the lock died with the child
			if m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*")); len(m) != 0 {
				t.Fatalf("temp files left after Open: %v", m)
			}
			must(t, r.SetLicense(license(licA, 1000, 0)))
			if s := r.Status(); s.Used != 123 {
				t.Fatalf("used %d after the restart, want 123", s.Used)
			}
			c.Add(time.Hour)
			must(t, r.Tick())
			must(t, r.Close())
			rs := exported(t, dir)
			if err := usage.CheckChain(nil, rs); err != nil {
				t.Fatal(err)
			}
			if got, img := sum(rs, "tokens"), sum(rs, "images"); got != 123 || img != 4 {
				t.Fatalf("reported %d tokens and %d images, want 123 and 4: %d reports", got, img, len(rs))
			}
			if last := rs[len(rs)-1]; last.Totals["tokens"] != 123 {
				t.Fatalf("totals %v", last.Totals)
			}
			var seqs []string
			for _, r := range rs {
				seqs = append(seqs, r.Payload.PeriodStart[11:16]+"–"+r.Payload.PeriodEnd[11:16])
			}
			t.Logf("periods after the restart: %s", strings.Join(seqs, ", "))
		})
	}
}
