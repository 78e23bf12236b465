package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/verify"
)

// TestBrowserKeyLifecycle (issue 24, item 6): the keys page names states as the key
// lifecycle does (a standby is not shown like an active key); not-after is a date
// picker with a floor of now; a past time without "compromised" is refused beside
// the field with the input kept; the confirmation says what the issuer and verifiers
// will do from that time and names the licenses that stop verifying; the reason is in
// the audit trail.
func TestBrowserKeyLifecycle(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	a := e.tenant(t, "Initech", "ops@initech.test")
	standby, err := e.svc.GenerateKey(ctx, entitlements.KeyInput{Product: "genai-smart-router", Alg: verify.AlgEdDSA,
		Purposes: []verify.Purpose{verify.PurposeLicense}}, false, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateStaff(ctx, &entitlements.Staff{Email: "root@staff.test", Role: entitlements.RoleAdmin}, "a long enough password", "test"); err != nil {
		t.Fatal(err)
	}
	b := e.staffBrowser(t, "root@staff.test")
	b.do("keys", chromedp.Navigate(e.ts.URL+"/staff/keys"), chromedp.WaitVisible(chromedp.ID("keys")))
	b.shot("console-keys")
	if s := b.text(`tr[data-kid="` + standby.KID + `"]`); !strings.Contains(s, "standby") || strings.Contains(s, "published") {
		t.Fatalf("the standby's row: %q", s)
	}
	signer := a.router.KeyID
	if s := b.text(`tr[data-kid="` + signer + `"]`); !strings.Contains(s, "active") {
		t.Fatalf("the active key's row: %q", s)
	}
	b.do("not after", chromedp.Click(chromedp.CSS(`tr[data-kid="`+signer+`"] a[href$="/not-after"]`)), chromedp.WaitVisible(chromedp.ID("at")))
	typ, _ := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.ID("at"), "type"))
	min, _ := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.ID("at"), "min"))
	if typ.Value != "datetime-local" || !strings.HasPrefix(min.Value, time.Now().UTC().Format("2006-01-02")) {
		t.Fatalf("the time field: type %q, min %q", typ.Value, min.Value)
	}
	// A time before the license was issued, without "compromised": refused by the
	// field (the browser's own min check is bypassed by setting the value directly,
	// as a crafted form would), the input kept.
	past := a.router.IssuedAt.Add(-time.Hour).UTC().Format("2006-01-02T15:04")
	b.do("past time", chromedp.SetAttributeValue(chromedp.ID("at"), "min", ""), chromedp.SetValue(chromedp.ID("at"), past),
		chromedp.SendKeys(chromedp.ID("reason"), "leaked from a CI runner"), chromedp.Click(chromedp.ID("preview")),
		chromedp.WaitVisible(chromedp.CSS(".field-error")))
	b.shot("console-key-not-after-refused")
	if n := b.count(`#at[aria-invalid="true"][aria-describedby="at-help at-error"]`); n != 1 {
		t.Fatalf("the refused date isn't marked for assistive technology (%d)", n)
	}
	if s := b.text(".field-error"); !strings.Contains(s, "in the past") {
		t.Fatalf("refusal: %q", s)
	}
	if v, _ := chromedp.Run(b.ctx, chromedp.Value(chromedp.ID("reason"))); v != "leaked from a CI runner" {
		t.Fatalf("reason lost: %q", v)
	}
	b.do("compromised", chromedp.SetAttributeValue(chromedp.ID("at"), "min", ""), chromedp.SetValue(chromedp.ID("at"), past),
		chromedp.Click(chromedp.ID("past")), chromedp.Click(chromedp.ID("preview")), chromedp.WaitVisible(chromedp.ID("not-after-effects")))
	b.shot("console-key-not-after-confirm")
	effects := b.text("#not-after-effects")
	for _, want := range []string{"From now", "reject anything this key signed after", a.router.ID, "can't be undone"} {
		if !strings.Contains(effects, want) {
			t.Fatalf("the confirmation lacks %q: %q", want, effects)
		}
	}
	if k, _ := e.store.GetKey(ctx, signer); k.NotAfter != nil {
		t.Fatal("the preview changed the key")
	}
	b.do("confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("flash")))
	if k, _ := e.store.GetKey(ctx, signer); k.NotAfter == nil || k.NotAfter.Format("2006-01-02T15:04") != past {
		t.Fatalf("not_after: %v", k.NotAfter)
	}
	if s := b.text(`tr[data-kid="` + signer + `"]`); !strings.Contains(s, "retiring") {
		t.Fatalf("a stopped key's row: %q", s)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_events WHERE action = 'key.not_after' AND subject = $1 AND details->>'reason' = 'leaked from a CI runner'`, signer); n != 1 {
		t.Fatalf("%d audit events with the reason", n)
	}
}
