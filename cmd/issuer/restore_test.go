package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/verify"
)

// leaseProbe asks the issuer at url for a lease of lic for host fp and returns the
// HTTP status.
func leaseProbe(t *testing.T, url, token, lic, fp string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"license_id": lic, "instance_fingerprint": fp})
	req, _ := http.NewRequest("POST", url+"/v1/leases", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// verifyState runs the verifier binary on a license with a bundle and a state file,
// fail-closed, and returns its JSON result.
func verifyState(t *testing.T, bin, keyset, license, bundle, state string) map[string]any {
	t.Helper()
	out, _ := exec.Command(bin, "verify", "--license", license, "--keyset", keyset, "--product", "genai-smart-router",
		"--revocation", bundle, "--fail-closed-on-bundle-error", "--state", state, "--json").Output()
	var r map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("verifier output: %v\n%s", err, out)
	}
	return r
}

// TestRestoreFromBackupUndoesNothing is the restore story of the revocation issue on
// a real PostgreSQL, with pg_dump and pg_restore: back up; then revoke X, issue and
// revoke Z, publish twice, and let hosts fill a pilot's lease slots; restore the
// backup into a new database, recover from the newest published bundle, start the
// issuer and publish. The new sequence is above everything published; X and Z stay
// revoked (in the issuer's bundle, and for a verifier whose state file saw them); and
// no host takes a lease slot the restored database can't count.
func TestRestoreFromBackupUndoesNothing(t *testing.T) {
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (scripts/setup installs postgresql): %v", tool, err)
		}
	}
	c := newCLI(t)
	dir := c.env["ISSUER_DATA_DIR"]
	c.bootstrap("license", "revocation", "lease")
	c.env["ISSUER_AS"] = "maker@m.test"
	var cust struct {
		ID string `json:"id"`
	}
	c.json(&cust, "customer", "create", "--name", "Initech")
	issue := func(tmpl string, extra ...string) (id, token string) {
		var ent, lic struct {
			ID         string `json:"id"`
			LeaseToken string `json:"lease_token"`
		}
		c.json(&ent, append([]string{"entitlement", "create", "--customer", cust.ID, "--template", tmpl}, extra...)...)
		c.run("entitlement", "approve", "--id", ent.ID, "--as", "checker@m.test")
		c.json(&lic, "license", "issue", "--entitlement", ent.ID)
		return lic.ID, lic.LeaseToken
	}
	x, _ := issue("enterprise-annual")
	pilot, token := issue("pilot-30d", "--limit", "max_instances=3")
	c.run("bundle", "publish", "--product", "genai-smart-router", "--as", "checker@m.test")

	dump := filepath.Join(dir, "backup.dump")
	if out, err := exec.Command("pg_dump", "--format=custom", "--file", dump, c.env["DATABASE_URL"]).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}

	// After the backup: X revoked, Z issued and revoked, two bundles, three hosts on
	// the pilot.
	z, _ := issue("enterprise-annual")
	c.env["ISSUER_AS"] = "checker@m.test"
	c.run("license", "revoke", "--id", x, "--reason", "chargeback", "--yes")
	c.run("license", "revoke", "--id", z, "--reason", "fraud", "--yes")
	latest := filepath.Join(dir, "router-latest.json")
	c.run("bundle", "publish", "--product", "genai-smart-router")
	var published struct {
		Sequence int64 `json:"sequence"`
	}
	c.json(&published, "bundle", "publish", "--product", "genai-smart-router", "--out", latest)
	for i := range 3 {
		if got := leaseProbe(t, c.url, token, pilot, fmt.Sprintf("host-%d", i)); got != http.StatusOK {
			t.Fatalf("host-%d on the original issuer: %d", i, got)
		}
	}
	if got := leaseProbe(t, c.url, token, pilot, "host-3"); got != http.StatusConflict {
		t.Fatalf("a fourth host on the original issuer: %d", got)
	}
	keyset := filepath.Join(dir, "keyset.json")
	c.run("keys", "export-keyset", "--out", keyset)
	files := map[string]string{}
	for _, id := range []string{x, z} {
		files[id] = filepath.Join(dir, id+".json")
		c.run("license", "download", "--id", id, "--out", files[id])
	}
	vbin := buildVerifier(t)
	state := filepath.Join(dir, "host-state.json")
	for _, id := range []string{x, z} {
		if r := verifyState(t, vbin, keyset, files[id], latest, state); r["reason"] != verify.ReasonRevoked {
			t.Fatalf("%s with the original's newest bundle: %v", id, r)
		}
	}

	// Restore into a new database and recover, before anything serves from it.
	r := &cli{t: t, env: maps.Clone(c.env)}
	r.env["DATABASE_URL"] = pgtest.EmptyDatabase(t)
	if out, err := exec.Command("pg_restore", "--no-owner", "--dbname", r.env["DATABASE_URL"], dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	r.run("migrate")
	var dry struct {
		Recovered []struct {
			SequenceBefore int64               `json:"sequence_before"`
			SequenceAfter  int64               `json:"sequence_after"`
			Entries        []map[string]string `json:"entries"`
		} `json:"recovered"`
	}
	r.json(&dry, "recover", "--from-bundle", latest, "--dry-run")
	if len(dry.Recovered) != 1 || dry.Recovered[0].SequenceAfter != published.Sequence {
		t.Fatalf("dry run: %+v", dry)
	}
	outcomes := map[string]string{}
	for _, e := range dry.Recovered[0].Entries {
		outcomes[e["license_id"]] = e["outcome"]
	}
	if outcomes[x] != "applied" || outcomes[z] != "unknown" {
		t.Fatalf("dry-run outcomes: %v", outcomes)
	}
	out := r.run("recover", "--from-bundle", latest)
	for _, want := range []string{"applied", x, z, "lease quarantine"} {
		if !strings.Contains(out, want) {
			t.Fatalf("recover output lacks %q:\n%s", want, out)
		}
	}
	r.startIssuer()
	// The demo token files name the issuer they were made on: point checker's at the
	// restored one (its token is made there now), so every command below talks to it.
	r.devToken("checker@m.test")
	r.env["ISSUER_AS"] = "checker@m.test"
	after := filepath.Join(dir, "router-after.json")
	var again struct {
		Sequence int64 `json:"sequence"`
	}
	r.json(&again, "bundle", "publish", "--product", "genai-smart-router", "--out", after)
	if again.Sequence <= published.Sequence {
		t.Fatalf("the restored issuer published #%d, not above #%d", again.Sequence, published.Sequence)
	}
	var shown struct {
		Status string `json:"status"`
	}
	r.json(&shown, "license", "show", "--id", x)
	if shown.Status != "revoked" {
		t.Fatalf("X on the restored issuer: %s", shown.Status)
	}
	for _, id := range []string{x, z} {
		if res := verifyState(t, vbin, keyset, files[id], after, state); res["reason"] != verify.ReasonRevoked {
			t.Fatalf("%s with the restored issuer's bundle: %v", id, res)
		}
		fresh := filepath.Join(t.TempDir(), "state.json") // a host that never saw the old bundles
		if res := verifyState(t, vbin, keyset, files[id], after, fresh); res["reason"] != verify.ReasonRevoked {
			t.Fatalf("%s for a new host with the restored issuer's bundle: %v", id, res)
		}
	}
	if data, _ := os.ReadFile(after); bytes.Contains(data, []byte(`"schema":1`)) {
		t.Fatal("the restored issuer wrote a schema-1 bundle")
	}

	// The lease probe: the restored database knows none of the three hosts, who still
	// hold valid leases; none of them nor any new host takes a slot.
	for i := range 6 {
		if got := leaseProbe(t, r.url, token, pilot, fmt.Sprintf("host-%d", i)); got != http.StatusConflict {
			t.Fatalf("host-%d on the restored issuer during the quarantine: %d (the bound is 3, and 3 hold leases)", i, got)
		}
	}
}
