package usage_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/metrum/licensing/usage"
)

// Periods close on the hour; each report continues the chain (seq, prev, periods,
// totals), is signed by the host key that seq 1 carries, and the first period starts
// when counting did.
func TestPeriodsAndChain(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	r := mustOpen(t, dir, c, nil)
	must(t, r.SetLicense(license(licA, -1, 0)))
	must(t, r.Consume(10))
	must(t, r.Add("images", 2))
	must(t, r.Tick()) // 10:17: nothing due
	if got := exported(t, dir); len(got) != 0 {
		t.Fatalf("%d reports before the first boundary", len(got))
	}
	c.Add(43 * time.Minute) // 11:00:03
	must(t, r.Tick())
	must(t, r.Consume(5))
	c.Add(time.Hour)
	must(t, r.Tick())
	c.Add(time.Hour) // an hour with nothing counted still closes
	must(t, r.Tick())
	rs := exported(t, dir)
	if len(rs) != 3 {
		t.Fatalf("%d reports, want 3", len(rs))
	}
	if err := usage.CheckChain(nil, rs); err != nil {
		t.Fatal(err)
	}
	first := rs[0]
	if first.Seq != 1 || first.Prev != "" || first.HostKey == nil || first.Payload.PeriodStart != "2026-06-01T10:17:03Z" || first.Payload.PeriodEnd != "2026-06-01T11:00:00Z" {
		t.Fatalf("first report: %+v", first.Payload)
	}
	if first.Counters["tokens"] != 10 || first.Counters["requests"] != 1 || first.Counters["images"] != 2 {
		t.Fatalf("counters %v", first.Counters)
	}
	for _, rep := range rs[1:] {
		if rep.HostKey != nil || rep.End.Sub(rep.Start) != time.Hour || rep.Reporter != "usage-test/1" {
			t.Fatalf("report %d: %+v", rep.Seq, rep.Payload)
		}
	}
	if last := rs[2]; last.Totals["tokens"] != 15 || last.Totals["requests"] != 2 || last.Totals["images"] != 2 || last.Counters["tokens"] != 0 {
		t.Fatalf("totals %v counters %v", last.Totals, last.Counters)
	}
	if rs[0].KeyID != usage.KeyID(rs[0].Key) {
		t.Fatal("key_id is not the host key's thumbprint")
	}
	must(t, r.Close())
	// Files are private, the host key beside the state.
	for _, name := range []string{"usage-state.json", "usage-open.json", filepath.Join("keys", rs[0].KeyID+".key")} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", name, err, fi)
		}
	}
}

// A restart continues the same chain (instance_id stable, seq on), with the open
// period's checkpointed counts; a host that was down longer than a day fills the time
// with reports of at most 24 hours.
func TestRestartAndLongDowntime(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	r := mustOpen(t, dir, c, nil)
	must(t, r.SetLicense(license(licA, 1000, 0)))
	must(t, r.Consume(100))
	c.Add(time.Hour)
	must(t, r.Tick())
	must(t, r.Consume(40))
	must(t, r.Checkpoint())
	inst := r.Status().InstanceID
	// The process dies without Close: the lock goes with it (closing the file here).
	must(t, r.CloseForTest())

	c.Add(50 * time.Hour)
	r = mustOpen(t, dir, c, nil)
	if s := r.Status(); s.InstanceID != inst || s.Used != 140 || s.TokenBudget != 1000 {
		t.Fatalf("after restart: %+v (instance was %s)", s, inst)
	}
	must(t, r.SetLicense(license(licA, 1000, 0))) // the enforcer sets it again: a no-op
	must(t, r.Tick())
	rs := exported(t, dir)
	if err := usage.CheckChain(nil, rs); err != nil {
		t.Fatal(err)
	}
	for _, rep := range rs {
		if rep.End.Sub(rep.Start) > usage.MaxPeriod || rep.InstanceID != inst {
			t.Fatalf("report %d: %s – %s of %s", rep.Seq, rep.Payload.PeriodStart, rep.Payload.PeriodEnd, rep.InstanceID)
		}
	}
	if got := sum(rs, "tokens"); got != 140 {
		t.Fatalf("tokens reported %d, want 140 (no loss, no double count)", got)
	}
	if last := rs[len(rs)-1]; !last.End.Equal(c.Now().Truncate(time.Hour)) {
		t.Fatalf("last period ends %s", last.Payload.PeriodEnd)
	}
	must(t, r.Close())
}

// The budget is exact under concurrency: requests that together would pass it are
// refused whole, and the refusal says how much is left.
func TestBudgetConcurrent(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	r := mustOpen(t, dir, c, nil)
	defer r.Close()
	must(t, r.SetLicense(license(licA, 10_000, 0)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				err := r.Consume(7)
				var le *usage.LimitError
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.As(err, &le):
					refused++
				default:
					t.Error(err)
				}
				mu.Unlock()
				if i == 150 {
					r.Tick() // periods may close under load
				}
			}
		}()
	}
	wg.Wait()
	if ok != 10_000/7 || refused != 2400-ok {
		t.Fatalf("%d accepted, %d refused; want %d accepted", ok, refused, 10_000/7)
	}
	err := r.Consume(7)
	var le *usage.LimitError
	if !errors.As(err, &le) || le.Budget != 10_000 || le.Used != 7*(10_000/7) || le.Window != 0 || le.RetryAfter != 0 {
		t.Fatalf("%v", err)
	}
	if err := r.Consume(10_000 - 7*(10_000/7)); err != nil {
		t.Fatalf("the last tokens that fit: %v", err)
	}
}

