package issuance_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/verify"
)

func publish(t *testing.T, e *env, product string) []byte {
	t.Helper()
	b, err := e.svc.PublishBundle(context.Background(), product, approver)
	if err != nil {
		t.Fatal(err)
	}
	return b.File
}

func wantReason(t *testing.T, r *verify.Result, status, reason string) {
	t.Helper()
	if r.Status != status || r.Reason != reason {
		t.Fatalf("got %s/%q (%s), want %s/%q", r.Status, r.Reason, r.Detail, status, reason)
	}
}

func TestRenewalSupersedesAfterTheChangeover(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	old := e.mustIssued(t, "enterprise-annual")
	renewed := e.mustSuccessor(t, entitlements.SuccessorInput{Kind: entitlements.KindRenewal, LicenseID: old.ID})

	if renewed.ID == old.ID || renewed.Supersedes != old.ID || renewed.SKU != "enterprise-annual" {
		t.Fatalf("renewal: %+v", renewed)
	}
	if want := old.ExpiresAt.Add(365 * 24 * time.Hour); !renewed.ExpiresAt.Equal(want) {
		t.Fatalf("renewal ends %s, want %s", renewed.ExpiresAt, want)
	}
	got, _ := e.store.GetLicense(ctx, old.ID)
	wantEff := renewed.IssuedAt.Add(72 * time.Hour)
	if got.Status != entitlements.LicenseSuperseded || got.SupersededBy != renewed.ID || !got.StatusEffectiveAt.Equal(wantEff) {
		t.Fatalf("old license after renewal: %s by %s from %s, want from %s", got.Status, got.SupersededBy, got.StatusEffectiveAt, wantEff)
	}
	bundle := publish(t, e, "genai-smart-router")
	now := renewed.IssuedAt.Add(time.Hour)
	// Within the changeover the old license still serves (listed, not yet effective)…
	r := e.check(t, old.File, now, bundle)
	wantReason(t, r, verify.StatusValid, "")
	if !slices.ContainsFunc(r.Warnings, func(w string) bool { return contains(w, "superseded from") }) {
		t.Fatalf("no warning about the coming supersession: %v", r.Warnings)
	}
	// …and after it, it is superseded; the renewal is valid throughout.
	wantReason(t, e.check(t, old.File, wantEff.Add(time.Second), bundle), verify.StatusBlocked, verify.ReasonSuperseded)
	wantReason(t, e.check(t, renewed.File, now, bundle), verify.StatusValid, "")
	// Revocation wins over a supersession still in its changeover: it ends at once.
	if _, err := e.svc.ChangeStatus(ctx, old.ID, entitlements.ActionRevoke, "fraud", time.Time{}, approver); err != nil {
		t.Fatal(err)
	}
	r = e.check(t, old.File, now, publish(t, e, "genai-smart-router"))
	wantReason(t, r, verify.StatusBlocked, verify.ReasonRevoked)
	if _, err := e.svc.ChangeStatus(ctx, old.ID, entitlements.ActionSuspend, "x", time.Time{}, approver); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
		t.Fatalf("suspending a revoked license: %v", err)
	}
	// A second successor of the superseded license is refused.
	if _, err := e.svc.CreateSuccessor(ctx, entitlements.SuccessorInput{Kind: entitlements.KindRenewal, LicenseID: old.ID}, maker); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
		t.Fatalf("renewing a superseded license: %v", err)
	}
}

