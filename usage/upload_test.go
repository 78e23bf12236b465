package usage_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/metrum/licensing/usage"
	"github.com/metrum/licensing/usage/usagehttp"
)

type issuerRig struct {
	fake *fakeIssuer
	up   usage.Uploader
}

func newIssuerRig(t *testing.T, c *clock, licenses ...string) *issuerRig {
	f := newFakeIssuer(t, "lease-token-1", licenses...)
	f.now = c.Now
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	up, err := usagehttp.New(srv.URL+"/v1/usage", "lease-token-1", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return &issuerRig{fake: f, up: up}
}

// hours counts n tokens in each of h hourly periods.
func hours(t *testing.T, r *usage.Recorder, c *clock, h int, n int64) {
	t.Helper()
	for i := 0; i < h; i++ {
		must(t, r.Consume(n))
		c.Add(time.Hour)
		must(t, r.Tick())
	}
}

// Online: reports go up, the issuer accepts them, the host drops them; a body whose
// answer was lost is sent again and counted as duplicates; nothing is counted twice.
func TestUploadAcceptsAndResends(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	rig := newIssuerRig(t, c, licA)
	r := mustOpen(t, dir, c, rig.up)
	defer r.Close()
	must(t, r.SetLicense(license(licA, -1, 0)))
	hours(t, r, c, 3, 10)
	must(t, r.Upload(context.Background()))
	if s := r.Status(); s.Pending != 0 || s.LastError != "" || s.LastUpload.IsZero() {
		t.Fatalf("%+v", s)
	}
	hours(t, r, c, 2, 5)
	rig.fake.loseAnswer = true
	if err := r.Upload(context.Background()); err == nil {
		t.Fatal("a lost answer counted as accepted")
	}
	if s := r.Status(); s.Pending != 2 {
		t.Fatalf("pending %d after a lost answer, want 2", s.Pending)
	}
	must(t, r.Upload(context.Background())) // the issuer answers 2 duplicates
	if got := rig.fake.tokens(licA); got != 40 {
		t.Fatalf("issuer counted %d tokens, want 40", got)
	}
	if s := r.Status(); s.Pending != 0 {
		t.Fatalf("pending %d", s.Pending)
	}
}

// More than one body's worth goes up in several bodies (of at most 1,000 reports;
// lowered to 10 here, so the test needs 25 reports rather than thousands).
func TestUploadManyBodies(t *testing.T) {
	defer usage.SetSplitReports(10)()
	dir, c := t.TempDir(), newClock(t0)
	rig := newIssuerRig(t, c, licA)
	r := mustOpen(t, dir, c, rig.up)
	defer r.Close()
	must(t, r.SetLicense(license(licA, -1, 0)))
	hours(t, r, c, 25, 1)
	must(t, r.Upload(context.Background()))
	if rig.fake.bodies != 3 || rig.fake.reports != 25 || r.Status().Pending != 0 {
		t.Fatalf("%d bodies, %d reports, %d pending", rig.fake.bodies, rig.fake.reports, r.Status().Pending)
	}
}

// Refusals that are not about the reports (401, 429, 503) keep every report, and the
// 429's Retry-After is read.
func TestUploadRefusedKeepsReports(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	rig := newIssuerRig(t, c, licA)
	r := mustOpen(t, dir, c, rig.up)
	defer r.Close()
	must(t, r.SetLicense(license(licA, -1, 0)))
	hours(t, r, c, 2, 3)
	rig.fake.fail, rig.fake.retryAfter = 429, "120"
	err := r.Upload(context.Background())
	var ue *usage.UploadError
	if !errors.As(err, &ue) || ue.Status != 429 || ue.RetryAfter != 2*time.Minute || r.Status().Pending != 2 {
		t.Fatalf("%v, pending %d", err, r.Status().Pending)
	}
	rig.fake.token = "rotated"
	if err := r.Upload(context.Background()); !errors.As(err, &ue) || ue.Status != 401 || r.Status().Pending != 2 {
		t.Fatalf("401: %v", err)
	}
	rig.fake.token = "lease-token-1"
	must(t, r.Upload(context.Background()))
}

// usage-invalid at report k: the reports before it were kept by the issuer and are
// dropped here; the rest stay for export and are not sent again.
func TestUploadInvalidKeepsTheRest(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	rig := newIssuerRig(t, c, licA)
	r := mustOpen(t, dir, c, rig.up)
	defer r.Close()
	must(t, r.SetLicense(license(licA, -1, 0)))
	hours(t, r, c, 2, 3)
	rig.fake.now = func() time.Time { return t0 } // the issuer's clock is behind: the 2nd ends "in the future"
	err := r.Upload(context.Background())
	var ue *usage.UploadError
	if !errors.As(err, &ue) || ue.Code != usage.CodeInvalid || ue.ReportIndex != 0 {
		t.Fatalf("%v", err)
	}
	if s := r.Status(); s.Pending != 2 {
		t.Fatalf("pending %d", s.Pending)
	}
	must(t, r.Upload(context.Background())) // not sent again by this recorder
	if rig.fake.bodies != 1 {
		t.Fatalf("%d bodies sent", rig.fake.bodies)
	}
	if bodies, n, err := usage.Export(dir, 0); err != nil || n != 2 || len(bodies) != 1 {
		t.Fatalf("export: %d %v", n, err)
	}
}

// usage-gap: the issuer lost reports it had accepted (restored from a backup). The
// host can't send them again (they were dropped when accepted), so it restarts the
// chain: a new instance_id and host key, its unaccepted reports signed again there.
func TestUploadGapRestartsChain(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	rig := newIssuerRig(t, c, licA)
	r := mustOpen(t, dir, c, rig.up)
	defer r.Close()
	must(t, r.SetLicense(license(licA, -1, 0)))
	hours(t, r, c, 3, 10)
	must(t, r.Upload(context.Background()))
	old := r.Status().InstanceID
	rig.fake.forget(2)
	hours(t, r, c, 2, 7)
	err := r.Upload(context.Background())
	var ue *usage.UploadError
	if !errors.As(err, &ue) || ue.Code != usage.CodeGap || ue.NextSeq != 2 {
		t.Fatalf("%v", err)
	}
	s := r.Status()
	if s.InstanceID == old || s.Pending != 2 {
		t.Fatalf("after the gap: %+v", s)
	}
	must(t, r.Upload(context.Background()))
	hours(t, r, c, 1, 1)
	must(t, r.Upload(context.Background()))
	// The issuer has seq 1 of the old chain and the new chain's 3 reports.
	if got := rig.fake.tokens(licA); got != 10+14+1 || rig.fake.chainCount() != 2 {
		t.Fatalf("issuer: %d tokens in %d chains", got, rig.fake.chainCount())
	}
}

// usage-fork: the host's folder was restored from an older copy, so it signs another
// report under a seq the issuer already holds. The chain restarts, and nothing the
// issuer refused is lost.
func TestUploadForkRestartsChain(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	rig := newIssuerRig(t, c, licA)
	r := mustOpen(t, dir, c, rig.up)
	must(t, r.SetLicense(license(licA, -1, 0)))
	hours(t, r, c, 1, 10)
	must(t, r.Upload(context.Background()))
	must(t, r.CloseForTest())
	backup := t.TempDir()
	copyDir(t, dir, backup)

	r = mustOpen(t, dir, c, rig.up)
	must(t, r.SetLicense(license(licA, -1, 0)))
	hours(t, r, c, 1, 5) // seq 2 with 5 tokens, accepted
	must(t, r.Upload(context.Background()))
	must(t, r.CloseForTest())

	r = mustOpen(t, backup, c, rig.up) // the restored copy signs another seq 2
	defer r.Close()
	must(t, r.SetLicense(license(licA, -1, 0)))
	hours(t, r, c, 1, 8)
	err := r.Upload(context.Background())
	var ue *usage.UploadError
	if !errors.As(err, &ue) || ue.Code != usage.CodeFork {
		t.Fatalf("%v", err)
	}
	must(t, r.Upload(context.Background()))
	if got := rig.fake.tokens(licA); got != 10+5+8 || rig.fake.chainCount() != 2 {
		t.Fatalf("issuer: %d tokens in %d chains", got, rig.fake.chainCount())
	}
}

// Reports of a superseded license go up with the successor's lease token; those of an
// unrelated license are not sent with it.
func TestUploadLineage(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	rig := newIssuerRig(t, c, licA, licB)
	r := mustOpen(t, dir, c, rig.up)
	defer r.Close()
	must(t, r.SetLicense(license(licA, -1, 0)))
	hours(t, r, c, 1, 10)
	b := license(licB, -1, 0)
	b.Supersedes = licA
	must(t, r.SetLicense(b))
	hours(t, r, c, 1, 3)
	must(t, r.Upload(context.Background()))
	if rig.fake.tokens(licA) != 10 || rig.fake.tokens(licB) != 3 || r.Status().Pending != 0 {
		t.Fatalf("A %d, B %d, pending %d", rig.fake.tokens(licA), rig.fake.tokens(licB), r.Status().Pending)
	}
	const licC = "lic_01HZY3QK8Y0000000000000005"
	must(t, r.SetLicense(license(licC, -1, 0)))
	hours(t, r, c, 1, 1)
	must(t, r.SetLicense(b)) // back to B: C is not B's predecessor
	must(t, r.Upload(context.Background()))
	if rig.fake.tokens(licC) != 0 || r.Status().Pending == 0 {
		t.Fatal("another license's reports went up with this lease token")
	}
}

// The client refuses a lease token over plain HTTP to anywhere but loopback.
func TestClientURL(t *testing.T) {
	for _, u := range []string{"http://issuer.example/v1/usage", "ftp://x/", "https:///v1/usage"} {
		if _, err := usagehttp.New(u, "t", nil); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	for _, u := range []string{"https://issuer.example/v1/usage", "http://127.0.0.1:8080/v1/usage"} {
		if _, err := usagehttp.New(u, "t", nil); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if _, err := usagehttp.New("https://issuer.example/v1/usage", "", nil); err == nil {
		t.Error("no token accepted")
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	must(t, filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, fi.Mode())
	}))
}

// Shutdown closes the open period and sends it before letting go of the folder.
func TestShutdownUploads(t *testing.T) {
	dir, c := t.TempDir(), newClock(t0)
	rig := newIssuerRig(t, c, licA)
	r := mustOpen(t, dir, c, rig.up)
	must(t, r.SetLicense(license(licA, -1, 0)))
	must(t, r.Consume(9))
	c.Add(10 * time.Minute)
	must(t, r.Shutdown(context.Background()))
	if rig.fake.tokens(licA) != 9 {
		t.Fatalf("issuer has %d tokens", rig.fake.tokens(licA))
	}
	if err := r.Consume(1); !errors.Is(err, usage.ErrNoLicense) {
		t.Fatalf("counting after Shutdown: %v", err)
	}
	mustOpen(t, dir, c, nil).Close() // the folder was released
}
