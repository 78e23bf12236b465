package issuance_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
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
	if _, err := e.svc.GenerateKey(ctx, issuance.KeyInput{Product: "genai-smart-router", Alg: verify.AlgEdDSA,
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
	c, err := e.svc.Store.GetCustomer(ctx, old.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	c.Name = "Acme Corporation GmbH"
	if err := e.svc.UpdateCustomer(ctx, c, maker); err != nil {
		t.Fatal(err)
	}
	repl := e.mustSuccessor(t, issuance.SuccessorInput{Kind: entitlements.KindReplacement, LicenseID: old.ID})
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
