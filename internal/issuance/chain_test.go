package issuance_test

import (
	"context"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/verify"
)

// chainOf issues a license, renews it and tops the renewal up: the chargeback story
// of the revocation issue (renew → top up → revoke the top-up).
func chainOf(t *testing.T, e *env) (orig, renewal, topUp *entitlements.License) {
	t.Helper()
	orig = e.mustIssued(t, "enterprise-annual")
	renewal = e.mustSuccessor(t, entitlements.SuccessorInput{Kind: entitlements.KindRenewal, LicenseID: orig.ID})
	topUp = e.mustSuccessor(t, entitlements.SuccessorInput{Kind: entitlements.KindTopUp, LicenseID: renewal.ID, Template: "credit-pack-5m"})
	return orig, renewal, topUp
}

func mustGet(t *testing.T, e *env, id string) *entitlements.License {
	t.Helper()
	l, err := e.store.GetLicense(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRevokingATopUpRevokesThePredecessorsInTheirChangeover: the chargeback of a
// top-up blocks, at once, the renewal and the original license, which would
// otherwise keep verifying for the 72 h changeover; the preview names both; the audit
// trail says each was revoked with the top-up.
func TestRevokingATopUpRevokesThePredecessorsInTheirChangeover(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	orig, renewal, topUp := chainOf(t, e)
	_, blocked, err := e.svc.StatusChainPreview(ctx, topUp.ID, entitlements.ActionRevoke, approver)
	if err != nil || len(blocked) != 2 || blocked[0].ID != renewal.ID || blocked[1].ID != orig.ID {
		t.Fatalf("preview: %v %v", blocked, err)
	}
	res, err := e.svc.ChangeStatusWith(ctx, entitlements.StatusChange{LicenseID: topUp.ID, Action: entitlements.ActionRevoke, Reason: "chargeback"}, approver)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Chained) != 2 {
		t.Fatalf("chained %d licenses, want 2", len(res.Chained))
	}
	now := time.Now().Add(time.Minute) // well inside the changeover
	bundle := publish(t, e, "genai-smart-router")
	for _, l := range []*entitlements.License{orig, renewal, topUp} {
		got := mustGet(t, e, l.ID)
		if got.Status != entitlements.LicenseRevoked || got.StatusEffectiveAt.After(time.Now()) {
			t.Fatalf("%s: %s from %s, want revoked at once", l.SKU, got.Status, got.StatusEffectiveAt)
		}
		wantReason(t, e.check(t, l.File, now, bundle), verify.StatusBlocked, verify.ReasonRevoked)
	}
	if got := mustGet(t, e, renewal.ID); got.BlockedWith != topUp.ID {
		t.Fatalf("renewal blocked with %q, want %s", got.BlockedWith, topUp.ID)
	}
	if n := count(t, e, `SELECT count(*) FROM audit_events WHERE action = 'license.revoke' AND details->>'with' = $1`, topUp.ID); n != 2 {
		t.Fatalf("%d chained audit events, want 2", n)
	}
}

// TestRevokingOnlyTheTopUpSparesThePredecessorsUntilTheirChangeoverEnds: --only
// revokes the top-up alone; the renewal keeps working until its changeover ends, and
// the state says so.
func TestRevokingOnlyTheTopUpSparesThePredecessorsUntilTheirChangeoverEnds(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	_, renewal, topUp := chainOf(t, e)
	res, err := e.svc.ChangeStatusWith(ctx, entitlements.StatusChange{LicenseID: topUp.ID, Action: entitlements.ActionRevoke, Reason: "chargeback", Only: true}, approver)
	if err != nil || len(res.Chained) != 0 {
		t.Fatalf("only: chained %v, %v", res, err)
	}
	got := mustGet(t, e, renewal.ID)
	now := time.Now()
	st := got.StateAt(now)
	if st.Phase != entitlements.PhaseChangeover || !st.Serving || st.Status != entitlements.LicenseSuperseded {
		t.Fatalf("renewal after revoking only the top-up: %+v", st)
	}
	bundle := publish(t, e, "genai-smart-router")
	wantReason(t, e.check(t, renewal.File, now.Add(time.Minute), bundle), verify.StatusValid, "")
	wantReason(t, e.check(t, renewal.File, got.StatusEffectiveAt.Add(time.Second), bundle), verify.StatusBlocked, verify.ReasonSuperseded)
}

// TestSuspendThenReinstateATopUpPutsThePredecessorBack: a suspension chains the same
// way, and reinstating the top-up returns the renewal to superseded by it.
func TestSuspendThenReinstateATopUpPutsThePredecessorBack(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	_, renewal, topUp := chainOf(t, e)
	if _, err := e.svc.ChangeStatus(ctx, topUp.ID, entitlements.ActionSuspend, "dispute", time.Time{}, approver); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, e, renewal.ID); got.Status != entitlements.LicenseSuspended || got.BlockedWith != topUp.ID {
		t.Fatalf("renewal after suspending the top-up: %s with %q", got.Status, got.BlockedWith)
	}
	_, back, err := e.svc.StatusChainPreview(ctx, topUp.ID, entitlements.ActionReinstate, approver)
	if err != nil || len(back) != 2 {
		t.Fatalf("reinstate preview: %v %v", back, err)
	}
	res, err := e.svc.ChangeStatusWith(ctx, entitlements.StatusChange{LicenseID: topUp.ID, Action: entitlements.ActionReinstate, Reason: "won"}, approver)
	if err != nil || len(res.Chained) != 2 {
		t.Fatalf("reinstate: %v %v", res, err)
	}
	got := mustGet(t, e, renewal.ID)
	if got.Status != entitlements.LicenseSuperseded || got.SupersededBy != topUp.ID || got.BlockedWith != "" {
		t.Fatalf("renewal after reinstating the top-up: %s by %s with %q", got.Status, got.SupersededBy, got.BlockedWith)
	}
	if mustGet(t, e, topUp.ID).Status != entitlements.LicenseActive {
		t.Fatal("top-up not active after reinstate")
	}
}

