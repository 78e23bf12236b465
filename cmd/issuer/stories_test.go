package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metrum/licensing/verify"
)

// verifierRun runs the verifier binary with --json and returns its result and exit
// status.
func verifierRun(t *testing.T, bin string, args ...string) (map[string]any, int) {
	t.Helper()
	cmd := exec.Command(bin, append(append([]string{"verify"}, args...), "--json")...)
	out, _ := cmd.Output()
	var r map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("verifier %v: %v\n%s", args, err, out)
	}
	return r, cmd.ProcessState.ExitCode()
}

// storyIssuer is an issuer with router and CoreSDK keys of every purpose, a customer,
// and helpers to issue and to download.
type storyIssuer struct {
	*cli
	dir, keyset, verifier, customer string
}

func newStoryIssuer(t *testing.T) *storyIssuer {
	c := newCLI(t)
	c.bootstrap("license", "revocation", "lease")
	c.run("keys", "generate", "--product", "coresdk", "--purpose", "license", "--activate")
	c.run("keys", "generate", "--product", "coresdk", "--purpose", "revocation", "--activate")
	s := &storyIssuer{cli: c, dir: c.env["ISSUER_DATA_DIR"]}
	s.keyset = filepath.Join(s.dir, "keyset.json")
	c.run("keys", "export-keyset", "--out", s.keyset)
	s.verifier = buildVerifier(t)
	c.env["ISSUER_AS"] = "maker@m.test"
	var cust struct {
		ID string `json:"id"`
	}
	c.json(&cust, "customer", "create", "--name", "Soylent")
	s.customer = cust.ID
	return s
}

func (s *storyIssuer) issue(tmpl string) string {
	var ent, lic struct {
		ID string `json:"id"`
	}
	s.json(&ent, "entitlement", "create", "--customer", s.customer, "--template", tmpl)
	s.run("entitlement", "approve", "--id", ent.ID, "--as", "checker@m.test")
	s.json(&lic, "license", "issue", "--entitlement", ent.ID)
	return lic.ID
}

func (s *storyIssuer) successor(kind, of string, extra ...string) string {
	var ent, lic struct {
		ID string `json:"id"`
	}
	s.json(&ent, append([]string{"license", kind, "--id", of}, extra...)...)
	s.run("entitlement", "approve", "--id", ent.ID, "--as", "checker@m.test")
	s.json(&lic, "license", "issue", "--entitlement", ent.ID)
	return lic.ID
}

func (s *storyIssuer) file(id string) string {
	p := filepath.Join(s.dir, id+".json")
	s.run("license", "download", "--id", id, "--out", p)
	return p
}

func (s *storyIssuer) publish(product, name string) (string, int64) {
	p := filepath.Join(s.dir, name)
	var b struct {
		Sequence int64 `json:"sequence"`
	}
	s.json(&b, "bundle", "publish", "--product", product, "--out", p, "--as", "checker@m.test")
	return p, b.Sequence
}

// TestStoryAnotherProductsBundle (story 1): a revoked router license, given the newer
// CoreSDK bundle of the same issuer under the strictest settings, is blocked as
// substitution, not valid; and that bundle does not move the router's sequence in the
// state file, so the router's genuine bundle still applies afterwards.
func TestStoryAnotherProductsBundle(t *testing.T) {
	s := newStoryIssuer(t)
	lic := s.issue("enterprise-annual")
	s.run("license", "revoke", "--id", lic, "--reason", "chargeback", "--yes", "--as", "checker@m.test")
	router, _ := s.publish("genai-smart-router", "router.json")
	coresdk, _ := s.publish("coresdk", "coresdk.json") // newer, lists none of the router's licenses
	file, state := s.file(lic), filepath.Join(s.dir, "state.json")
	strict := []string{"--license", file, "--keyset", s.keyset, "--product", "genai-smart-router", "--state", state,
		"--require-current-bundle", "--fail-closed-on-bundle-error"}
	r, code := verifierRun(t, s.verifier, append(strict, "--revocation", coresdk)...)
	if code != 1 || r["reason"] != verify.ReasonRevocationCheckFailed || r["grace_active"] != false {
		t.Fatalf("the router license with the CoreSDK bundle: exit %d %v", code, r)
	}
	r, code = verifierRun(t, s.verifier, append(strict, "--revocation", router)...)
	if code != 1 || r["reason"] != verify.ReasonRevoked {
		t.Fatalf("then with its own bundle: exit %d %v (the CoreSDK bundle must not have moved its sequence)", code, r)
	}
}

