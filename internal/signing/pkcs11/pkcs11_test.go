//go:build pkcs11

package pkcs11_test

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ThalesGroup/crypto11"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/internal/signing/pkcs11"
	"github.com/metrum/licensing/verify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// mustToken makes a fresh SoftHSM2 token in a temp folder and opens it.
func mustToken(t *testing.T) *pkcs11.Backend {
	t.Helper()
	module := ""
	for _, p := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"} {
		if _, err := os.Stat(p); err == nil {
			module = p
		}
	}
	if module == "" {
		t.Fatal("SoftHSM2 is not installed: run scripts/setup --test (Debian: apt-get install -y softhsm2)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	os.MkdirAll(filepath.Join(dir, "tokens"), 0o700)
	os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600)
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "metrum-test", "--so-pin", "0000", "--pin", "1234").CombinedOutput()
	if err != nil {
		t.Fatalf("init token: %v\n%s", err, out)
	}
	b, closeFn, err := pkcs11.New(pkcs11.Config{Module: module, TokenLabel: "metrum-test", Pin: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn() })
	return b.(*pkcs11.Backend)
}

func keySet(t *testing.T, s signing.Signer) *verify.KeySet {
	t.Helper()
	j, err := signing.JWKOf(s.Public(), s.Algorithm(), s.Purposes(), "genai-smart-router", verify.ProductCoreSDK)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := signing.KeySetJSON([]signing.PublicJWK{j})
	ks, err := verify.ParseKeySet(b)
	if err != nil || len(ks.Dropped) > 0 {
		t.Fatalf("%v %v", err, ks.Dropped)
	}
	return ks
}

func TestTokenKeysSignES256AndStayOnTheToken(t *testing.T) {
	hsm := mustToken(t)
	if _, _, err := hsm.Generate(verify.AlgEdDSA, []verify.Purpose{verify.PurposeLicense}); err == nil {
		t.Fatal("the PKCS#11 backend made an EdDSA key")
	}
	s, ref, err := hsm.Generate(verify.AlgES256, []verify.Purpose{verify.PurposeLease})
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"schema":1,"lease_id":"lea_01HZY3QK8Y0000000000000003","license_id":"lic_01HZY3QK8Y0000000000000001",` +
		`"instance_fingerprint":"host-1","issued_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T01:00:00Z"}`)
	env, err := signing.SignEnvelope(s, verify.FormatLease, payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.ParseLeaseFile(env, keySet(t, s)); err != nil {
		t.Fatalf("token-signed lease does not verify: %v", err)
	}

	// Reopened by its record, through the same registry issuance uses.
	keys := signing.NewKeys(hsm)
	rec := signing.KeyRef{KID: s.KeyID(), Alg: verify.AlgES256, Purposes: []verify.Purpose{verify.PurposeLease}, Backend: pkcs11.Name, Ref: ref}
	again, err := keys.Open(rec)
	if err != nil || again.KeyID() != s.KeyID() {
		t.Fatalf("reopen: %v", err)
	}
	// A record claiming other purposes than the token's label does not open.
	wrong := rec
	wrong.Purposes = []verify.Purpose{verify.PurposeLicense}
	if _, err := signing.NewKeys(hsm).Open(wrong); err == nil {
		t.Fatal("opened a lease key as a license key")
	}
	// The private half is sensitive and not extractable.
	priv, err := hsm.Context().FindPrivateKey(mustHex(t, ref), nil)
	if err != nil || priv == nil {
		t.Fatalf("find private key: %v", err)
	}
	attrs, err := hsm.Context().GetAttributes(priv, []crypto11.AttributeType{crypto11.CkaSensitive, crypto11.CkaExtractable})
	if err != nil {
		t.Fatal(err)
	}
	if v := attrs[crypto11.CkaSensitive].Value; len(v) != 1 || v[0] != 1 {
		t.Fatalf("CKA_SENSITIVE = %v", v)
	}
	if v := attrs[crypto11.CkaExtractable].Value; len(v) != 1 || v[0] != 0 {
		t.Fatalf("CKA_EXTRACTABLE = %v", v)
	}
}

// TestIssuanceWithATokenKey issues a router license signed by a key on the token,
// with nothing in issuance changed: the interface is the whole contract.
func TestIssuanceWithATokenKey(t *testing.T) {
	ctx := context.Background()
	hsm := mustToken(t)
	dir := t.TempDir()
	kek, err := signing.NewKEKFile(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	store := pgtest.NewStore(t)
	svc := issuance.New(store, issuance.Config{Keys: signing.NewKeys(signing.NewFileBackend(filepath.Join(dir, "keys"), kek), hsm),
		Issuer: "metrum", MakerChecker: true})
	admin := &entitlements.Staff{Email: "admin@m.test", Role: entitlements.RoleAdmin}
	maker := &entitlements.Staff{Email: "maker@m.test", Role: entitlements.RoleIssuer}
	checker := &entitlements.Staff{Email: "checker@m.test", Role: entitlements.RoleApprover}
	rec, err := svc.GenerateKey(ctx, entitlements.KeyInput{Product: "genai-smart-router", Alg: verify.AlgES256,
		Purposes: []verify.Purpose{verify.PurposeLicense}, Backend: pkcs11.Name}, true, admin)
	if err != nil {
		t.Fatal(err)
	}
	if rec.BackendRef == "" || rec.Backend != pkcs11.Name {
		t.Fatalf("record: %+v", rec)
	}
	c := &entitlements.Customer{Name: "Hardware Corp"}
	if err := svc.CreateCustomer(ctx, c, maker); err != nil {
		t.Fatal(err)
	}
	e, err := svc.CreateEntitlement(ctx, entitlements.EntitlementInput{CustomerID: c.ID, Template: "enterprise-annual"}, maker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, e.ID, checker); err != nil {
		t.Fatal(err)
	}
	lic, err := svc.Issue(ctx, e.ID, maker)
	if err != nil {
		t.Fatal(err)
	}
	set, err := svc.PublicKeySet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := verify.ParseKeySet(set)
	if err != nil {
		t.Fatal(err)
	}
	l, err := verify.ParseLicenseFile(lic.File, ks)
	if err != nil {
		t.Fatal(err)
	}
	if l.Algorithm != verify.EnvelopeES256 || l.KeyID != rec.KID {
		t.Fatalf("license signed by %s %s, want ES256 %s", l.Algorithm, l.KeyID, rec.KID)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
