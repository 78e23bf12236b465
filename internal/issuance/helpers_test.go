package issuance_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/verify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var (
	admin    = &entitlements.Staff{Email: "admin@metrum.test", Name: "Admin", Role: entitlements.RoleAdmin}
	maker    = &entitlements.Staff{Email: "maker@metrum.test", Name: "Maker", Role: entitlements.RoleIssuer}
	approver = &entitlements.Staff{Email: "checker@metrum.test", Name: "Checker", Role: entitlements.RoleApprover}
)

type env struct {
	svc    *issuance.Service
	store  *storage.Store
	keyDir string
}

// mustService returns a service over a fresh database, with every key a full
// lifecycle needs generated now (never committed): the router's license, revocation
// and lease keys, CoreSDK's license and revocation keys. Maker-checker is on.
func mustService(t *testing.T) *env {
	t.Helper()
	store := pgtest.NewStore(t)
	dir := t.TempDir()
	kek, err := signing.NewKEKFile(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	keyDir := filepath.Join(dir, "keys")
	svc := issuance.New(store, issuance.Config{Keys: signing.NewKeys(signing.NewFileBackend(keyDir, kek)), Issuer: "metrum",
		RenewURL: "https://licensing.metrum.test/v1/leases", MakerChecker: true, Changeover: 72 * time.Hour})
	for _, k := range []entitlements.KeyInput{
		{Product: "genai-smart-router", Alg: verify.AlgEdDSA, Purposes: []verify.Purpose{verify.PurposeLicense}},
		{Product: "genai-smart-router", Alg: verify.AlgEdDSA, Purposes: []verify.Purpose{verify.PurposeRevocation}},
		{Product: "genai-smart-router", Alg: verify.AlgEdDSA, Purposes: []verify.Purpose{verify.PurposeLease}},
		{Product: "coresdk", Alg: verify.AlgES256, Purposes: []verify.Purpose{verify.PurposeLicense}},
		{Product: "coresdk", Alg: verify.AlgES256, Purposes: []verify.Purpose{verify.PurposeRevocation}},
	} {
		if _, err := svc.GenerateKey(context.Background(), k, true, admin); err != nil {
			t.Fatal(err)
		}
	}
	return &env{svc: svc, store: store, keyDir: keyDir}
}

// mustKeySet exports the public key set to a file, as release engineering does.
func (e *env) mustKeySet(t *testing.T) (*verify.KeySet, string) {
	t.Helper()
	b, err := e.svc.PublicKeySet(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ks, err := verify.ParseKeySet(b)
	if err != nil || len(ks.Dropped) > 0 {
		t.Fatalf("exported key set: %v %v", err, ks.Dropped)
	}
	p := filepath.Join(t.TempDir(), "keyset.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return ks, p
}

// mustApproved creates a customer and an approved entitlement from a template.
func (e *env) mustApproved(t *testing.T, tmpl string, overrides ...entitlements.Overrides) *entitlements.Entitlement {
	t.Helper()
	ctx := context.Background()
	c := &entitlements.Customer{Name: "Acme Corp", Email: "ops@acme.test"}
	if err := e.svc.CreateCustomer(ctx, c, maker); err != nil {
		t.Fatal(err)
	}
	in := entitlements.EntitlementInput{CustomerID: c.ID, Template: tmpl, InstanceFingerprint: "host-1"}
	if len(overrides) > 0 {
		in.Overrides = overrides[0]
	}
	ent, err := e.svc.CreateEntitlement(ctx, in, maker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, ent.ID, approver); err != nil {
		t.Fatal(err)
	}
	return ent
}

// mustIssued creates, approves and issues a license from a template.
func (e *env) mustIssued(t *testing.T, tmpl string, overrides ...entitlements.Overrides) *entitlements.License {
	t.Helper()
	l, err := e.svc.Issue(context.Background(), e.mustApproved(t, tmpl, overrides...).ID, maker)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// mustSuccessor opens, approves and issues a renewal, replacement or top-up.
func (e *env) mustSuccessor(t *testing.T, in entitlements.SuccessorInput) *entitlements.License {
	t.Helper()
	ctx := context.Background()
	ent, err := e.svc.CreateSuccessor(ctx, in, maker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, ent.ID, approver); err != nil {
		t.Fatal(err)
	}
	l, err := e.svc.Issue(ctx, ent.ID, maker)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// check runs the verifier on a license file with the exported key set, at now, with
// an optional bundle; host-1 is the host fingerprint.
func (e *env) check(t *testing.T, file []byte, now time.Time, bundle []byte, o ...func(*verify.Options)) *verify.Result {
	t.Helper()
	ks, _ := e.mustKeySet(t)
	dir := t.TempDir()
	lp := filepath.Join(dir, "license")
	os.WriteFile(lp, file, 0o644)
	opts := verify.Options{LicensePath: lp, InstanceFingerprint: "host-1", KeySet: ks, Now: now}
	if bundle != nil {
		bp := filepath.Join(dir, "bundle.json")
		os.WriteFile(bp, bundle, 0o644)
		opts.Revocation, opts.BundlePath, opts.RequireCurrent, opts.FailClosed = verify.RevocationFile, bp, true, true
	}
	for _, f := range o {
		f(&opts)
	}
	return verify.Verify(opts)
}

func count(t *testing.T, e *env, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
