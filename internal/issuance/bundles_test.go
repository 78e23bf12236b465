package issuance_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

// TestSchedulerPublishesWhenDue: a first bundle per product with a revocation key,
// nothing when nothing is due, a new one after a status change, and a re-publish when
// the latest is past half its lifetime even though nothing changed.
func TestSchedulerPublishesWhenDue(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	first, err := e.svc.PublishDue(ctx)
	if err != nil || len(first) != 2 {
		t.Fatalf("first pass: %d bundles, %v", len(first), err)
	}
	if again, err := e.svc.PublishDue(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second pass published %d: %v", len(again), err)
	}
	l := e.mustIssued(t, "enterprise-annual")
	if _, err := e.svc.ChangeStatus(ctx, l.ID, entitlements.ActionRevoke, "fraud", time.Time{}, approver); err != nil {
		t.Fatal(err)
	}
	changed, err := e.svc.PublishDue(ctx)
	if err != nil || len(changed) != 1 || changed[0].Product != "genai-smart-router" || changed[0].Reason != "changed" || changed[0].Entries != 1 {
		t.Fatalf("after a revocation: %+v %v", changed, err)
	}
	// Age the latest router bundle past half its lifetime.
	if _, err := e.store.Pool().Exec(ctx, `UPDATE revocation_bundles SET expires_at = issued_at + interval '2 hours'
		WHERE product = 'genai-smart-router' AND sequence = $1`, changed[0].Sequence); err != nil {
		t.Fatal(err)
	}
	aged, err := e.svc.PublishDue(ctx)
	if err != nil || len(aged) != 1 || aged[0].Reason != "scheduled" || aged[0].Sequence <= changed[0].Sequence {
		t.Fatalf("re-publish of an aging bundle: %+v %v", aged, err)
	}
	ks, _ := e.mustKeySet(t)
	b, err := verify.ParseBundleFile(aged[0].File, ks)
	if err != nil || b.Len() != 1 || !b.ExpiresAt.After(time.Now().Add(6*24*time.Hour)) {
		t.Fatalf("re-published bundle: %v", err)
	}
	if _, ok := b.Lookup(l.ID); !ok {
		t.Fatal("the re-published bundle lost the revocation")
	}
}

// TestLongExpiredEntriesArePruned: a revoked license that expired more than the
// retention ago leaves the bundle; a recently expired one stays.
func TestLongExpiredEntriesArePruned(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	old, recent := e.mustIssued(t, "enterprise-annual"), e.mustIssued(t, "enterprise-annual")
	for _, l := range []string{old.ID, recent.ID} {
		if _, err := e.svc.ChangeStatus(ctx, l, entitlements.ActionRevoke, "test", time.Time{}, approver); err != nil {
			t.Fatal(err)
		}
	}
	for id, ago := range map[string]string{old.ID: "100 days", recent.ID: "10 days"} {
		_, err := e.store.Pool().Exec(ctx, `UPDATE licenses SET not_before = now() - interval '400 days',
			expires_at = now() - $2::interval WHERE id = $1`, id, ago)
		if err != nil {
			t.Fatal(err)
		}
	}
	ks, _ := e.mustKeySet(t)
	b, err := verify.ParseBundleFile(publish(t, e, "genai-smart-router"), ks)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Lookup(old.ID); ok {
		t.Fatal("an entry expired 100 days ago was kept (retention 90 days)")
	}
	if _, ok := b.Lookup(recent.ID); !ok {
		t.Fatal("an entry expired 10 days ago was pruned")
	}
}

// TestTemplateEditedAfterUseIsRefused: the database remembers each used template
// version's fingerprint; a definition that no longer matches issues nothing.
func TestTemplateEditedAfterUseIsRefused(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	e.mustIssued(t, "enterprise-annual")
	if err := e.svc.CheckTemplates(ctx); err != nil {
		t.Fatal(err)
	}
	// What the database saw at first use no longer matches the code: as if v1 had
	// been edited in place since.
	if _, err := e.store.Pool().Exec(ctx, `UPDATE template_versions SET fingerprint = '\x00' WHERE name = 'enterprise-annual'`); err != nil {
		t.Fatal(err)
	}
	ent := e.mustApproved(t, "enterprise-annual")
	before := count(t, e, `SELECT count(*) FROM licenses`)
	_, err := e.svc.Issue(ctx, ent.ID, maker)
	if entitlements.ErrorCode(err) != entitlements.ECONFLICT || !strings.Contains(err.Error(), "add version 2") {
		t.Fatalf("issue from an edited template: %v", err)
	}
	if count(t, e, `SELECT count(*) FROM licenses`) != before {
		t.Fatal("a license was stored")
	}
	if err := e.svc.CheckTemplates(ctx); err == nil || !strings.Contains(err.Error(), "enterprise-annual@1") {
		t.Fatalf("startup check: %v", err)
	}
}

// TestAuditChainCatchesTampering: the trail refuses UPDATE and DELETE; an edit made
// with the trigger disabled, or a removed row, is named by VerifyAudit.
func TestAuditChainCatchesTampering(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	e.mustIssued(t, "enterprise-annual")
	db := e.store.Pool()
	rep, err := e.store.VerifyAudit(ctx, nil)
	if err != nil || rep.BrokenAt != 0 || rep.Events < 5 {
		t.Fatalf("intact chain: %+v %v", rep, err)
	}
	for _, sql := range []string{`UPDATE audit_events SET actor = 'mallory'`, `DELETE FROM audit_events`, `TRUNCATE audit_events`} {
		if _, err := db.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var mid int64
	db.QueryRow(ctx, `SELECT id FROM audit_events ORDER BY id OFFSET 2 LIMIT 1`).Scan(&mid)
	tamper := func(sql string, args ...any) {
		t.Helper()
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		steps := []struct {
			sql  string
			args []any
		}{{`ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update`, nil}, {sql, args},
			{`ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update`, nil}}
		for _, st := range steps {
			if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
				t.Fatalf("%s: %v", st.sql, err)
			}
		}
		tx.Commit(ctx)
	}
	tamper(`UPDATE audit_events SET details = details || '{"reason":"nothing to see"}' WHERE id = $1`, mid)
	rep, err = e.store.VerifyAudit(ctx, nil)
	if err != nil || rep.BrokenAt != mid || !strings.Contains(rep.Why, "edited") {
		t.Fatalf("edited event %d: %+v %v", mid, rep, err)
	}

	e2 := mustService(t)
	e2.mustIssued(t, "enterprise-annual")
	var victim, next int64
	e2.store.Pool().QueryRow(ctx, `SELECT id FROM audit_events ORDER BY id OFFSET 3 LIMIT 1`).Scan(&victim)
	e2.store.Pool().QueryRow(ctx, `SELECT min(id) FROM audit_events WHERE id > $1`, victim).Scan(&next)
	db = e2.store.Pool()
	tamper(`DELETE FROM audit_events WHERE id = $1`, victim)
	rep, err = e2.store.VerifyAudit(ctx, nil)
	if err != nil || rep.BrokenAt != next || !strings.Contains(rep.Why, "removed") {
		t.Fatalf("removed event %d: %+v %v", victim, rep, err)
	}
}
