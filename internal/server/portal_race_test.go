package server_test

import (
	"context"
	"sync"
	"testing"

	"github.com/metrum/licensing/internal/entitlements"
)

// TestSignInLinkRace: one sign-in link opened by six tabs at once signs in exactly
// once: one session, one sign-in in the audit trail; the others are told the link
// was used.
func TestSignInLinkRace(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme", "ops@acme.test")
	ctx := context.Background()
	tok, _, err := e.store.CreateSignInLink(ctx, a.email)
	if err != nil {
		t.Fatal(err)
	}
	sessions := e.count(t, `SELECT count(*) FROM portal_sessions`)
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok, refused := 0, 0
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := e.store.UseSignInLink(ctx, tok, "192.0.2.1")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case entitlements.ErrorCode(err) == entitlements.EUNAUTHORIZED:
				refused++
			default:
				t.Errorf("use: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || refused != 5 {
		t.Fatalf("one link signed in %d times (%d refused)", ok, refused)
	}
	if n := e.count(t, `SELECT count(*) FROM portal_sessions`); n != sessions+1 {
		t.Fatalf("%d sessions opened by one link", n-sessions)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_events WHERE action = 'portal.sign_in' AND actor = $1`, "portal:"+a.email); n != 1 {
		t.Fatalf("%d sign-ins audited", n)
	}
}
