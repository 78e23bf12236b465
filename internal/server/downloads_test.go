package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/portal"
)

// releaseDir writes a release folder as scripts/release-verifier lays it out, plus
// what must never be served: a dot file, a folder, a link out of the folder.
func releaseDir(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		"verifier-v1.3.0-linux-amd64":       []byte("linux binary bytes"),
		"verifier-v1.3.0-windows-amd64.exe": []byte("windows binary bytes"),
		"keyset.json":                       []byte(`{"keys":[]}`),
	}
	var sums strings.Builder
	for _, name := range []string{"keyset.json", "verifier-v1.3.0-linux-amd64", "verifier-v1.3.0-windows-amd64.exe"} {
		h := sha256.Sum256(files[name])
		sums.WriteString(hex.EncodeToString(h[:]) + "  " + name + "\n")
	}
	files["SHA256SUMS"] = []byte(sums.String())
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, ".secret"), []byte("no"), 0o600)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "inner"), []byte("no"), 0o644)
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")); err != nil {
		t.Fatal(err)
	}
	return dir, files
}

// TestReleaseDownloads (customer-api.md v1.1): GET /v1/downloads lists the release
// files with size, SHA-256, version and platform, and nothing else of the folder;
// GET /v1/downloads/{name} gives the exact bytes with the ETag and records the
// delivery (a 304 records nothing); names outside the listing are 404s; no token is
// a 401; the portal's Downloads page lists and serves the same, recorded as the
// portal user.
func TestReleaseDownloads(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme", "ops@acme.test")
	if r := e.api(t, a.token, "/v1/downloads"); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"downloads":[]}` {
		t.Fatalf("without releases.dir: %d %s", r.status, r.body)
	}
	dir, files := releaseDir(t)
	e.portal.Releases = &portal.Releases{Dir: dir}

	r := e.api(t, a.token, "/v1/downloads")
	var list struct {
		Downloads []entitlements.ReleaseFile `json:"downloads"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &list) != nil {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	if len(list.Downloads) != 4 {
		t.Fatalf("listed %d files, want the 4 of the release: %s", len(list.Downloads), r.body)
	}
	for _, f := range list.Downloads {
		h := sha256.Sum256(files[f.Name])
		if f.SHA256 != hex.EncodeToString(h[:]) || f.Size != int64(len(files[f.Name])) || f.Version != "v1.3.0" {
			t.Fatalf("listed %+v", f)
		}
		if want := map[string]string{"verifier-v1.3.0-linux-amd64": "linux/amd64", "verifier-v1.3.0-windows-amd64.exe": "windows/amd64"}[f.Name]; f.Platform != want {
			t.Fatalf("%s: platform %q, want %q", f.Name, f.Platform, want)
		}
	}

	name := "verifier-v1.3.0-linux-amd64"
	h := sha256.Sum256(files[name])
	etag := `"` + hex.EncodeToString(h[:]) + `"`
	before := e.count(t, `SELECT count(*) FROM downloads WHERE what = 'release'`)
	r = e.api(t, a.token, "/v1/downloads/"+name)
	if r.status != 200 || string(r.body) != string(files[name]) || r.header.Get("ETag") != etag ||
		r.header.Get("Content-Type") != "application/octet-stream" || r.header.Get("Content-Disposition") != `attachment; filename="`+name+`"` {
		t.Fatalf("download: %d %v %q", r.status, r.header, r.body)
	}
	if n := e.count(t, `SELECT count(*) FROM downloads WHERE what = 'release' AND file_name = $1 AND customer_id = $2 AND actor_kind = 'customer_token'
		AND license_id IS NULL`, name, a.customer.ID); n != 1 {
		t.Fatalf("%d records of the download", n)
	}
	if r := e.api(t, a.token, "/v1/downloads/"+name, "If-None-Match", etag); r.status != 304 {
		t.Fatalf("If-None-Match: %d", r.status)
	}
	if n := e.count(t, `SELECT count(*) FROM downloads WHERE what = 'release'`); n != before+1 {
		t.Fatalf("a 304 recorded a delivery (%d records)", n-before)
	}
	for _, bad := range []string{".secret", "sub", "passwd", "..%2F..%2Fetc%2Fpasswd", "sub%2Finner", "nope"} {
		if r := e.api(t, a.token, "/v1/downloads/"+bad); r.status != 404 {
			t.Fatalf("%s: %d %s", bad, r.status, r.body)
		}
	}
	if r := e.api(t, "", "/v1/downloads/"+name); r.status != 401 {
		t.Fatalf("without a token: %d", r.status)
	}
	if n := e.count(t, `SELECT count(*) FROM downloads WHERE what = 'release'`); n != before+1 {
		t.Fatal("a refused download was recorded")
	}

	c := e.signIn(t, a.email)
	resp, err := c.Get(e.ts.URL + "/portal/downloads")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	for _, want := range []string{"verifier-v1.3.0-windows-amd64.exe", "Windows x86-64", hex.EncodeToString(h[:]), "v1.3.0", "sha256sum --check"} {
		contains(t, body, want)
	}
	if strings.Contains(body, ".secret") || strings.Contains(body, "passwd") {
		t.Fatal("the page lists files that are not the release's")
	}
	resp, err = c.Get(e.ts.URL + "/portal/downloads/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	if got := readBody(t, resp); resp.StatusCode != 200 || got != string(files["SHA256SUMS"]) {
		t.Fatalf("portal download: %d %q", resp.StatusCode, got)
	}
	if n := e.count(t, `SELECT count(*) FROM downloads WHERE what = 'release' AND file_name = 'SHA256SUMS' AND actor_kind = 'portal_user' AND actor = $1`, a.email); n != 1 {
		t.Fatalf("%d portal records", n)
	}
	// Another customer's token sees the same release (it is the vendor's, not a
	// customer's), recorded as that customer.
	b := e.tenant(t, "Globex", "ops@globex.test")
	if r := e.api(t, b.token, "/v1/downloads/keyset.json"); r.status != 200 {
		t.Fatalf("second customer: %d", r.status)
	}
	if n := e.count(t, `SELECT count(*) FROM downloads WHERE what = 'release' AND customer_id = $1`, b.customer.ID); n != 1 {
		t.Fatalf("second customer's records: %d", n)
	}
}

// TestBrowserDownloadNames (issue 24, item 9): the portal saves a license's files
// under its ID and SKU (no "license (1).json" for the second one); the customer API
// keeps the names its spec fixes.
func TestBrowserDownloadNames(t *testing.T) {
	e := mustPortal(t, 0, 0)
	a := e.tenant(t, "Acme", "ops@acme.test")
	c := e.signIn(t, a.email)
	for what, want := range map[string]string{
		"file":      a.router.ID + "-enterprise-annual.license.json",
		"checklist": a.router.ID + "-enterprise-annual.operator-checklist.md",
	} {
		resp, err := c.Get(e.ts.URL + "/portal/licenses/" + a.router.ID + "/download/" + what)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if got := resp.Header.Get("Content-Disposition"); got != `attachment; filename="`+want+`"` {
			t.Fatalf("portal %s: %q", what, got)
		}
	}
	resp, _ := c.Get(e.ts.URL + "/portal/licenses/" + a.jws.ID)
	contains(t, readBody(t, resp), a.jws.ID+"-team.license.jwk")
	if r := e.api(t, a.token, "/v1/licenses/"+a.router.ID+"/file"); r.header.Get("Content-Disposition") != `attachment; filename="license.json"` {
		t.Fatalf("API: %q", r.header.Get("Content-Disposition"))
	}
}