// A top-up is a new license: its own chain and its own budget from zero. Switching
// back to the old license continues its count: no budget is refilled that way.
func TestTopUpStartsAtZero(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	r := mustOpen(t, dir, c, nil)
	defer r.Close()
	must(t, r.SetLicense(license(licA, 100, 0)))
	must(t, r.Consume(90))
	if err := r.Consume(20); err == nil {
		t.Fatal("over budget accepted")
	}
	c.Add(time.Minute)
	b := license(licB, 500, 0)
	b.Supersedes = licA
	must(t, r.SetLicense(b))
	if s := r.Status(); s.LicenseID != licB || s.Used != 0 || s.TokenBudget != 500 {
		t.Fatalf("%+v", s)
	}
	must(t, r.Consume(400))
	must(t, r.SetLicense(license(licA, 100, 0)))
	if err := r.Consume(20); err == nil {
		t.Fatal("switching back refilled the old budget")
	}
	rs := byChain(exported(t, dir))
	if len(rs) != 2 {
		t.Fatalf("%d chains, want one per license", len(rs))
	}
	for _, chain := range rs {
		if err := usage.CheckChain(nil, chain); err != nil {
			t.Fatal(err)
		}
		if chain[0].LicenseID == licA && sum(chain, "tokens") != 90 || chain[0].LicenseID == licB && sum(chain, "tokens") != 400 {
			t.Fatalf("license %s reported %d tokens", chain[0].LicenseID, sum(chain, "tokens"))
		}
	}
}

// A rolling window counts the tokens of periods ending inside it (a period partly
// inside counts whole: the local check errs towards the budget), and says when enough
// will have aged out.
func TestRollingWindow(t *testing.T) {
	dir, c := t.TempDir(), newClock(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	r := mustOpen(t, dir, c, nil)
	defer r.Close()
	must(t, r.SetLicense(license(licA, 100, 3*time.Hour)))
	must(t, r.Consume(60)) // in the period 10:00–11:00
	c.Add(time.Hour)
	must(t, r.Tick())
	must(t, r.Consume(40)) // 11:00–12:00
	err := r.Consume(1)
	var le *usage.LimitError
	if !errors.As(err, &le) || le.Window != 3*time.Hour || le.RetryAfter != 3*time.Hour {
		// The 60 tokens of the period ending 11:00 leave the window at 14:00.
		t.Fatalf("%v", err)
	}
	c.Add(3 * time.Hour) // 14:00
	must(t, r.Tick())
	if s := r.Status(); s.Used != 40 {
		t.Fatalf("used %d in the window at 14:00, want 40", s.Used)
	}
	must(t, r.Consume(60))
	if err := r.Consume(1); err == nil {
		t.Fatal("over the window's budget")
	}
}

// One recorder per folder: two routers given one --usage-dir would fork the chain.
func TestOneRecorderPerFolder(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	r := mustOpen(t, dir, c, nil)
	if _, err := usage.Open(usage.Options{Dir: dir, Now: c.Now}); err == nil {
		t.Fatal("a second recorder opened the same folder")
	}
	must(t, r.Close())
	r = mustOpen(t, dir, c, nil)
	must(t, r.Close())
}

// A state whose reports were altered is refused, not repaired.
func TestTamperedStateRefused(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	r := mustOpen(t, dir, c, nil)
	must(t, r.SetLicense(license(licA, -1, 0)))
	must(t, r.Consume(5))
	c.Add(time.Hour)
	must(t, r.Tick())
	must(t, r.Close())
	p := filepath.Join(dir, "usage-state.json")
	data, _ := os.ReadFile(p)
	bad := []byte(string(data))
	// Flip one character inside the first pending envelope's signature.
	i := lastIndex(bad, `\"signature\":\"`) + len(`\"signature\":\"`)
	bad[i] ^= 1
	os.WriteFile(p, bad, 0o600)
	if _, err := usage.Open(usage.Options{Dir: dir, Now: c.Now}); err == nil {
		t.Fatal("opened a state with a bad signature")
	}
	if _, _, err := usage.Export(dir, 0); err == nil {
		t.Fatal("exported a state with a bad signature")
	}
}

func lastIndex(b []byte, s string) int {
	for i := len(b) - len(s); i >= 0; i-- {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	panic("not found")
}

// Refusals (which read the window under the recorder's mutex) while periods close
// (which hold it and wait for the requests in flight) never deadlock.
func TestRefusalsWhilePeriodsClose(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	r := mustOpen(t, dir, c, nil)
	defer r.Close()
	must(t, r.SetLicense(license(licA, 10, time.Hour)))
	must(t, r.Consume(10))
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 2000; i++ {
					r.Consume(5)
				}
			}()
		}
		for i := 0; i < 50; i++ {
			c.Add(20 * time.Minute) // a close every third tick
			r.Tick()
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("deadlock: refusals and closes waited for each other")
	}
}