func TestReplacementWithNewInstanceScopeAndRotatedKey(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	old := e.mustIssued(t, "enterprise-annual")
	// Rotate the router's license key: standby, then rotate.
	next, err := e.svc.GenerateKey(ctx, entitlements.KeyInput{Product: "genai-smart-router", Alg: verify.AlgES256, Purposes: []verify.Purpose{verify.PurposeLicense}}, false, admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.RotateKey(ctx, "genai-smart-router", verify.PurposeLicense, admin); err != nil {
		t.Fatal(err)
	}
	host2, zero := "host-2", time.Duration(0)
	repl := e.mustSuccessor(t, entitlements.SuccessorInput{Kind: entitlements.KindReplacement, LicenseID: old.ID,
		InstanceFingerprint: &host2, Changeover: &zero})
	if repl.KeyID != next.KID || repl.KeyID == old.KeyID {
		t.Fatalf("replacement signed by %s, want the rotated key %s", repl.KeyID, next.KID)
	}
	if !repl.ExpiresAt.Equal(old.ExpiresAt) || !repl.NotBefore.Equal(old.NotBefore) || repl.Terms.InstanceFingerprint != "host-2" {
		t.Fatalf("replacement terms: %s–%s on %q", repl.NotBefore, repl.ExpiresAt, repl.Terms.InstanceFingerprint)
	}
	now := repl.IssuedAt.Add(time.Minute)
	bundle := publish(t, e, "genai-smart-router")
	onHost2 := func(o *verify.Options) { o.InstanceFingerprint = "host-2" }
	wantReason(t, e.check(t, repl.File, now, bundle, onHost2), verify.StatusValid, "")
	wantReason(t, e.check(t, repl.File, now, bundle), verify.StatusBlocked, verify.ReasonInstanceMismatch)
	// Changeover 0: the old license is superseded at once (the old key still verifies it).
	wantReason(t, e.check(t, old.File, now, bundle), verify.StatusBlocked, verify.ReasonSuperseded)
	wantReason(t, e.check(t, old.File, now, nil), verify.StatusValid, "")
}

func TestTopUpKeepsTermsAndSetsTheBudget(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	old := e.mustIssued(t, "enterprise-annual", entitlements.Overrides{Features: []string{"pii_filtering", "routing"},
		Limits: map[string]int64{"max_instances": 7}})
	if _, err := e.svc.CreateSuccessor(ctx, entitlements.SuccessorInput{Kind: entitlements.KindTopUp, LicenseID: old.ID, Template: "enterprise-annual"}, maker); entitlements.ErrorCode(err) != entitlements.EINVALID {
		t.Fatalf("top-up with a non-pack template: %v", err)
	}
	up := e.mustSuccessor(t, entitlements.SuccessorInput{Kind: entitlements.KindTopUp, LicenseID: old.ID, Template: "credit-pack-25m"})
	if up.SKU != "credit-pack-25m" || up.Supersedes != old.ID || !up.ExpiresAt.Equal(old.ExpiresAt) {
		t.Fatalf("top-up: %s supersedes %s until %s", up.SKU, up.Supersedes, up.ExpiresAt)
	}
	if !slices.Equal(up.Terms.Features, []string{"pii_filtering", "routing"}) || up.Terms.Limits["max_instances"] != 7 ||
		up.Terms.Limits["token_budget"] != 25_000_000 || up.Terms.InstanceFingerprint != "host-1" {
		t.Fatalf("top-up terms: %+v", up.Terms)
	}
	now := up.IssuedAt.Add(time.Minute)
	bundle := publish(t, e, "genai-smart-router")
	withLimit := func(v int64) func(*verify.Options) {
		return func(o *verify.Options) {
			o.Features = []string{"pii_filtering"}
			o.Limits = map[string]int64{"token_budget": v, "max_instances": 7}
		}
	}
	wantReason(t, e.check(t, up.File, now, bundle, withLimit(25_000_000)), verify.StatusValid, "")
	wantReason(t, e.check(t, up.File, now, bundle, withLimit(25_000_001)), verify.StatusBlocked, verify.ReasonLimitExceeded)
}

func TestTopUpOfALeaseLicenseKeepsTheLeasePolicy(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	ent := e.mustApproved(t, "pilot-30d")
	old, token, err := e.svc.IssueWithToken(ctx, ent.ID, maker)
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 43 || old.Terms.LeaseTTLSeconds != 6*3600 {
		t.Fatalf("pilot license: token %q, lease ttl %d", token, old.Terms.LeaseTTLSeconds)
	}
	if n := count(t, e, `SELECT count(*) FROM lease_tokens WHERE license_id = $1 AND token_hash = $2`, old.ID, issuance.HashLeaseToken(token)); n != 1 {
		t.Fatal("the lease token's hash was not stored")
	}
	if strings.Contains(string(dumpDatabase(t, e)), token) {
		t.Fatal("the lease token is stored in clear")
	}
	upEnt, err := e.svc.CreateSuccessor(ctx, entitlements.SuccessorInput{Kind: entitlements.KindTopUp, LicenseID: old.ID, Template: "credit-pack-5m"}, maker)
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Approve(ctx, upEnt.ID, approver)
	up, upToken, err := e.svc.IssueWithToken(ctx, upEnt.ID, maker)
	if err != nil {
		t.Fatal(err)
	}
	if up.Terms.LeaseTTLSeconds != 6*3600 || upToken == "" || upToken == token {
		t.Fatalf("top-up of a lease license: ttl %d, token %q", up.Terms.LeaseTTLSeconds, upToken)
	}
	r := e.check(t, up.File, up.IssuedAt.Add(time.Minute), nil)
	wantReason(t, r, verify.StatusBlocked, verify.ReasonLeaseRequired)
}

func TestRevokeSuspendReinstateThroughBundles(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	l := e.mustIssued(t, "enterprise-annual")
	now := l.IssuedAt.Add(time.Minute)

	for _, who := range []*entitlements.Staff{maker, {Email: "v@m.test", Role: entitlements.RoleViewer}} {
		if _, err := e.svc.ChangeStatus(ctx, l.ID, entitlements.ActionRevoke, "x", time.Time{}, who); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
			t.Fatalf("%s revoked: %v", who.Role, err)
		}
	}
	if _, err := e.svc.ChangeStatus(ctx, l.ID, entitlements.ActionSuspend, "", time.Time{}, approver); entitlements.ErrorCode(err) != entitlements.EINVALID {
		t.Fatalf("suspension without a reason: %v", err)
	}
	if _, err := e.svc.ChangeStatus(ctx, l.ID, entitlements.ActionReinstate, "nothing to lift", time.Time{}, approver); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
		t.Fatalf("reinstating an active license: %v", err)
	}

	if _, err := e.svc.ChangeStatus(ctx, l.ID, entitlements.ActionSuspend, "invoice overdue", time.Time{}, approver); err != nil {
		t.Fatal(err)
	}
	wantReason(t, e.check(t, l.File, now, publish(t, e, "genai-smart-router")), verify.StatusBlocked, verify.ReasonSuspended)
	if _, err := e.svc.ChangeStatus(ctx, l.ID, entitlements.ActionReinstate, "paid", time.Time{}, approver); err != nil {
		t.Fatal(err)
	}
	wantReason(t, e.check(t, l.File, now, publish(t, e, "genai-smart-router")), verify.StatusValid, "")
	if _, err := e.svc.ChangeStatus(ctx, l.ID, entitlements.ActionRevoke, "contract terminated", time.Time{}, approver); err != nil {
		t.Fatal(err)
	}
	wantReason(t, e.check(t, l.File, now, publish(t, e, "genai-smart-router")), verify.StatusBlocked, verify.ReasonRevoked)
	for _, action := range []string{entitlements.ActionRevoke, entitlements.ActionSuspend, entitlements.ActionReinstate} {
		if _, err := e.svc.ChangeStatus(ctx, l.ID, action, "again", time.Time{}, approver); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
			t.Fatalf("%s of a revoked license: %v", action, err)
		}
	}
	actions := count(t, e, `SELECT count(*) FROM audit_events WHERE subject = $1 AND action IN ('license.suspend', 'license.reinstate', 'license.revoke') AND actor = $2`, l.ID, approver.Email)
	if actions != 3 {
		t.Fatalf("audit events for 3 status changes: %d", actions)
	}
}