// TestRestoreThePreviousLicenseAfterARefund: the refunded top-up is suspended with
// its chain; restoring the previous license makes the renewal active (the next bundle
// no longer lists it), its own predecessor superseded by it again, and lets it be
// topped up anew. Only approvers may; a revoked predecessor can't come back.
func TestRestoreThePreviousLicenseAfterARefund(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	orig, renewal, topUp := chainOf(t, e)
	if _, err := e.svc.RestorePrevious(ctx, topUp.ID, "refund", approver); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
		t.Fatalf("restore while the top-up is active: %v", err)
	}
	if _, err := e.svc.ChangeStatus(ctx, topUp.ID, entitlements.ActionSuspend, "refunded", time.Time{}, issuance.SelfService); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RestorePrevious(ctx, topUp.ID, "refund", maker); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Fatalf("restore by an issuer: %v", err)
	}
	if _, err := e.svc.RestorePrevious(ctx, topUp.ID, "", approver); entitlements.ErrorCode(err) != entitlements.EINVALID {
		t.Fatalf("restore without a reason: %v", err)
	}
	l, err := e.svc.RestorePrevious(ctx, topUp.ID, "refund: the base license was paid", approver)
	if err != nil {
		t.Fatal(err)
	}
	if l.ID != renewal.ID || l.Status != entitlements.LicenseActive || l.SupersededBy != "" {
		t.Fatalf("restored: %+v", l)
	}
	if got := mustGet(t, e, orig.ID); got.Status != entitlements.LicenseSuperseded || got.SupersededBy != renewal.ID {
		t.Fatalf("original after the restore: %s by %s", got.Status, got.SupersededBy)
	}
	now := time.Now().Add(time.Minute)
	bundle := publish(t, e, "genai-smart-router")
	wantReason(t, e.check(t, renewal.File, now, bundle), verify.StatusValid, "")
	wantReason(t, e.check(t, topUp.File, now, bundle), verify.StatusBlocked, verify.ReasonSuspended)
	if _, err := e.svc.RestorePrevious(ctx, topUp.ID, "again", approver); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
		t.Fatalf("second restore: %v", err)
	}
	if n := count(t, e, `SELECT count(*) FROM audit_events WHERE action = 'license.restore' AND subject = $1`, renewal.ID); n != 1 {
		t.Fatalf("%d restore audit events", n)
	}
	// The restored license can be topped up again (the lifted successor no longer
	// holds its place).
	again := e.mustSuccessor(t, entitlements.SuccessorInput{Kind: entitlements.KindTopUp, LicenseID: renewal.ID, Template: "credit-pack-25m"})
	if again.Supersedes != renewal.ID {
		t.Fatalf("second top-up supersedes %s", again.Supersedes)
	}

	// A revoked predecessor stays revoked: a revocation is final.
	_, r2, t2 := chainOf(t, e)
	if _, err := e.svc.ChangeStatus(ctx, t2.ID, entitlements.ActionRevoke, "fraud", time.Time{}, approver); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RestorePrevious(ctx, t2.ID, "refund", approver); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
		t.Fatalf("restoring a revoked predecessor: %v", err)
	}
	if mustGet(t, e, r2.ID).Status != entitlements.LicenseRevoked {
		t.Fatal("a revoked predecessor changed")
	}
}
