package issuance_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

// TestKeyNotAfterStopsSigningAndOnlyMovesEarlier: a key past its not_after signs
// nothing more, the exported set carries the time, and what it signed before still
// verifies.
func TestKeyNotAfterStopsSigningAndOnlyMovesEarlier(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	before := e.mustIssued(t, "enterprise-annual")
	kid := before.KeyID
	soon := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := e.svc.SetKeyNotAfter(ctx, kid, soon, admin); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetKeyNotAfter(ctx, kid, soon.Add(time.Hour), admin); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
		t.Fatalf("moving not_after later: %v", err)
	}
	if err := e.svc.SetKeyNotAfter(ctx, kid, soon, maker); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Fatalf("an issuer set not_after: %v", err)
	}
	ks, _ := e.mustKeySet(t)
	if k := ks.Lookup(kid); k == nil || !k.NotAfter.Equal(soon) {
		t.Fatalf("exported key set lacks the not_after: %+v", k)
	}
	// The suspected compromise was when that license was issued (already past): the
	// key stops signing at once; documents it signed until then stay valid.
	if err := e.svc.SetKeyNotAfter(ctx, kid, before.IssuedAt, admin); err != nil {
		t.Fatal(err)
	}
	ent := e.mustApproved(t, "enterprise-annual")
	_, err := e.svc.Issue(ctx, ent.ID, maker)
	if entitlements.ErrorCode(err) != entitlements.ECONFLICT || !strings.Contains(err.Error(), "no active license signing key") {
		t.Fatalf("issued with a key past its not_after: %v", err)
	}
	wantReason(t, e.check(t, before.File, before.IssuedAt.Add(time.Minute), nil), verify.StatusValid, "")
	// A key whose not_after is earlier than a document's issue time rejects it.
	if err := e.svc.SetKeyNotAfter(ctx, kid, before.IssuedAt.Add(-time.Second), admin); err != nil {
		t.Fatal(err)
	}
	wantReason(t, e.check(t, before.File, before.IssuedAt.Add(time.Minute), nil), verify.StatusBlocked, verify.ReasonInvalid)
	// A replacement key for the slot, and issuing resumes.
	if _, err := e.svc.GenerateKey(ctx, entitlements.KeyInput{Product: "genai-smart-router", Alg: verify.AlgEdDSA,
		Purposes: []verify.Purpose{verify.PurposeLicense}}, true, admin); err != nil {
		t.Fatal(err)
	}
	if l, err := e.svc.Issue(ctx, ent.ID, maker); err != nil || l.KeyID == kid {
		t.Fatalf("after the replacement key: %v", err)
	}
}

// TestReplacementCarriesCorrectedCustomerData: a name corrected on the customer
// reaches customers only through a replacement, which keeps everything else.
func TestReplacementCarriesCorrectedCustomerData(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	old := e.mustIssued(t, "enterprise-annual")
	c, err := e.store.GetCustomer(ctx, old.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	c.Name = "Acme Corporation GmbH"
	if err := e.svc.UpdateCustomer(ctx, c, maker); err != nil {
		t.Fatal(err)
	}
	repl := e.mustSuccessor(t, entitlements.SuccessorInput{Kind: entitlements.KindReplacement, LicenseID: old.ID})
	r := e.check(t, repl.File, repl.IssuedAt.Add(time.Minute), nil)
	wantReason(t, r, verify.StatusValid, "")
	if r.License.CustomerName != "Acme Corporation GmbH" || r.License.CustomerID != old.CustomerID {
		t.Fatalf("replacement names %q (%s)", r.License.CustomerName, r.License.CustomerID)
	}
	if !repl.ExpiresAt.Equal(old.ExpiresAt) || repl.SKU != old.SKU || repl.TemplateVersion != old.TemplateVersion {
		t.Fatalf("replacement changed terms: %+v", repl)
	}
	if o := e.check(t, old.File, repl.IssuedAt, nil); o.License.CustomerName != "Acme Corp" {
		t.Fatalf("the old file changed: %q", o.License.CustomerName)
	}
}

// TestFailedKeyRecordLeavesNoKeyFile: when the key's record can't be inserted, the key
// file generation made is removed: no orphaned private key that nothing records.
func TestFailedKeyRecordLeavesNoKeyFile(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	before, _ := os.ReadDir(e.keyDir)
	if _, err := e.store.Pool().Exec(ctx, `CREATE FUNCTION refuse_key() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
		CREATE TRIGGER refuse_key BEFORE INSERT ON signing_keys FOR EACH ROW EXECUTE FUNCTION refuse_key()`); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.GenerateKey(ctx, entitlements.KeyInput{Product: "genai-smart-router", Alg: verify.AlgEdDSA,
		Purposes: []verify.Purpose{verify.PurposeLicense}}, false, admin)
	if err == nil {
		t.Fatal("the key was recorded despite the trigger")
	}
	after, _ := os.ReadDir(e.keyDir)
	if len(after) != len(before) {
		t.Fatalf("key files: %d before, %d after a failed record", len(before), len(after))
	}
}

// TestNoActorIsRefusedNotAPanic: every decision without an actor is a 403.
func TestNoActorIsRefusedNotAPanic(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	ent := e.mustApproved(t, "enterprise-annual")
	if _, err := e.svc.Approve(ctx, ent.ID, nil); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Fatalf("approve with no actor: %v", err)
	}
	if _, err := e.svc.Reject(ctx, ent.ID, "no", nil); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Fatalf("reject with no actor: %v", err)
	}
}

// TestStatementsAreBounded: the issuer's connections carry a statement timeout.
func TestStatementsAreBounded(t *testing.T) {
	e := mustService(t)
	var v string
	if err := e.store.Pool().QueryRow(context.Background(), `SHOW statement_timeout`).Scan(&v); err != nil || v != "30s" {
		t.Fatalf("statement_timeout %q %v", v, err)
	}
}