func TestRevocationCanTakeEffectLater(t *testing.T) {
	e := mustService(t)
	l := e.mustIssued(t, "enterprise-annual")
	at := l.IssuedAt.Add(48 * time.Hour)
	if _, err := e.svc.ChangeStatus(context.Background(), l.ID, entitlements.ActionRevoke, "end of contract", at, approver); err != nil {
		t.Fatal(err)
	}
	bundle := publish(t, e, "genai-smart-router")
	wantReason(t, e.check(t, l.File, at.Add(-time.Hour), bundle), verify.StatusValid, "")
	wantReason(t, e.check(t, l.File, at, bundle), verify.StatusBlocked, verify.ReasonRevoked)
}

func TestOneOpenSuccessorAtATime(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	l := e.mustIssued(t, "enterprise-annual")
	first, err := e.svc.CreateSuccessor(ctx, entitlements.SuccessorInput{Kind: entitlements.KindRenewal, LicenseID: l.ID}, maker)
	if err != nil {
		t.Fatal(err)
	}
	in := entitlements.SuccessorInput{Kind: entitlements.KindTopUp, LicenseID: l.ID, Template: "credit-pack-5m"}
	if _, err := e.svc.CreateSuccessor(ctx, in, maker); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
		t.Fatalf("second open successor: %v", err)
	}
	if _, err := e.svc.Cancel(ctx, first.ID, "customer chose a top-up", maker); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateSuccessor(ctx, in, maker); err != nil {
		t.Fatalf("after cancelling the first: %v", err)
	}
}

