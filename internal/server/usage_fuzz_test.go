package server_test

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/mail"
	"github.com/metrum/licensing/internal/metering"
	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/server"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/usage"
	"github.com/metrum/licensing/verify"
)

// FuzzUsageUpload drives the real POST /v1/usage, over a real database, with
// arbitrary bodies (seeded with real reports of a real license): whatever the body,
// the answer is never a 5xx.
func FuzzUsageUpload(f *testing.F) {
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	store := pgtest.NewStore(f)
	dir := f.TempDir()
	kek, err := signing.NewKEKFile(filepath.Join(dir, "kek"))
	if err != nil {
		f.Fatal(err)
	}
	svc := issuance.New(store, issuance.Config{Keys: signing.NewKeys(signing.NewFileBackend(filepath.Join(dir, "keys"), kek)), Issuer: "metrum"})
	admin := &entitlements.Staff{Email: "admin@m.test", Role: entitlements.RoleAdmin}
	if _, err := svc.GenerateKey(ctx, entitlements.KeyInput{Product: "genai-smart-router", Alg: verify.AlgEdDSA, Purposes: []verify.Purpose{verify.PurposeLicense}}, true, admin); err != nil {
		f.Fatal(err)
	}
	c := &entitlements.Customer{Name: "Fuzz"}
	if err := svc.CreateCustomer(ctx, c, admin); err != nil {
		f.Fatal(err)
	}
	ent, err := svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: c.ID, Template: "enterprise-annual",
		Overrides: entitlements.Overrides{Limits: map[string]int64{"token_budget": 1000}}}, admin)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := svc.Approve(ctx, ent.ID, &entitlements.Staff{Email: "other@m.test", Role: entitlements.RoleApprover}); err != nil {
		f.Fatal(err)
	}
	lic, err := svc.Issue(ctx, ent.ID, admin)
	if err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ps := portal.New(store, portal.Config{Mailer: mail.Unconfigured{}, Log: log})
	tok, _, err := ps.StaffCreateToken(ctx, c.ID, "fuzz", 0, admin)
	if err != nil {
		f.Fatal(err)
	}
	us := metering.New(store, metering.Options{Log: log})
	go us.Run(ctx)
	ts := httptest.NewServer((&server.Server{Svc: svc, Portal: ps, Usage: us, Log: log}).Handler())
	f.Cleanup(ts.Close)

	// Seeds: a chain's first reports, alone and in a body, and some near misses.
	_, priv, _ := ed25519.GenerateKey(nil)
	ins := "ins_" + ulid.Make().String()
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	var envs [][]byte
	prev, total := "", int64(0)
	for s := int64(1); s <= 2; s++ {
		total += 10
		p := usage.Payload{Schema: 1, LicenseID: lic.ID, Product: lic.Product, InstanceID: ins, Seq: s, Prev: prev,
			PeriodStart: start.Add(time.Duration(s-1) * time.Hour).Format(time.RFC3339), PeriodEnd: start.Add(time.Duration(s) * time.Hour).Format(time.RFC3339),
			Counters: map[string]int64{"tokens": 10}, Totals: map[string]int64{"tokens": total}, Reporter: "fuzz/1"}
		if s == 1 {
			p.HostKey = usage.PublicJWK(priv.Public().(ed25519.PublicKey))
		}
		env, _ := usage.Sign(priv, &p)
		envs, prev = append(envs, env), usage.Hash(env)
	}
	f.Add(envs[0])
	f.Add(usage.MarshalBatch(envs))
	f.Add(usage.MarshalBatch([][]byte{envs[1]}))
	f.Add([]byte(`{"reports":[{"format":"metrum.usage.v1"}]}`))
	f.Add([]byte(strings.Replace(string(envs[0]), `"Ed25519"`, `"ed25519"`, 1)))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/usage", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%d %s for %q", resp.StatusCode, b, body)
		}
	})
}
