package issuance_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/internal/secretscan"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

// TestNoPrivateKeyMaterialAnywhere issues with keys whose private bytes the test
// knows, logging at debug level, then searches the log, every row of every table, the
// files and the summaries for those bytes in any common encoding.
func TestNoPrivateKeyMaterialAnywhere(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	dir := t.TempDir()
	kek, err := signing.NewKEKFile(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	files := signing.NewFileBackend(filepath.Join(dir, "keys"), kek)
	store := pgtest.NewStore(t)
	svc := issuance.New(store, issuance.Config{Keys: signing.NewKeys(files), Issuer: "metrum",
		RenewURL: "https://licensing.metrum.test/v1/leases", MakerChecker: true,
		Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	e := &env{svc: svc, store: store}

	var secrets [][]byte
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	edKey := ed25519.NewKeyFromSeed(seed)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecD, _ := ecKey.Bytes()
	secrets = append(secrets, seed, edKey, ecD)
	for _, k := range []struct {
		priv    any
		alg     string
		purpose verify.Purpose
	}{
		{edKey, verify.AlgEdDSA, verify.PurposeLicense},
		{ecKey, verify.AlgES256, verify.PurposeRevocation},
	} {
		fk, err := signing.NewFileKey(k.priv.(crypto.Signer), k.alg, []verify.Purpose{k.purpose})
		if err != nil {
			t.Fatal(err)
		}
		if err := files.Save(fk); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RegisterKey(ctx, "genai-smart-router", fk, "file", "", true, admin); err != nil {
			t.Fatal(err)
		}
	}

	ent := e.mustApproved(t, "enterprise-annual")
	lic, err := svc.Issue(ctx, ent.ID, maker)
	if err != nil {
		t.Fatal(err)
	}
	set, err := svc.PublicKeySet(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var everything bytes.Buffer
	everything.Write(logs.Bytes())
	everything.Write(lic.File)
	everything.Write(set)
	everything.Write(dumpDatabase(t, e))
	if logs.Len() == 0 {
		t.Fatal("nothing was logged: the capture is not wired")
	}
	if !bytes.Contains(everything.Bytes(), []byte(lic.ID)) {
		t.Fatal("the dump does not contain the license: it is not capturing what it should")
	}
	for i, s := range secrets {
		if enc := secretscan.Find(everything.Bytes(), s); enc != "" {
			t.Fatalf("private key material %d found (%s encoding)", i, enc)
		}
	}
}

// dumpDatabase renders every row of every table of the public schema as text.
func dumpDatabase(t *testing.T, e *env) []byte {
	t.Helper()
	ctx := context.Background()
	rows, err := e.store.Pool().Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	var out bytes.Buffer
	for _, tbl := range tables {
		r, err := e.store.Pool().Query(ctx, `SELECT t::text FROM "`+tbl+`" t`)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var line string
			r.Scan(&line)
			out.WriteString(line + "\n")
		}
	}
	return out.Bytes()
}
