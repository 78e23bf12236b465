package issuance_test

import (
	"context"
	"testing"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
)

// TestJobResolvesUnrecordedItems: a bulk job read again accounts for every license
// it issued, also one whose outcome was never recorded (the issuer died between the
// license's commit and the item's record) or was recorded as an unknown outcome: the
// license is found through its entitlement, and its lease token counts as never
// delivered, so it is named for rotation.
func TestJobResolvesUnrecordedItems(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	pilot := e.mustApproved(t, "pilot-30d")
	other := e.mustApproved(t, "pilot-30d")
	enterprise := e.mustApproved(t, "enterprise-annual")
	var job *entitlements.BulkJob
	issued, of, err := e.svc.IssueAllApproved(ctx, issuance.BulkOptions{}, maker, func(p issuance.IssueProgress) bool {
		if p.Job != nil {
			job = p.Job
		}
		return true // every line reached the client
	})
	if err != nil || issued != 3 || of != 3 || job == nil {
		t.Fatalf("bulk issue: %d of %d, %v", issued, of, err)
	}
	// The issuer died before recording the pilot; the other pilot's outcome was
	// unknown (its COMMIT unanswered), so it was recorded as an error.
	if _, err := e.store.Pool().Exec(ctx, `UPDATE bulk_job_items SET license_id = NULL, lease_token_written = false, done_at = NULL
		WHERE job_id = $1 AND entitlement_id = $2`, job.ID, pilot.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Pool().Exec(ctx, `UPDATE bulk_job_items SET license_id = NULL, lease_token_written = false,
		error = 'the database did not confirm the change in time' WHERE job_id = $1 AND entitlement_id = $2`, job.ID, other.ID); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Job(ctx, job.ID, maker)
	if err != nil {
		t.Fatal(err)
	}
	byEnt := map[string]entitlements.BulkJobItem{}
	for _, it := range got.Items {
		byEnt[it.EntitlementID] = it
	}
	for _, id := range []string{pilot.ID, other.ID} {
		it := byEnt[id]
		if it.LicenseID == "" || !it.LeaseRequired || !it.NeedsRotation() {
			t.Errorf("an issued pilot whose outcome was not recorded: %+v", it)
		}
	}
	if it := byEnt[pilot.ID]; it.Recorded {
		t.Errorf("unrecorded item reads as recorded: %+v", it)
	}
	if it := byEnt[enterprise.ID]; it.LicenseID == "" || it.LeaseRequired || it.NeedsRotation() || !it.Recorded {
		t.Errorf("a recorded enterprise license: %+v", it)
	}
	if _, err := e.svc.Job(ctx, job.ID, &entitlements.Staff{Email: "nobody@metrum.test"}); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Errorf("a job read without a role: %v", err)
	}
}
