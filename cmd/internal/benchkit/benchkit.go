// Package benchkit is what the benchmarks under cmd/ share: a private PostgreSQL
// unless one is given, an issuer service over a migrated store with keys made at run
// time, a console sign-in, and the CPU time of this process and of Postgres.
package benchkit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/pgcluster"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/verify"
)

// Password is the bench admin's (console sign-ins use it).
const Password = "a long enough password"

// Database returns dbURL when set; otherwise it starts a private PostgreSQL in a
// temporary folder (durable: fsync and synchronous commit on) and returns its URL and
// how to stop and remove it.
func Database(ctx context.Context, prefix, dbURL string, durable bool) (string, func(), error) {
	if dbURL != "" {
		return dbURL, func() {}, nil
	}
	dir, err := pgcluster.MkdirTemp(prefix + "-pg-")
	if err != nil {
		return "", nil, err
	}
	cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Durable: durable})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return cl.URL("postgres"), func() { cl.Stop(); os.RemoveAll(dir) }, nil
}

// Issuer migrates store and returns an issuer service with a file key store in a
// temporary folder (a fresh KEK), an admin account (Password) and a router key for
// each purpose, activated; done removes the key folder.
func Issuer(ctx context.Context, store *storage.Store, prefix string) (svc *issuance.Service, admin *entitlements.Staff, done func(), err error) {
	if _, err := store.Migrate(ctx); err != nil {
		return nil, nil, nil, err
	}
	keyDir, err := os.MkdirTemp("", prefix+"-keys-")
	if err != nil {
		return nil, nil, nil, err
	}
	done = func() { os.RemoveAll(keyDir) }
	fail := func(err error) (*issuance.Service, *entitlements.Staff, func(), error) {
		done()
		return nil, nil, nil, err
	}
	kek, err := signing.NewKEKFile(filepath.Join(keyDir, "kek"))
	if err != nil {
		return fail(err)
	}
	svc = issuance.New(store, issuance.Config{Keys: signing.NewKeys(signing.NewFileBackend(filepath.Join(keyDir, "keys"), kek)), Issuer: "metrum", MakerChecker: true})
	admin = &entitlements.Staff{Email: "bench@metrum.test", Role: entitlements.RoleAdmin}
	if err := entitlements.ValidateNewStaff(admin, Password); err != nil {
		return fail(err)
	}
	if err := store.CreateStaff(ctx, admin, Password, entitlements.BootstrapActor); err != nil {
		return fail(err)
	}
	if admin, err = store.StaffByEmail(ctx, admin.Email); err != nil {
		return fail(err)
	}
	for _, p := range []verify.Purpose{verify.PurposeLicense, verify.PurposeRevocation, verify.PurposeLease} {
		if _, err := svc.GenerateKey(ctx, entitlements.KeyInput{Product: "genai-smart-router", Alg: verify.AlgEdDSA, Purposes: []verify.Purpose{p}}, true, admin); err != nil {
			return fail(err)
		}
	}
	return svc, admin, done, nil
}

var csrfRe = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// SignIn signs in to the console at base as a person would (the sign-in page's CSRF
// token, then the form) and returns the client holding the session.
func SignIn(base, email string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/staff/login")
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRe.FindStringSubmatch(string(b))
	if m == nil {
		return nil, fmt.Errorf("no CSRF token on the sign-in page")
	}
	resp, err = c.PostForm(base+"/staff/login", url.Values{"_csrf": {m[1]}, "email": {email}, "password": {Password}})
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if !strings.HasSuffix(resp.Request.URL.Path, "/staff/") {
		return nil, fmt.Errorf("sign-in failed: at %s", resp.Request.URL)
	}
	return c, nil
}

// MS is a duration in milliseconds, for printing.
func MS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// CPUTimes returns the CPU time (user + system) of this process and of all processes
// named postgres, from /proc (Linux).
func CPUTimes() (self, pg time.Duration) {
	tick := 10 * time.Millisecond // USER_HZ is 100 on Linux
	read := func(path string) (string, time.Duration) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", 0
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			return "", 0
		}
		f := strings.Fields(s[close+2:])
		if len(f) < 13 {
			return "", 0
		}
		var u, st int64
		fmt.Sscan(f[11], &u)
		fmt.Sscan(f[12], &st)
		return s[open+1 : close], time.Duration(u+st) * tick
	}
	_, self = read("/proc/self/stat")
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		if name, t := read(d); name == "postgres" {
			pg += t
		}
	}
	return self, pg
}

// Window is one measured stretch of a closed-loop benchmark: how long it lasted and
// the CPU time this process and Postgres spent in it.
type Window struct {
	Elapsed, SelfCPU, PgCPU time.Duration
}

// Measure waits warmup, then sets measuring for duration (the clients count only
// while it is set) with a CPU profile written to profile when given, and returns the
// window.
func Measure(warmup, duration time.Duration, profile string, measuring *atomic.Bool) (Window, error) {
	time.Sleep(warmup)
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return Window{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return Window{}, err
		}
		defer pprof.StopCPUProfile()
	}
	self0, pg0 := CPUTimes()
	measuring.Store(true)
	start := time.Now()
	time.Sleep(duration)
	measuring.Store(false)
	self1, pg1 := CPUTimes()
	return Window{Elapsed: time.Since(start), SelfCPU: self1 - self0, PgCPU: pg1 - pg0}, nil
}
