package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/internal/storage"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// sign is a stand-in signer: storage stores whatever bytes it is given (the signing
// is issuance's, and tested there with real keys).
func sign(in storage.BundleInput) (*storage.SignedBundle, error) {
	return &storage.SignedBundle{File: []byte(`{"sequence":` + time.Now().String() + `}`), PayloadSHA256: make([]byte, 32), KeyID: kid}, nil
}

// kid is a well-formed key ID (43 base64url characters).
const kid = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// withRevocationKey records a revocation key for the router, which bundle rows need.
func withRevocationKey(t *testing.T, s *storage.Store) {
	t.Helper()
	_, err := s.Pool().Exec(context.Background(), `INSERT INTO signing_keys (kid, product, alg, purposes, public_jwk, backend)
		VALUES ($1, 'genai-smart-router', 'EdDSA', '{revocation}', '{}', 'file')`, kid)
	if err != nil {
		t.Fatal(err)
	}
}

// TestMissingRowsAreNotFound: a missing row is the domain's not-found, never (nil, nil).
func TestMissingRowsAreNotFound(t *testing.T) {
	s := pgtest.NewStore(t)
	ctx := context.Background()
	for name, f := range map[string]func() error{
		"license":     func() error { _, err := s.GetLicense(ctx, "lic_01HZY3QK8Y0000000000000001"); return err },
		"customer":    func() error { _, err := s.GetCustomer(ctx, "cus_01HZY3QK8Y0000000000000001"); return err },
		"entitlement": func() error { _, err := s.GetEntitlement(ctx, "ent_01HZY3QK8Y0000000000000001"); return err },
		"bundle":      func() error { _, err := s.GetBundle(ctx, "genai-smart-router", 0); return err },
		"key":         func() error { _, err := s.GetKey(ctx, "no-such-kid"); return err },
	} {
		if err := f(); entitlements.ErrorCode(err) != entitlements.ENOTFOUND {
			t.Errorf("%s: %v, want not found", name, err)
		}
	}
}

// TestPublishWhenNotDueWritesNothing: OnlyIfDue with nothing due is ErrNotDue, and no
// bundle, sequence or audit event is taken.
func TestPublishWhenNotDueWritesNothing(t *testing.T) {
	s := pgtest.NewStore(t)
	ctx := context.Background()
	withRevocationKey(t, s)
	o := storage.PublishOptions{Product: "genai-smart-router", TTL: 7 * 24 * time.Hour, Retention: time.Hour, Actor: "test", OnlyIfDue: true}
	first, err := s.PublishBundle(ctx, o, sign)
	if err != nil || first == nil {
		t.Fatalf("first publish: %v", err)
	}
	before, _ := s.LastAuditID(ctx)
	if b, err := s.PublishBundle(ctx, o, sign); !errors.Is(err, storage.ErrNotDue) || b != nil {
		t.Fatalf("second publish: %v %v", b, err)
	}
	after, _ := s.LastAuditID(ctx)
	if last, _ := s.LastBundleSequence(ctx, "genai-smart-router"); last != first.Sequence || after != before {
		t.Fatalf("a publish that was not due moved the sequence to %d or the audit trail %d → %d", last, before, after)
	}
}

// TestRecoverRaisesButNeverLowers: recovering from a published bundle raises the
// product's sequence above it and keeps entries of licenses the database never had;
// an older bundle lowers nothing; a dry run writes nothing.
func TestRecoverRaisesButNeverLowers(t *testing.T) {
	s := pgtest.NewStore(t)
	ctx := context.Background()
	withRevocationKey(t, s)
	unknown := "lic_01HZY3QK8Y0000000000000009"
	in := entitlements.RecoverInput{Product: "genai-smart-router", Sequence: 5_000_000_000_000, IssuedAt: time.Now().UTC().Truncate(time.Second),
		SHA256: make([]byte, 32), Actor: "operator:recover", DryRun: true,
		Entries: []entitlements.BundleEntry{{LicenseID: unknown, Status: entitlements.LicenseRevoked, Reason: "fraud", EffectiveAt: time.Now().UTC().Truncate(time.Second)}}}
	rep, err := s.Recover(ctx, in)
	if err != nil || rep.SequenceAfter != in.Sequence || len(rep.Entries) != 1 || rep.Entries[0].Outcome != entitlements.RecoveredUnknown {
		t.Fatalf("dry run: %+v %v", rep, err)
	}
	if last, _ := s.LastBundleSequence(ctx, "genai-smart-router"); last != 0 {
		t.Fatalf("the dry run moved the sequence to %d", last)
	}
	in.DryRun = false
	if _, err := s.Recover(ctx, in); err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastBundleSequence(ctx, "genai-smart-router"); last != in.Sequence {
		t.Fatalf("sequence %d after recovery, want %d", last, in.Sequence)
	}
	older := in
	older.Sequence = 7
	if _, err := s.Recover(ctx, older); err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastBundleSequence(ctx, "genai-smart-router"); last != in.Sequence {
		t.Fatalf("an older bundle lowered the sequence to %d", last)
	}
	b, err := s.PublishBundle(ctx, storage.PublishOptions{Product: "genai-smart-router", TTL: time.Hour, Retention: time.Hour, Actor: "test", Reason: "manual"},
		func(bi storage.BundleInput) (*storage.SignedBundle, error) {
			if len(bi.Entries) != 1 || bi.Entries[0].LicenseID != unknown || bi.Sequence <= in.Sequence {
				t.Errorf("the next bundle: sequence %d, entries %+v", bi.Sequence, bi.Entries)
			}
			return sign(bi)
		})
	if err != nil || b.Sequence <= in.Sequence {
		t.Fatalf("publish after recovery: %v %v", b, err)
	}
}
