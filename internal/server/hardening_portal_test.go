package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/mail"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/ratelimit"
)

// TestSignInLinksCantBeDeniedToAUser (issue 20, 2): requests from a throttled address
// never spend the victim's per-email quota, so a request from another address still
// gets its link however long the flood went on.
func TestSignInLinksCantBeDeniedToAUser(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme", "victim@acme.test")
	_ = a
	p := portal.New(e.store, portal.Config{Mailer: &mail.SMTP{Addr: e.smtp.Addr, From: "licensing@metrum.test"},
		BaseURL: e.portal.BaseURL, SignInLimit: ratelimit.New(5.0/900, 5, 0)})
	ctx := context.Background()
	for i := range 5 { // the attacker's address spends its own quota
		p.RequestSignIn(ctx, fmt.Sprintf("someone%d@else.test", i), "203.0.113.66")
	}
	for range 20 { // then asks for the victim's links, throttled
		p.RequestSignIn(ctx, "victim@acme.test", "203.0.113.66")
	}
	p.RequestSignIn(ctx, "victim@acme.test", "198.51.100.7") // the victim, elsewhere
	msg := e.smtp.Wait(t, "victim@acme.test", 5*time.Second)
	if msg.Link() == "" {
		t.Fatalf("the victim's mail has no link: %s", msg.Data)
	}
	time.Sleep(200 * time.Millisecond) // sends are asynchronous: let any stray one land
	if n := e.smtp.Count("victim@acme.test"); n != 1 {
		t.Fatalf("%d mails to the victim, want exactly the one they asked for", n)
	}
}

// TestEvaluationMailCarriesNoRequesterText (issue 20, 4): the company typed on the
// evaluation form goes into the record, never into the mail sent to the address.
func TestEvaluationMailCarriesNoRequesterText(t *testing.T) {
	e := mustShop(t, false)
	spam := "Claim your prize at https://evil.example/now"
	if err := e.shop.RequestEvaluation(context.Background(), "target@initrode.test", spam, "192.0.2.9"); err != nil {
		t.Fatal(err)
	}
	msg := e.smtp.Wait(t, "target@initrode.test", 5*time.Second)
	if strings.Contains(msg.Data, "evil.example") || strings.Contains(msg.Data, "prize") {
		t.Fatalf("the mail carried the requester's text:\n%s", msg.Data)
	}
}

// TestOneEvaluationPerRegistrableDomain (issue 20, 6): subdomains are one domain.
func TestOneEvaluationPerRegistrableDomain(t *testing.T) {
	e := mustShop(t, false)
	ctx := context.Background()
	start := func(email string) error {
		tok, err := e.store.CreateEvaluationRequest(ctx, email, "Evil Two", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = e.shop.StartEvaluation(ctx, tok)
		return err
	}
	if err := start("a@a.evil2.example"); err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"b@b.evil2.example", "c@evil2.example", "d@x.y.evil2.example"} {
		if err := start(email); entitlements.ErrorCode(err) != entitlements.ECONFLICT {
			t.Errorf("%s: %v", email, err)
		}
	}
	if entitlements.EvaluationDomain("ops@dept.example.co.uk") != "example.co.uk" {
		t.Error("a public suffix of two labels")
	}
}