func TestCoreSDKTokensThroughTheLifecycle(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	c := &entitlements.Customer{Name: "Acme"}
	e.svc.CreateCustomer(ctx, c, maker)
	if _, err := e.svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: c.ID, Template: "enterprise"}, maker); entitlements.ErrorCode(err) != entitlements.EINVALID {
		t.Fatalf("enterprise plan without its custom rps: %v", err)
	}
	l := e.mustIssued(t, "team")
	if l.Form != "jws" || l.FileName != "license.jwk" || l.Product != "coresdk" {
		t.Fatalf("team license: %s %s %s", l.Form, l.FileName, l.Product)
	}
	now := l.IssuedAt.Add(time.Minute)
	coresdk := func(tenants int64) func(*verify.Options) {
		return func(o *verify.Options) {
			o.Product, o.Features, o.Limits = "coresdk", []string{"saml"}, map[string]int64{"max_tenants": tenants, "max_rps": 5000}
		}
	}
	r := e.check(t, l.File, now, nil, coresdk(50))
	wantReason(t, r, verify.StatusValid, "")
	if r.SKU != "team" || r.CustomerID != l.CustomerID || r.LicenseID != l.ID {
		t.Fatalf("verdict fields: %+v", r)
	}
	wantReason(t, e.check(t, l.File, now, nil, coresdk(51)), verify.StatusBlocked, verify.ReasonLimitExceeded)
	if _, err := e.svc.ChangeStatus(ctx, l.ID, entitlements.ActionRevoke, "chargeback", time.Time{}, approver); err != nil {
		t.Fatal(err)
	}
	wantReason(t, e.check(t, l.File, now, publish(t, e, "coresdk"), coresdk(1)), verify.StatusBlocked, verify.ReasonRevoked)
}

