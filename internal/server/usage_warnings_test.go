package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metrum/licensing/usage"
)

// TestUsageWarningsMailOnce: a budget crossing 80 % and then 100 % sends exactly one
// mail each to the customer's portal users, through the real SMTP listener, however
// the crossing comes (one report, two hosts racing, the same reports again); a
// disabled user and another customer's get nothing.
func TestUsageWarningsMailOnce(t *testing.T) {
	e := mustPortal(t, 0, 0)
	ctx := context.Background()
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	b := e.tenant(t, "Globex", "ops@globex.test")
	off, err := e.store.CreatePortalUser(ctx, a.customer.ID, "gone@acme.test", "Gone", e.maker.Email)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetPortalUserDisabled(ctx, a.customer.ID, off.ID, true, e.maker.Email); err != nil {
		t.Fatal(err)
	}
	lic := e.issueWith(t, a.customer.ID, "enterprise-annual", map[string]int64{"token_budget": 1000})
	h1 := newTestHost(t, lic, time.Now().Add(-30*time.Hour))
	h2 := newTestHost(t, lic, time.Now().Add(-30*time.Hour))
	settle := func() {
		t.Helper()
		if _, err := e.usage.SendMails(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mails := func(threshold string) int {
		n := 0
		for _, m := range e.smtp.All("ops@acme.test") {
			if strings.Contains(m.Data, "has used "+threshold+" %") {
				n++
			}
		}
		return n
	}

	wantAccepted(t, e.postUsage(t, a.token, usage.MarshalBatch(h1.nextN(7, 100))), 7, 0) // 700: 70 %
	settle()
	if n := e.smtp.Count("ops@acme.test"); n != 0 {
		t.Fatalf("%d mails below 80 %%", n)
	}
	// The dashboard's line, read (and kept) below 80 %, is forgotten by the batch that
	// crosses it: the next read says it at once, not after the cache's 15 s.
	if al, err := e.usage.Alerts(ctx, e.maker); err != nil || al.Past80 != 0 {
		t.Fatalf("alerts below 80 %%: %+v, %v", al, err)
	}
	wantAccepted(t, e.postUsage(t, a.token, usage.MarshalBatch(h1.nextN(2, 75))), 2, 0) // 850: 85 %
	if al, err := e.usage.Alerts(ctx, e.maker); err != nil || al.Past80 != 1 {
		t.Fatalf("alerts just past 80 %%: %+v, %v", al, err)
	}
	m := e.smtp.Wait(t, "ops@acme.test", 5*time.Second)
	if !strings.Contains(m.Data, "has used 80 %") || !strings.Contains(m.Data, lic.ID) || !strings.Contains(m.Data, "/portal/licenses/"+lic.ID+"/usage") {
		t.Fatalf("80 %% mail: %s", m.Data)
	}
	wantAccepted(t, e.postUsage(t, a.token, h1.next(100)), 1, 0) // 950: still past 80 %, no new mail
	// Two hosts cross 100 % at once.
	var wg sync.WaitGroup
	for _, h := range []*testHost{h1, h2} {
		body := h.next(60)
		wg.Add(1)
		go func() {
			defer wg.Done()
			wantAccepted(t, e.postUsage(t, a.token, body), 1, 0)
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for mails("100") == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// Everything again, and a send pass more: nothing new.
	all := [][]byte{}
	for s := int64(1); s <= h1.seq; s++ {
		all = append(all, h1.sent[s])
	}
	wantAccepted(t, e.postUsage(t, a.token, usage.MarshalBatch(all)), 0, int64(len(all)))
	settle()
	time.Sleep(200 * time.Millisecond)
	if mails("80") != 1 || mails("100") != 1 || e.smtp.Count("ops@acme.test") != 2 {
		t.Fatalf("mails: 80 %% ×%d, 100 %% ×%d, all %d", mails("80"), mails("100"), e.smtp.Count("ops@acme.test"))
	}
	if n := e.smtp.Count("gone@acme.test") + e.smtp.Count("ops@globex.test"); n != 0 {
		t.Fatalf("%d mails to a disabled user or another customer", n)
	}
	_ = b
	var warnings, unsent int
	e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM usage_warnings WHERE license_id = $1`, lic.ID).Scan(&warnings)
	e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM usage_warning_mails WHERE sent_at IS NULL`).Scan(&unsent)
	if warnings != 2 || unsent != 0 {
		t.Fatalf("%d warnings, %d mails unsent", warnings, unsent)
	}
	// The staff dashboard's line says it.
	al, err := e.usage.Alerts(ctx, e.maker)
	if err != nil || al.Past80 != 1 || al.Past100 != 1 || len(al.Recent) != 2 || al.Top[0].LicenseID != lic.ID {
		t.Fatalf("alerts %+v, %v", al, err)
	}
}

// TestUsageSameBatchTenClients: the same body uploaded by ten clients at once is
// accepted once: the answers count its reports once as accepted and otherwise as
// duplicates, and the issuer holds each report once.
func TestUsageSameBatchTenClients(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme Corp", "ops@acme.test")
	h := newTestHost(t, a.router, time.Now().Add(-60*time.Hour))
	body := usage.MarshalBatch(h.nextN(50, 10))
	var wg sync.WaitGroup
	answers := make([]usageAnswer, 10)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = wantAccepted(t, e.postUsage(t, a.token, body), -1, -1)
		}()
	}
	wg.Wait()
	var accepted int64
	for _, ans := range answers {
		if ans.Accepted+ans.Duplicates != 50 || ans.Chains[0].LastSeq != 50 {
			t.Fatalf("answer %+v", ans)
		}
		accepted += ans.Accepted
	}
	rows := e.usageRows(t)
	if accepted != 50 || rows["usage_reports"] != 50 || rows["usage_chains"] != 1 || e.tokensOf(t, a.router.ID) != 500 {
		t.Fatalf("accepted %d in all, rows %v, %d tokens", accepted, rows, e.tokensOf(t, a.router.ID))
	}
}
