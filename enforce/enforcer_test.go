package enforce_test

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/enforce"
	"github.com/metrum/licensing/verify"
)

func mustNew(t *testing.T, o enforce.Options) *enforce.Enforcer {
	t.Helper()
	o.NoSIGHUP = true // only the SIGHUP test takes the signal
	e, err := enforce.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Options that would switch a check off are refused, not taken as "off".
func TestOptionsCantDisableChecks(t *testing.T) {
	k := newKit(t)
	lic := enforce.File(k.put("license.json", k.license(payload(licA, time.Now()))))
	empty, _ := verify.ParseKeySet([]byte(`{"keys":[]}`))
	for name, o := range map[string]enforce.Options{
		"no license":   {Product: router, KeySet: k.ks},
		"no product":   {License: lic, KeySet: k.ks},
		"no key set":   {License: lic, Product: router},
		"empty keys":   {License: lic, Product: router, KeySet: empty},
		"negative cap": {License: lic, Product: router, KeySet: k.ks, GraceOnValidationError: -time.Hour},
	} {
		if _, err := enforce.New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := enforce.New(enforce.Options{License: lic, Product: router, KeySet: empty}); !errors.Is(err, enforce.ErrNoKeys) {
		t.Errorf("an empty key set: %v", err)
	}
	e := mustNew(t, enforce.Options{License: lic, AnyProduct: true, KeySet: k.ks})
	if !e.Serving() {
		t.Error("AnyProduct: not serving")
	}
	// A bundle source alone turns revocation on.
	k.put("bundle.json", k.bundle(1, time.Now(), licA))
	e = mustNew(t, enforce.Options{License: lic, Product: router, KeySet: k.ks, Bundle: enforce.File(k.path("bundle.json"))})
	if s := e.Status(); s.Reason != enforce.ReasonRevoked {
		t.Errorf("a bundle given: %s %s", s.State, s.Reason)
	}
}

// A valid license: gates, limits and the safe status, whose JSON is exactly the
// members of /admin/license/status.
func TestValidStatusAndGates(t *testing.T) {
	k := newKit(t)
	now := time.Now().UTC()
	e := mustNew(t, enforce.Options{License: enforce.File(k.put("license.json", k.license(payload(licA, now)))), Product: router, KeySet: k.ks})
	if !e.Allow("routing") || e.Allow("pii_filtering") || !e.Serving() {
		t.Fatal("gates")
	}
	if v, ok := e.Limit("max_concurrency"); v != 8 || !ok {
		t.Fatalf("limit %d %v", v, ok)
	}
	if _, ok := e.Limit("seats"); ok {
		t.Fatal("an absent limit is unlimited")
	}
	s := e.Status()
	if s.State != enforce.StateValid || s.Reason != "" || s.LicenseID != licA || s.DaysUntilExpiry != 365 || s.GraceActive || s.BundleSequence != nil {
		t.Fatalf("%+v", s)
	}
	s.Features[0] = "edited" // the caller's own copy
	if !e.Allow("admin_reports") {
		t.Fatal("editing a Status changed the enforcer")
	}
	b, _ := json.Marshal(e.Status())
	var m map[string]any
	json.Unmarshal(b, &m)
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	want := []string{"bundle_sequence", "customer_id", "days_until_expiry", "expires_at", "features", "grace_active", "key_id", "license_id", "limits", "reason", "sku", "status"}
	if !slices.Equal(got, want) {
		t.Fatalf("members %v\nwant %v", got, want)
	}
	if m["expires_at"] != verify.FormatTime(now.Add(365*24*time.Hour)) || m["days_until_expiry"] != float64(365) || m["bundle_sequence"] != nil {
		t.Fatalf("%s", b)
	}
	if strings.Contains(string(b), "signature") || strings.Contains(string(b), "payload") {
		t.Fatal("unsafe fields")
	}
}

// Blocked: nothing is allowed, every limit is zero, the status has no features.
func TestBlockedGatesNothing(t *testing.T) {
	k := newKit(t)
	now := time.Now().UTC()
	p := payload(licA, now.Add(-400*24*time.Hour))
	e := mustNew(t, enforce.Options{License: enforce.File(k.put("license.json", k.license(p))), Product: router, KeySet: k.ks})
	s := e.Status()
	if e.Allow("routing") || e.Serving() || s.State != enforce.StateBlocked || s.Reason != enforce.ReasonExpired || len(s.Features) != 0 {
		t.Fatalf("%+v", s)
	}
	if v, limited := e.Limit("max_concurrency"); v != 0 || !limited {
		t.Fatal("blocked: limits are zero")
	}
	if s.DaysUntilExpiry != -35 || s.LicenseID != licA {
		t.Fatalf("days %d", s.DaysUntilExpiry)
	}
}

// Deleting the license file: grace serves the kept license's features and limits
// (formats.md v1.2), until the operator's cap has passed.
func TestGraceAndOperatorCap(t *testing.T) {
	k := newKit(t)
	c := &clock{t: time.Now().UTC()}
	e := mustNew(t, enforce.Options{License: enforce.File(k.put("license.json", k.license(payload(licA, c.Now())))), Product: router,
		KeySet: k.ks, StatePath: k.path("state.json"), GraceOnValidationError: 6 * time.Hour, Now: c.Now})
	k.remove("license.json")
	c.Add(time.Hour)
	s := e.Reload()
	if s.State != enforce.StateGrace || s.Reason != enforce.ReasonMissing || !s.GraceActive || !e.Allow("routing") || s.LicenseID != licA {
		t.Fatalf("%+v", s)
	}
	if want := c.Now().Add(5 * time.Hour); !s.GraceEndsAt.Equal(want.Truncate(time.Second)) && s.GraceEndsAt.Sub(want).Abs() > time.Second {
		t.Fatalf("grace ends %s, want %s (the cap, shorter than the license's 24 h)", s.GraceEndsAt, want)
	}
	if v, _ := e.Limit("max_concurrency"); v != 8 {
		t.Fatal("grace serves the kept license's limits")
	}
	c.Add(5 * time.Hour)
	if s := e.Reload(); s.State != enforce.StateBlocked || s.Reason != enforce.ReasonMissing || e.Allow("routing") {
		t.Fatalf("past the cap: %+v", s)
	}
	// A new process with the state file: still past the cap.
	e2 := mustNew(t, enforce.Options{License: enforce.File(k.path("license.json")), Product: router, KeySet: k.ks,
		StatePath: k.path("state.json"), GraceOnValidationError: 6 * time.Hour, Now: c.Now})
	if e2.Serving() {
		t.Fatal("restart gave grace back")
	}
}

// Without a state file, the memory still gives grace for as long as the process runs.
func TestGraceInMemory(t *testing.T) {
	k := newKit(t)
	e := mustNew(t, enforce.Options{License: enforce.File(k.put("license.json", k.license(payload(licA, time.Now())))), Product: router, KeySet: k.ks})
	k.remove("license.json")
	if s := e.Reload(); s.State != enforce.StateGrace {
		t.Fatalf("%+v", s)
	}
}

// Run notices a replaced file by itself (polling), and a deadline (expiry) without
// any file change.
func TestRunWatchesFilesAndDeadlines(t *testing.T) {
	k := newKit(t)
	now := time.Now().UTC()
	p := payload(licA, now)
	p.ExpiresAt = verify.FormatTime(now.Add(2 * time.Second)) // expires during the test
	e := mustNew(t, enforce.Options{License: enforce.File(k.put("license.json", k.license(p))), Product: router, KeySet: k.ks,
		WatchInterval: 20 * time.Millisecond, RecheckInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	eventually(t, "the expiry deadline to block the license", func() bool { return e.Status().Reason == enforce.ReasonExpired })
	k.put("license.json", k.license(payload(licB, time.Now().UTC())))
	eventually(t, "the replaced file to be checked", func() bool { return e.Status().LicenseID == licB && e.Serving() })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// SIGHUP reloads: with polling and rechecks far off, only the signal can explain it.
func TestSIGHUPReloads(t *testing.T) {
	k := newKit(t)
	e, err := enforce.New(enforce.Options{License: enforce.File(k.put("license.json", k.license(payload(licA, time.Now())))), Product: router,
		KeySet: k.ks, WatchInterval: time.Hour, RecheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	k.put("license.json", k.license(payload(licB, time.Now())))
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	eventually(t, "SIGHUP to reload the license", func() bool { return e.Status().LicenseID == licB })
}

// Bytes, readers and environment variables are sources like files.
func TestSources(t *testing.T) {
	k := newKit(t)
	data := k.license(payload(licA, time.Now()))
	t.Setenv("TEST_LICENSE", string(data))
	for name, src := range map[string]enforce.Source{
		"bytes":  enforce.Bytes(data),
		"reader": enforce.Reader(func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(data))), nil }),
		"env":    enforce.Env("TEST_LICENSE"),
	} {
		if e := mustNew(t, enforce.Options{License: src, Product: router, KeySet: k.ks}); !e.Allow("routing") {
			t.Errorf("%s: %+v", name, e.Status())
		}
	}
	if e := mustNew(t, enforce.Options{License: enforce.Env("TEST_UNSET_LICENSE"), Product: router, KeySet: k.ks}); e.Status().Reason != enforce.ReasonMissing {
		t.Error("an unset variable is license-missing")
	}
	if e := mustNew(t, enforce.Options{License: enforce.Bytes(nil), Product: router, KeySet: k.ks}); e.Status().Reason != enforce.ReasonMissing {
		t.Error("nil bytes are license-missing")
	}
}

// A state file that fails its check blocks (license-clock-rollback) and is not
// overwritten; a trusted backup put back is read at the next reload.
func TestTamperedStateThenRestored(t *testing.T) {
	k := newKit(t)
	o := enforce.Options{License: enforce.File(k.put("license.json", k.license(payload(licA, time.Now())))), Product: router,
		KeySet: k.ks, StatePath: k.path("state.json")}
	mustNew(t, o)
	good, _ := os.ReadFile(o.StatePath)
	bad := []byte(strings.Replace(string(good), `"latest_seen":"20`, `"latest_seen":"19`, 1)) // a hand edit
	if string(bad) == string(good) {
		t.Fatal("the edit did not apply")
	}
	os.WriteFile(o.StatePath, bad, 0o600)
	e := mustNew(t, o)
	if s := e.Status(); s.Reason != enforce.ReasonClockRollback || e.Serving() {
		t.Fatalf("%+v", s)
	}
	if now, _ := os.ReadFile(o.StatePath); string(now) != string(bad) {
		t.Fatal("a tampered state file was overwritten")
	}
	os.WriteFile(o.StatePath, good, 0o600)
	if s := e.Reload(); !s.Serving() {
		t.Fatalf("after the backup was restored: %+v", s)
	}
}

// A bundle revoking the license blocks it; grace never covers a revocation.
func TestRevokedByBundle(t *testing.T) {
	k := newKit(t)
	now := time.Now().UTC()
	o := enforce.Options{License: enforce.File(k.put("license.json", k.license(payload(licA, now)))), Product: router, KeySet: k.ks,
		Bundle: enforce.File(k.put("bundle.json", k.bundle(1, now))), FailClosedOnBundleError: true, StatePath: k.path("state.json")}
	e := mustNew(t, o)
	if s := e.Status(); !s.Serving() || s.BundleSequence == nil || *s.BundleSequence != 1 || s.BundleIssuedAt.IsZero() {
		t.Fatalf("%+v", s)
	}
	k.put("bundle.json", k.bundle(2, now, licA))
	if s := e.Reload(); s.Reason != enforce.ReasonRevoked || e.Allow("routing") {
		t.Fatalf("%+v", s)
	}
	k.remove("license.json")
	if s := e.Reload(); s.Serving() {
		t.Fatalf("deleting a revoked license gave grace: %+v", s)
	}
}

// A file changed between New and Run is a change: Run compares with what the last
// check saw, not with what it found when it started.
func TestChangeBeforeRunIsSeen(t *testing.T) {
	k := newKit(t)
	e := mustNew(t, enforce.Options{License: enforce.File(k.put("license.json", k.license(payload(licA, time.Now())))), Product: router,
		KeySet: k.ks, WatchInterval: 10 * time.Millisecond})
	k.remove("license.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	eventually(t, "the deletion to be seen", func() bool { return e.Status().State == enforce.StateGrace })
}