// TestStoryRevokedSuccessor (story 3): renew, top up, revoke the top-up (a
// chargeback): the renewal and the original are revoked with it and block at once,
// not 72 h later; --only would have spared them, and says until when.
func TestStoryRevokedSuccessor(t *testing.T) {
	s := newStoryIssuer(t)
	orig := s.issue("enterprise-annual")
	renewal := s.successor("renew", orig)
	topUp := s.successor("top-up", renewal, "--template", "credit-pack-5m")
	out, errOut, err := s.try("license", "revoke", "--id", topUp, "--reason", "chargeback", "--as", "checker@m.test")
	// Unconfirmed (no input): nothing changed, but the prompt named every license.
	if err == nil || !strings.Contains(errOut, renewal) || !strings.Contains(errOut, orig) {
		t.Fatalf("the confirmation does not name the chain: %v\n%s%s", err, out, errOut)
	}
	var res struct {
		Status  string `json:"status"`
		Chained []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"chained"`
	}
	s.json(&res, "license", "revoke", "--id", topUp, "--reason", "chargeback", "--yes", "--as", "checker@m.test")
	if res.Status != "revoked" || len(res.Chained) != 2 {
		t.Fatalf("revoke with the chain: %+v", res)
	}
	bundle, _ := s.publish("genai-smart-router", "bundle.json")
	now := verify.FormatTime(time.Now().Add(time.Hour)) // inside the 72 h changeover
	for _, id := range []string{orig, renewal, topUp} {
		r, code := verifierRun(t, s.verifier, "--license", s.file(id), "--keyset", s.keyset, "--product", "genai-smart-router",
			"--revocation", bundle, "--require-current-bundle", "--fail-closed-on-bundle-error", "--now", now)
		if code != 1 || r["reason"] != verify.ReasonRevoked {
			t.Fatalf("%s after the top-up's chargeback: exit %d %v", id, code, r)
		}
	}

	// --only: a second chain, the top-up revoked alone; the renewal keeps working to
	// the end of its changeover, and the prompt says when it stops.
	orig2 := s.issue("enterprise-annual")
	renewal2 := s.successor("renew", orig2)
	topUp2 := s.successor("top-up", renewal2, "--template", "credit-pack-5m")
	_, errOut, _ = s.try("license", "revoke", "--id", topUp2, "--reason", "chargeback", "--only", "--as", "checker@m.test")
	if !strings.Contains(errOut, renewal2+" (enterprise-annual), which it replaced, keeps working until") {
		t.Fatalf("--only does not say when the renewal stops:\n%s", errOut)
	}
	s.json(&res, "license", "revoke", "--id", topUp2, "--reason", "chargeback", "--only", "--yes", "--as", "checker@m.test")
	if len(res.Chained) != 0 {
		t.Fatalf("--only chained %+v", res.Chained)
	}
	bundle, _ = s.publish("genai-smart-router", "bundle2.json")
	r, code := verifierRun(t, s.verifier, "--license", s.file(renewal2), "--keyset", s.keyset, "--product", "genai-smart-router",
		"--revocation", bundle, "--require-current-bundle", "--fail-closed-on-bundle-error", "--now", now)
	if code != 0 || r["status"] != "valid" {
		t.Fatalf("the spared renewal in its changeover: exit %d %v", code, r)
	}
}

// TestStoryStaleBundle (story 4): a stale bundle that lists a revoked license still
// revokes it under --require-current-bundle without --fail-closed-on-bundle-error
// (turning on the stricter setting must never weaken the check).
func TestStoryStaleBundle(t *testing.T) {
	s := newStoryIssuer(t)
	lic := s.issue("enterprise-annual")
	s.run("license", "revoke", "--id", lic, "--reason", "fraud", "--yes", "--as", "checker@m.test")
	bundle, _ := s.publish("genai-smart-router", "bundle.json")
	later := verify.FormatTime(time.Now().Add(10 * 24 * time.Hour)) // past the bundle's 7-day life
	file := s.file(lic)
	for _, flags := range [][]string{{}, {"--require-current-bundle"}} {
		args := append([]string{"--license", file, "--keyset", s.keyset, "--product", "genai-smart-router", "--revocation", bundle, "--now", later}, flags...)
		r, code := verifierRun(t, s.verifier, args...)
		if code != 1 || r["reason"] != verify.ReasonRevoked {
			t.Fatalf("stale bundle, flags %v: exit %d %v", flags, code, r)
		}
	}
	// And a license the stale bundle does not list: with --require-current-bundle it
	// goes on with a warning (no fail-closed), and is valid.
	other := s.issue("enterprise-annual")
	r, code := verifierRun(t, s.verifier, "--license", s.file(other), "--keyset", s.keyset, "--product", "genai-smart-router",
		"--revocation", bundle, "--require-current-bundle", "--now", later)
	if code != 0 || r["status"] != "valid" || len(r["warnings"].([]any)) == 0 {
		t.Fatalf("an unlisted license with a stale bundle: exit %d %v", code, r)
	}
	if _, err := os.Stat(bundle); err != nil {
		t.Fatal(err)
	}
}
