package verify_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metrum/licensing/internal/signing"
	"github.com/metrum/licensing/verify"
)

func readFile(f *fixture, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

func TestKeySetDropsLyingOrPrivateKeys(t *testing.T) {
	k := mustKey(t, verify.AlgEdDSA, verify.PurposeLicense)
	j, _ := signing.JWKOf(k.Public(), k.Algorithm(), k.Purposes())
	good, _ := signing.KeySetJSON([]signing.PublicJWK{j})
	cases := map[string]string{
		"kid is not the thumbprint": strings.Replace(string(good), j.Kid, strings.Repeat("A", 43), 1),
		"private member d":          strings.Replace(string(good), `"kid"`, `"d":"AAAA","kid"`, 1),
		"unknown purpose":           strings.Replace(string(good), `["license"]`, `["license","admin"]`, 1),
		"alg does not fit the key":  strings.Replace(string(good), `"alg":"EdDSA"`, `"alg":"ES256"`, 1),
		"no purposes":               strings.Replace(string(good), `["license"]`, `[]`, 1),
	}
	for name, set := range cases {
		t.Run(name, func(t *testing.T) {
			if set == string(good) {
				t.Fatal("mutation did not apply")
			}
			ks, err := verify.ParseKeySet([]byte(set))
			if err != nil {
				t.Fatal(err)
			}
			if ks.Lookup(j.Kid) != nil || len(ks.Dropped) != 1 {
				t.Fatalf("key trusted: dropped=%v", ks.Dropped)
			}
		})
	}
	dup, _ := signing.KeySetJSON([]signing.PublicJWK{j, j})
	if ks, _ := verify.ParseKeySet(dup); ks.Lookup(j.Kid) != nil {
		t.Fatal("duplicate kid trusted")
	}
	if _, err := verify.ParseKeySet([]byte(`{"keys":[],"keys":[]}`)); err == nil {
		t.Fatal("malformed key set accepted")
	}
	ks, err := verify.ParseKeySet(good)
	if err != nil || ks.Lookup(j.Kid) == nil {
		t.Fatalf("good key set: %v", err)
	}
}

func TestKeyNotAfter(t *testing.T) {
	f := newFixture(t)
	var set struct {
		Keys []signing.PublicJWK `json:"keys"`
	}
	if err := jsonUnmarshal(f.keysetJSON, &set); err != nil {
		t.Fatal(err)
	}
	for i := range set.Keys {
		if set.Keys[i].Kid == f.lic.KeyID() {
			set.Keys[i].NotAfter = "2026-03-01T00:00:00Z"
		}
	}
	b, _ := signing.KeySetJSON(set.Keys)
	ks, err := verify.ParseKeySet(b)
	if err != nil {
		t.Fatal(err)
	}
	o := f.opts(f.license(payload())) // issued 2026-01-01: before not_after
	o.KeySet = ks
	if r := verify.Verify(o); r.Status != V {
		t.Fatalf("license signed before not_after: %s %s", r.Status, r.Reason)
	}
	o.LicensePath = f.license(with(payload(), "issued_at", "2026-04-01T00:00:00Z"))
	if r := verify.Verify(o); r.Reason != verify.ReasonInvalid {
		t.Fatalf("license signed after not_after: %s %s", r.Status, r.Reason)
	}
}

func TestStateFileIsPrivateAndForwardOnly(t *testing.T) {
	f := newFixture(t)
	o := f.opts(f.license(payload()))
	o.StatePath = f.dir + "/state.json"
	verify.Verify(o)
	fi, err := os.Stat(o.StatePath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v %v", fi.Mode(), err)
	}
	o.Now = t0.Add(3600e9)
	verify.Verify(o)
	o.Now = t0.Add(1800e9) // back, within skew of nothing: latest must stay
	verify.Verify(o)
	st, _, err := verify.ReadState(o.StatePath)
	if err != nil || !st.LatestSeen.Equal(t0.Add(3600e9)) {
		t.Fatalf("latest seen went backwards: %v %v", st.LatestSeen, err)
	}
}

// Every file of the bad-input corpus in testdata is refused, whatever keys are trusted.
func TestBadCorpusRefused(t *testing.T) {
	f := newFixture(t)
	paths, _ := filepath.Glob("testdata/*")
	if len(paths) < 8 {
		t.Fatalf("corpus too small: %d files", len(paths))
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(filepath.Base(p), "bundle-") {
			if _, err := verify.ParseBundleFile(b, f.ks); err == nil {
				t.Errorf("%s: bundle accepted", p)
			}
			continue
		}
		o := f.opts(p)
		if r := verify.Verify(o); r.Reason != verify.ReasonInvalid {
			t.Errorf("%s: %s %s, want license-invalid", p, r.Status, r.Reason)
		}
	}
}