func TestRenewExpiringOpensEachRenewalOnce(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	soon1, soon2 := e.mustIssued(t, "pilot-30d"), e.mustIssued(t, "pilot-30d")
	later := e.mustIssued(t, "enterprise-annual")
	var seen []issuance.RenewalProgress
	opened, err := e.svc.RenewExpiring(ctx, "", 31*24*time.Hour, maker, func(p issuance.RenewalProgress) { seen = append(seen, p) })
	if err != nil || opened != 2 || len(seen) != 2 {
		t.Fatalf("opened %d, progress %d, err %v", opened, len(seen), err)
	}
	got := []string{seen[0].LicenseID, seen[1].LicenseID}
	if !slices.Contains(got, soon1.ID) || !slices.Contains(got, soon2.ID) || slices.Contains(got, later.ID) || seen[1].N != 2 || seen[1].Of != 2 {
		t.Fatalf("renewed %v (progress %+v)", got, seen)
	}
	opened, err = e.svc.RenewExpiring(ctx, "", 31*24*time.Hour, maker, func(p issuance.RenewalProgress) {
		if entitlements.ErrorCode(p.Err) != entitlements.ECONFLICT {
			t.Errorf("second run on %s: %v", p.LicenseID, p.Err)
		}
	})
	if err != nil || opened != 0 {
		t.Fatalf("second run opened %d: %v", opened, err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestSuspendedLicenseHasNoSuccessor: a suspended license can't be renewed, replaced or
// topped up (issuing its successor would mark it superseded with a changeover and so
// lift the suspension for 72 hours); the refusal says to reinstate first. A successor
// drafted before the suspension can't be issued while it lasts.
func TestSuspendedLicenseHasNoSuccessor(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	l := e.mustIssued(t, "enterprise-annual")
	draft, err := e.svc.CreateSuccessor(ctx, entitlements.SuccessorInput{Kind: entitlements.KindRenewal, LicenseID: l.ID}, maker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, draft.ID, approver); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ChangeStatus(ctx, l.ID, entitlements.ActionSuspend, "invoice overdue", time.Time{}, approver); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Issue(ctx, draft.ID, maker)
	if entitlements.ErrorCode(err) != entitlements.ECONFLICT || !strings.Contains(entitlements.ErrorMessage(err), "reinstate it first") {
		t.Fatalf("issuing the successor of a suspended license: %v", err)
	}
	for _, in := range []entitlements.SuccessorInput{
		{Kind: entitlements.KindRenewal, LicenseID: l.ID},
		{Kind: entitlements.KindReplacement, LicenseID: l.ID},
		{Kind: entitlements.KindTopUp, LicenseID: l.ID, Template: "credit-pack-5m"},
	} {
		_, err := e.svc.CreateSuccessor(ctx, in, maker)
		if entitlements.ErrorCode(err) != entitlements.ECONFLICT || !strings.Contains(entitlements.ErrorMessage(err), "reinstate it first") {
			t.Fatalf("%s of a suspended license: %v", in.Kind, err)
		}
	}
	got, _ := e.store.GetLicense(ctx, l.ID)
	if got.Status != entitlements.LicenseSuspended || got.SupersededBy != "" {
		t.Fatalf("after the refusals: %s superseded by %q", got.Status, got.SupersededBy)
	}
	wantReason(t, e.check(t, l.File, l.IssuedAt.Add(time.Hour), publish(t, e, "genai-smart-router")), verify.StatusBlocked, verify.ReasonSuspended)
	// Reinstated, the drafted renewal issues.
	if _, err := e.svc.ChangeStatus(ctx, l.ID, entitlements.ActionReinstate, "paid", time.Time{}, approver); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Issue(ctx, draft.ID, maker); err != nil {
		t.Fatalf("after reinstating: %v", err)
	}
}

// TestSuspendInsideChangeoverTakesEffectAtOnce: a superseded license still inside its
// changeover can be suspended, at once; reinstating it returns it to superseded (never
// active), effective at once.
func TestSuspendInsideChangeoverTakesEffectAtOnce(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	old := e.mustIssued(t, "enterprise-annual")
	renewed := e.mustSuccessor(t, entitlements.SuccessorInput{Kind: entitlements.KindRenewal, LicenseID: old.ID})
	now := renewed.IssuedAt.Add(time.Hour) // inside the 72 h changeover
	wantReason(t, e.check(t, old.File, now, publish(t, e, "genai-smart-router")), verify.StatusValid, "")
	sus, err := e.svc.ChangeStatus(ctx, old.ID, entitlements.ActionSuspend, "chargeback", time.Time{}, approver)
	if err != nil {
		t.Fatalf("suspending inside the changeover: %v", err)
	}
	if sus.Status != entitlements.LicenseSuspended || sus.StatusEffectiveAt.After(time.Now()) {
		t.Fatalf("suspension %s from %s", sus.Status, sus.StatusEffectiveAt)
	}
	wantReason(t, e.check(t, old.File, now, publish(t, e, "genai-smart-router")), verify.StatusBlocked, verify.ReasonSuspended)
	back, err := e.svc.ChangeStatus(ctx, old.ID, entitlements.ActionReinstate, "resolved", time.Time{}, approver)
	if err != nil {
		t.Fatal(err)
	}
	if back.Status != entitlements.LicenseSuperseded {
		t.Fatalf("reinstated to %s, want superseded", back.Status)
	}
	wantReason(t, e.check(t, old.File, now, publish(t, e, "genai-smart-router")), verify.StatusBlocked, verify.ReasonSuperseded)
	// After the changeover a superseded license can't be suspended (it already stops).
	older := e.mustIssued(t, "enterprise-annual")
	zero := time.Duration(0)
	e.mustSuccessor(t, entitlements.SuccessorInput{Kind: entitlements.KindRenewal, LicenseID: older.ID, Changeover: &zero})
	if _, err := e.svc.ChangeStatus(ctx, older.ID, entitlements.ActionSuspend, "x", time.Time{}, approver); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
		t.Fatalf("suspending a license whose supersession is in effect: %v", err)
	}
}
