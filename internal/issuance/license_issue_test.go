package issuance_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

func TestIssueEndToEndVerifies(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	ent := e.mustApproved(t, "enterprise-annual")

	lic, err := e.svc.Issue(ctx, ent.ID, maker)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := e.store.GetLicense(ctx, lic.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.File) != string(lic.File) {
		t.Fatal("stored bytes differ from the signed bytes")
	}
	ks, _ := e.mustKeySet(t)
	path := filepath.Join(t.TempDir(), "license.json")
	if err := os.WriteFile(path, stored.File, 0o644); err != nil {
		t.Fatal(err)
	}
	r := verify.Verify(verify.Options{LicensePath: path, Product: "genai-smart-router", InstanceFingerprint: "host-1",
		Features: []string{"routing"}, KeySet: ks, Now: ent.StartsAt.Add(3600e9)})
	if r.Status != verify.StatusValid {
		t.Fatalf("status %s reason %s (%s)", r.Status, r.Reason, r.Detail)
	}
	if r.LicenseID != lic.ID || r.SKU != "enterprise-annual" || r.CustomerID != ent.CustomerID {
		t.Fatalf("fields: %+v", r)
	}
	if got := count(t, e, `SELECT count(*) FROM audit_events WHERE action = 'license.issue' AND subject = $1`, lic.ID); got != 1 {
		t.Fatalf("audit events for the license: %d", got)
	}
	if got, _ := e.store.GetEntitlement(ctx, ent.ID); got.State != entitlements.StateIssued {
		t.Fatalf("entitlement state %s", got.State)
	}

	// One byte changed in the payload: refused.
	tampered := strings.Replace(string(stored.File), `"payload":"ey`, `"payload":"ez`, 1)
	if tampered == string(stored.File) {
		t.Fatal("tamper did not change the file")
	}
	if err := os.WriteFile(path, []byte(tampered), 0o644); err != nil {
		t.Fatal(err)
	}
	r = verify.Verify(verify.Options{LicensePath: path, KeySet: ks, Now: ent.StartsAt.Add(3600e9)})
	if r.Status != verify.StatusBlocked || r.Reason != verify.ReasonInvalid {
		t.Fatalf("tampered file: status %s reason %s", r.Status, r.Reason)
	}
}

func TestIssueTwiceConflicts(t *testing.T) {
	e := mustService(t)
	ent := e.mustApproved(t, "enterprise-annual")
	if _, err := e.svc.Issue(context.Background(), ent.ID, maker); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Issue(context.Background(), ent.ID, maker)
	if entitlements.ErrorCode(err) != entitlements.ECONFLICT {
		t.Fatalf("second issue: %v", err)
	}
}

func TestIssueFailureLeavesNothing(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	ent := e.mustApproved(t, "enterprise-annual")
	auditBefore := count(t, e, `SELECT count(*) FROM audit_events`)

	// The audit insert, the last write of the issuing transaction, fails.
	_, err := e.store.Pool().Exec(ctx, `
		CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$;
		CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION fail_audit();`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Issue(ctx, ent.ID, maker); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("issue with a failing audit: %v", err)
	}
	if n := count(t, e, `SELECT count(*) FROM licenses`); n != 0 {
		t.Fatalf("%d license rows left behind", n)
	}
	if n := count(t, e, `SELECT count(*) FROM audit_events`); n != auditBefore {
		t.Fatalf("audit events changed: %d → %d", auditBefore, n)
	}
	got, _ := e.store.GetEntitlement(ctx, ent.ID)
	if got.State != entitlements.StateApproved {
		t.Fatalf("entitlement state %s, want approved", got.State)
	}
	// Once the fault is gone the same entitlement issues normally.
	if _, err := e.store.Pool().Exec(ctx, `DROP TRIGGER fail_audit ON audit_events`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Issue(ctx, ent.ID, maker); err != nil {
		t.Fatal(err)
	}
}

func TestUnapprovedAndMakerChecker(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	c := &entitlements.Customer{Name: "Beta Ltd"}
	if err := e.svc.CreateCustomer(ctx, c, maker); err != nil {
		t.Fatal(err)
	}
	ent, err := e.svc.CreateEntitlement(ctx, issuanceInput(c.ID), approver)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Issue(ctx, ent.ID, maker); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
		t.Fatalf("issuing a draft: %v", err)
	}
	if _, err := e.svc.Approve(ctx, ent.ID, approver); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := e.svc.Approve(ctx, ent.ID, maker); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Fatalf("approval by an issuer: %v", err)
	}
	if _, err := e.svc.Approve(ctx, ent.ID, admin); err != nil {
		t.Fatal(err)
	}
}
