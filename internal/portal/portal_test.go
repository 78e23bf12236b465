package portal_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var (
	admin   = &entitlements.Staff{Email: "admin@m.test", Role: entitlements.RoleAdmin}
	maker   = &entitlements.Staff{Email: "maker@m.test", Role: entitlements.RoleIssuer}
	checker = &entitlements.Staff{Email: "checker@m.test", Role: entitlements.RoleApprover}
)

type env struct {
	iss    *issuance.Service
	portal *portal.Service
}

func mustEnv(t *testing.T) *env {
	t.Helper()
	store := pgtest.NewStore(t)
	kek, err := signing.NewKEKFile(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	iss := issuance.New(store, issuance.Config{Keys: signing.NewKeys(signing.NewFileBackend(filepath.Join(t.TempDir(), "keys"), kek)),
		Issuer: "metrum", RenewURL: "https://licensing.metrum.test/v1/leases", MakerChecker: true})
	if _, err := iss.GenerateKey(context.Background(), entitlements.KeyInput{Product: "genai-smart-router", Alg: verify.AlgEdDSA,
		Purposes: []verify.Purpose{verify.PurposeLicense}}, true, admin); err != nil {
		t.Fatal(err)
	}
	return &env{iss: iss, portal: portal.New(store, portal.Config{})}
}

// customer makes a customer with one enterprise license, and its principal.
func (e *env) customer(t *testing.T, name string) (*entitlements.Principal, *entitlements.License) {
	t.Helper()
	ctx := context.Background()
	c := &entitlements.Customer{Name: name}
	if err := e.iss.CreateCustomer(ctx, c, maker); err != nil {
		t.Fatal(err)
	}
	ent, err := e.iss.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: c.ID, Template: "enterprise-annual"}, maker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.iss.Approve(ctx, ent.ID, checker); err != nil {
		t.Fatal(err)
	}
	l, err := e.iss.Issue(ctx, ent.ID, maker)
	if err != nil {
		t.Fatal(err)
	}
	return &entitlements.Principal{CustomerID: c.ID, Kind: entitlements.PrincipalCustomerToken, Actor: "ctk_test"}, l
}

// TestAForeignLicenseAnswersLikeAMissingOne: every read by license ID is scoped by the
// principal's customer, and another customer's license is the same not-found as a
// license that does not exist, for reads and downloads alike.
func TestAForeignLicenseAnswersLikeAMissingOne(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	a, la := e.customer(t, "Acme")
	b, _ := e.customer(t, "Globex")
	if l, err := e.portal.License(ctx, a, la.ID); err != nil || l.ID != la.ID {
		t.Fatalf("own license: %v", err)
	}
	_, foreign := e.portal.License(ctx, b, la.ID)
	_, missing := e.portal.License(ctx, b, "lic_01HZY3QK8Y0000000000000001")
	if entitlements.ErrorCode(foreign) != entitlements.ENOTFOUND || entitlements.ErrorCode(missing) != entitlements.ENOTFOUND {
		t.Fatalf("foreign %v, missing %v", foreign, missing)
	}
	if _, err := e.portal.Download(ctx, b, la.ID, entitlements.WhatFile); entitlements.ErrorCode(err) != entitlements.ENOTFOUND {
		t.Fatalf("foreign download: %v", err)
	}
	list, _, err := e.portal.Licenses(ctx, b, "", 100)
	if err != nil || len(list) != 1 || list[0].ID == la.ID {
		t.Fatalf("Globex's list: %v %v", list, err)
	}
	advice, err := e.portal.InstallAdvice(ctx, b)
	if err != nil || len(advice) != 1 || advice[0].Install == nil || advice[0].Install.CustomerID != b.CustomerID {
		t.Fatalf("Globex's advice: %+v %v", advice, err)
	}
}

// TestCursorsAreOpaqueAndChecked: a cursor the API did not make is a clear refusal.
func TestCursorsAreOpaqueAndChecked(t *testing.T) {
	e := mustEnv(t)
	a, _ := e.customer(t, "Acme")
	for _, c := range []string{"garbage", "MTIz", "%%%"} {
		if _, _, err := e.portal.Licenses(context.Background(), a, c, 10); entitlements.ErrorCode(err) != entitlements.EINVALID {
			t.Errorf("cursor %q: %v", c, err)
		}
	}
}

// TestDownloadsAreRecordedFirst: a delivered file leaves a record naming the
// principal.
func TestDownloadsAreRecordedFirst(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	a, la := e.customer(t, "Acme")
	f, err := e.portal.Download(ctx, a, la.ID, entitlements.WhatFile)
	if err != nil || string(f.Bytes) != string(la.File) {
		t.Fatalf("download: %v", err)
	}
	got, err := e.iss.ListDownloads(ctx, la.ID, 0, 10, admin)
	if err != nil || len(got) != 1 || got[0].Actor != "ctk_test" || got[0].ActorKind != entitlements.PrincipalCustomerToken {
		t.Fatalf("deliveries: %+v %v", got, err)
	}
}
