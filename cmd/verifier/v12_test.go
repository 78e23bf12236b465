package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/signing"
)

// formats.md v1.2: keys carry products, and the command line shows them.
func TestKeysAndInspectShowProducts(t *testing.T) {
	f := mustFiles(t)
	out, _, code := runCLI("keys", "--keyset", f.keyset)
	if code != 0 || !strings.Contains(out, f.licKey.KeyID()+"  EdDSA  license  products genai-smart-router") || !strings.Contains(out, "products coresdk") {
		t.Errorf("keys: exit %d\n%s", code, out)
	}
	out, _, code = runCLI("keys", "--keyset", f.keyset, "--json")
	var keys struct {
		Keys []struct {
			Kid      string   `json:"kid"`
			Products []string `json:"products"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &keys, json.RejectUnknownMembers(false)); err != nil || code != 0 || len(keys.Keys) != 4 {
		t.Fatalf("keys --json: %v exit %d\n%s", err, code, out)
	}
	for _, k := range keys.Keys {
		if len(k.Products) != 1 {
			t.Errorf("key %s: products %v", k.Kid, k.Products)
		}
	}
	out, _, code = runCLI("inspect", f.bundle, "--keyset", f.keyset, "--json")
	if code != 0 || !strings.Contains(out, `"product": "genai-smart-router"`) {
		t.Errorf("inspect bundle: exit %d\n%s", code, out)
	}

	// A key set exported before v1.2 loads, lists its keys as trusting nothing, and
	// verifies nothing.
	j, _ := signing.JWKOf(f.licKey.Public(), f.licKey.Algorithm(), f.licKey.Purposes())
	old, _ := signing.KeySetJSON([]signing.PublicJWK{j})
	oldPath := filepath.Join(f.dir, "old-keyset.json")
	os.WriteFile(oldPath, old, 0o644)
	out, _, code = runCLI("keys", "--keyset", oldPath)
	if code != 0 || !strings.Contains(out, "no products: trusts nothing") {
		t.Errorf("keys of an old key set: exit %d\n%s", code, out)
	}
	out, stderr, code := runCLI("verify", "--license", f.license, "--keyset", oldPath, "--instance-fingerprint", "host-1", "--lease", f.lease, "--json")
	if code != 1 || !strings.Contains(out, `"reason": "license-invalid"`) || !strings.Contains(stderr, "has no products: it trusts nothing") {
		t.Errorf("verify with an old key set: exit %d\n%s\n%s", code, out, stderr)
	}
}

// formats.md v1.2 section 8: --require-current-bundle alone turns revocation on, and
// --json prints exactly the members of section 8 whatever the result.
func TestRequireCurrentAloneAndJSONMembers(t *testing.T) {
	f := mustFiles(t)
	state := filepath.Join(f.dir, "state.json")
	base := []string{"verify", "--keyset", f.keyset, "--instance-fingerprint", "host-1", "--lease", f.lease, "--state", state, "--json"}
	members := func(out string) []string {
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var got []string
		for k := range m {
			got = append(got, k)
		}
		slices.Sort(got)
		return got
	}
	want := []string{"bundle_sequence", "customer_id", "expires_at", "features", "grace_active", "key_id", "lease_expires_at",
		"license_id", "limits", "not_before", "product", "reason", "sku", "status", "warnings"}
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		status string
	}{
		{"require current alone", []string{"--license", f.license, "--require-current-bundle"}, 1, `"reason": "license-revocation-required"`},
		{"valid", []string{"--license", f.license, "--revocation", f.bundle}, 0, `"status": "valid"`},
		{"grace", []string{"--license", filepath.Join(f.dir, "gone")}, 0, `"status": "grace"`},
		{"blocked without a license", []string{"--license", filepath.Join(f.dir, "gone"), "--feature", "pii"}, 1, `"reason": "license-feature-forbidden"`},
	} {
		out, stderr, code := runCLI(append(base, c.args...)...)
		if code != c.code || !strings.Contains(out, c.status) {
			t.Errorf("%s: exit %d\n%s\n%s", c.name, code, out, stderr)
		}
		if got := members(out); !slices.Equal(got, want) {
			t.Errorf("%s: members %v", c.name, got)
		}
	}
}
