package issuance_test

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// TestPreviewIsWhatIssues: the approver's preview is the template's own render: its
// terms are exactly what the issued license grants, its payload carries them, its
// defaults are the template's, and it names the customer and the licenses they have.
func TestPreviewIsWhatIssues(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	grace := int64(3 * 86400)
	ent := e.mustApproved(t, "enterprise-annual", entitlements.Overrides{Limits: map[string]int64{"max_instances": 4},
		Features: []string{"pii_filtering", "routing"}, GracePeriodSeconds: &grace})
	p, err := e.svc.PreviewEntitlement(ctx, ent.ID, approver)
	if err != nil {
		t.Fatal(err)
	}
	if p.CustomerName != "Acme Corp" || p.Problem != "" || p.Defaults.Limits["max_instances"] != 10 || p.Defaults.GracePeriodSeconds != 86400 {
		t.Fatalf("preview: %q %q %+v", p.CustomerName, p.Problem, p.Defaults)
	}
	var payload map[string]any
	if err := json.Unmarshal(p.Payload, &payload); err != nil || payload["customer_name"] != "Acme Corp" || payload["grace_period_seconds"] != float64(grace) {
		t.Fatalf("payload %v: %s", err, p.Payload)
	}
	l, err := e.svc.Issue(ctx, ent.ID, maker)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.Terms.Features, p.Terms.Features) || !maps.Equal(l.Terms.Limits, p.Terms.Limits) ||
		l.Terms.GracePeriodSeconds != p.Terms.GracePeriodSeconds || l.Terms.InstanceFingerprint != p.Terms.InstanceFingerprint {
		t.Fatalf("issued %+v, previewed %+v", l.Terms, p.Terms)
	}
	// A renewal's preview names the license it replaces among the customer's; a viewer
	// may read previews but not ask for a successor's.
	in := entitlements.SuccessorInput{Kind: entitlements.KindRenewal, LicenseID: l.ID, Reason: "renewed"}
	if _, err := e.svc.PreviewSuccessor(ctx, in, &entitlements.Staff{Email: "v@m.test", Role: entitlements.RoleViewer}); entitlements.ErrorCode(err) != entitlements.EFORBIDDEN {
		t.Fatalf("a viewer's successor preview: %v", err)
	}
	before := count(t, e, `SELECT count(*) FROM entitlements`)
	sp, err := e.svc.PreviewSuccessor(ctx, in, maker)
	if err != nil || sp.Base == nil || sp.Base.ID != l.ID || len(sp.Existing) != 1 || sp.Entitlement.Reason != "renewed" {
		t.Fatalf("renewal preview: %+v %v", sp, err)
	}
	if count(t, e, `SELECT count(*) FROM entitlements`) != before {
		t.Fatal("a preview opened an entitlement")
	}
	open, err := e.svc.CreateSuccessor(ctx, in, maker)
	if err != nil {
		t.Fatal(err)
	}
	// A second one is a conflict naming the open one, previewed or opened.
	for _, f := range []func() error{
		func() error { _, err := e.svc.PreviewSuccessor(ctx, in, maker); return err },
		func() error { _, err := e.svc.CreateSuccessor(ctx, in, maker); return err },
	} {
		var de *entitlements.Error
		if err := f(); !asError(err, &de) || de.Code != entitlements.ECONFLICT || de.Conflict != open.ID || !strings.Contains(de.Message, open.ID) {
			t.Fatalf("a second successor: %v", err)
		}
	}
}

func asError(err error, de **entitlements.Error) bool {
	e, ok := err.(*entitlements.Error)
	*de = e
	return ok
}

// TestSearchLicensesPagesEverySortOnce: for every sort key, both ways, walking the
// pages shows each license exactly once, in the order of (key, ID), ties and all.
func TestSearchLicensesPagesEverySortOnce(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	var all []*entitlements.License
	for i, tmpl := range []string{"enterprise-annual", "pilot-30d", "team", "enterprise-annual", "free", "marketplace-seat", "pilot-30d", "team", "free"} {
		l := e.mustIssued(t, tmpl) // each its own customer, all named Acme Corp: ties
		if i%3 == 0 {
			c, _ := e.svc.GetCustomer(ctx, l.CustomerID, maker)
			c.Name = []string{"Zed", "beta", "Alpha"}[i/3]
			if err := e.svc.UpdateCustomer(ctx, c, maker); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, l)
	}
	if _, err := e.svc.ChangeStatus(ctx, all[2].ID, entitlements.ActionRevoke, "test", time.Time{}, approver); err != nil {
		t.Fatal(err)
	}
	for _, key := range entitlements.LicenseSorts {
		for _, desc := range []bool{false, true} {
			q := entitlements.LicenseQuery{Sort: entitlements.Sort{Key: key, Desc: desc}, Limit: 4}
			var got []*entitlements.License
			for range 10 {
				page, err := e.svc.SearchLicenses(ctx, q, maker)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, page...)
				if len(page) < q.Limit {
					break
				}
				q.After = page[len(page)-1].ID
			}
			want := slices.Clone(got)
			slices.SortStableFunc(want, func(a, b *entitlements.License) int {
				c := cmp.Or(compareBy(key, a, b), strings.Compare(a.ID, b.ID))
				if desc {
					return -c
				}
				return c
			})
			ids := func(ls []*entitlements.License) (out []string) {
				for _, l := range ls {
					out = append(out, l.ID)
				}
				return out
			}
			if len(got) != len(all) || !slices.Equal(ids(got), ids(want)) {
				t.Fatalf("sort %s desc=%v: %d of %d\ngot  %v\nwant %v", key, desc, len(got), len(all), ids(got), ids(want))
			}
		}
	}
	// Filters: the revoked one by status, the CoreSDK ones by product, none by a
	// wildcard typed as text.
	for q, want := range map[entitlements.LicenseQuery]int{
		{Status: "revoked", Sort: entitlements.Sort{Key: "issued"}}:       1,
		{Product: "coresdk", Sort: entitlements.Sort{Key: "issued"}}:      4,
		{Text: "acme", Sort: entitlements.Sort{Key: "issued"}}:            6,
		{Text: "_", Sort: entitlements.Sort{Key: "issued"}}:               0,
		{Text: all[4].EntitlementID, Sort: entitlements.Sort{Key: "sku"}}: 1,
	} {
		got, err := e.svc.SearchLicenses(ctx, q, maker)
		if err != nil || len(got) != want {
			t.Errorf("%+v: %d licenses (%v), want %d", q, len(got), err, want)
		}
	}
	if _, err := e.svc.SearchLicenses(ctx, entitlements.LicenseQuery{Sort: entitlements.Sort{Key: "file_bytes"}}, maker); entitlements.ErrorCode(err) != entitlements.EINVALID {
		t.Fatalf("an unknown sort key: %v", err)
	}
}

func compareBy(key string, a, b *entitlements.License) int {
	switch key {
	case "issued":
		return a.IssuedAt.Compare(b.IssuedAt)
	case "expires":
		return a.ExpiresAt.Compare(b.ExpiresAt)
	case "customer":
		return strings.Compare(strings.ToLower(a.CustomerName), strings.ToLower(b.CustomerName))
	case "sku":
		return strings.Compare(a.SKU, b.SKU)
	case "status":
		return strings.Compare(a.Status, b.Status)
	}
	panic(key)
}
