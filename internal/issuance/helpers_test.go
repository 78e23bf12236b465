package issuance_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/internal/signing"
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
	keyDir string
}

// mustService returns a service over a fresh database, with a license key for the
// router generated now (never committed), and maker-checker on.
func mustService(t *testing.T) *env {
	t.Helper()
	store := pgtest.NewStore(t)
	dir := t.TempDir()
	kek, err := signing.NewKEKFile(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	keyDir := filepath.Join(dir, "keys")
	svc := &issuance.Service{Store: store, Keys: signing.NewKeys(signing.NewFileBackend(keyDir, kek)), Issuer: "metrum",
		RenewURL: "https://licensing.metrum.test/v1/leases", MakerChecker: true}
	if _, err := svc.GenerateKey(context.Background(), issuance.KeyInput{Product: "genai-smart-router", Alg: verify.AlgEdDSA,
		Purposes: []verify.Purpose{verify.PurposeLicense}}, true, admin); err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, keyDir: keyDir}
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
func (e *env) mustApproved(t *testing.T, tmpl string) *entitlements.Entitlement {
	t.Helper()
	ctx := context.Background()
	c := &entitlements.Customer{Name: "Acme Corp", Email: "ops@acme.test"}
	if err := e.svc.CreateCustomer(ctx, c, maker); err != nil {
		t.Fatal(err)
	}
	ent, err := e.svc.CreateEntitlement(ctx, issuance.EntitlementInput{CustomerID: c.ID, Template: tmpl, InstanceFingerprint: "host-1"}, maker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, ent.ID, approver); err != nil {
		t.Fatal(err)
	}
	return ent
}

func count(t *testing.T, e *env, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.svc.Store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
