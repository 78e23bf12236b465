package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

// TestReleaseReproducible runs scripts/release-verifier twice, the second time with an
// empty build cache (every package compiled again), and wants one SHA256SUMS; the
// built verifier must name the key set it embeds. It builds linux/amd64 only (a cross
// build takes 40–50 s per target on a cold cache here; a release builds all four with
// the same flags). scripts/test runs it in a step of its own, after the race-detector
// pass (which leaves it out with -skip), so that its cold build doesn't compete with it.
func TestReleaseReproducible(t *testing.T) {
	dir := t.TempDir()
	var jwks []signing.PublicJWK
	for _, p := range []string{"genai-smart-router", verify.ProductCoreSDK} {
		k, err := signing.GenerateKey(verify.AlgEdDSA, []verify.Purpose{verify.PurposeLicense})
		if err != nil {
			t.Fatal(err)
		}
		j, _ := signing.JWKOf(k.Public(), k.Algorithm(), k.Purposes(), p)
		jwks = append(jwks, j)
	}
	ks, _ := signing.KeySetJSON(jwks)
	keyset := filepath.Join(dir, "keyset.json")
	os.WriteFile(keyset, ks, 0o644)
	script, _ := filepath.Abs("../../scripts/release-verifier")
	release := func(out string, env ...string) ([]byte, error) {
		cmd := exec.Command(script, "--keyset", keyset, "--out", out, "--version", "v1.2.0-test", "--platforms", "linux/amd64")
		cmd.Env = append(os.Environ(), env...)
		return cmd.CombinedOutput()
	}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if out, err := release(a); err != nil {
		t.Fatalf("release: %v\n%s", err, out)
	}
	if out, err := release(b, "GOCACHE="+filepath.Join(dir, "cold-cache")); err != nil {
		t.Fatalf("release with a cold cache: %v\n%s", err, out)
	}
	sa, _ := os.ReadFile(filepath.Join(a, "SHA256SUMS"))
	sb, _ := os.ReadFile(filepath.Join(b, "SHA256SUMS"))
	if len(sa) == 0 || string(sa) != string(sb) {
		t.Fatalf("two runs differ:\n%s\n%s", sa, sb)
	}
	if !strings.Contains(string(sa), "verifier-v1.2.0-test-linux-amd64\n") || !strings.Contains(string(sa), "keyset.json\n") {
		t.Fatalf("SHA256SUMS:\n%s", sa)
	}
	out, err := exec.Command(filepath.Join(a, "verifier-v1.2.0-test-linux-amd64"), "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version, Commit string
		Keyset          struct {
			Source, SHA256 string
			KeyIDs         []string `json:"key_ids"`
		}
	}
	if err := json.Unmarshal(out, &v, json.MatchCaseInsensitiveNames(true)); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	sum := sha256.Sum256(ks)
	if v.Version != "v1.2.0-test" || len(v.Commit) < 40 || v.Keyset.Source != "embedded" || v.Keyset.SHA256 != "sha256:"+hex.EncodeToString(sum[:]) ||
		len(v.Keyset.KeyIDs) != 2 || v.Keyset.KeyIDs[0] != jwks[0].Kid || v.Keyset.KeyIDs[1] != jwks[1].Kid {
		t.Fatalf("the release says %s", out)
	}
	if repo, _ := os.ReadFile("../../keys/public/keyset.json"); string(repo) != "{\"keys\":[]}\n" {
		t.Fatalf("the repository's key set changed: %s", repo)
	}
	t.Logf("SHA256SUMS of both runs:\n%s", sa)
}

// The release refuses a key set that trusts nothing, before building anything.
func TestReleaseRefusesKeySets(t *testing.T) {
	dir := t.TempDir()
	k, _ := signing.GenerateKey(verify.AlgEdDSA, []verify.Purpose{verify.PurposeLicense})
	j, _ := signing.JWKOf(k.Public(), k.Algorithm(), k.Purposes()) // no products
	noProducts, _ := signing.KeySetJSON([]signing.PublicJWK{j})
	script, _ := filepath.Abs("../../scripts/release-verifier")
	for name, data := range map[string][]byte{"empty": []byte(`{"keys":[]}`), "no-products": noProducts} {
		p := filepath.Join(dir, name+".json")
		os.WriteFile(p, data, 0o644)
		out := filepath.Join(dir, "out-"+name)
		b, err := exec.Command(script, "--keyset", p, "--out", out, "--version", "v1.0.0", "--platforms", "linux/amd64").CombinedOutput()
		if err == nil || !strings.Contains(string(b), "refusing the key set") {
			t.Errorf("%s: %v\n%s", name, err, b)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("%s: something was built", name)
		}
	}
	if b, err := exec.Command(script, "--keyset", filepath.Join(dir, "empty.json"), "--out", dir, "--version", "v1.0.0").CombinedOutput(); err == nil || !strings.Contains(string(b), "not empty") {
		t.Errorf("a non-empty --out: %v %s", err, b)
	}
}
