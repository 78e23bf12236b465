package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/metrum/licensing/internal/entitlements"
)

func TestBundleDownloads(t *testing.T) {
	e := mustServer(t)
	ctx := context.Background()
	checker := &entitlements.Staff{Email: "checker@m.test", Role: entitlements.RoleApprover}
	if resp, _ := http.Get(e.ts.URL + "/v1/bundles/genai-smart-router/latest"); resp.StatusCode != http.StatusNotFound ||
		resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("before any bundle: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	first, err := e.svc.PublishBundle(ctx, "genai-smart-router", checker)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ChangeStatus(ctx, e.license.ID, entitlements.ActionRevoke, "test", first.IssuedAt, checker); err != nil {
		t.Fatal(err)
	}
	second, err := e.svc.PublishBundle(ctx, "genai-smart-router", checker)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.ts.URL + "/v1/bundles/genai-smart-router/latest")
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != 200 || body != string(second.File) || resp.Header.Get("X-Bundle-Sequence") != fmt.Sprint(second.Sequence) {
		t.Fatalf("latest: %d seq %s", resp.StatusCode, resp.Header.Get("X-Bundle-Sequence"))
	}
	etag := resp.Header.Get("ETag")
	req, _ := http.NewRequest("GET", e.ts.URL+"/v1/bundles/genai-smart-router/latest", nil)
	req.Header.Set("If-None-Match", etag)
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation with the current ETag: %d", resp.StatusCode)
	}
	resp, _ = http.Get(e.ts.URL + fmt.Sprintf("/v1/bundles/genai-smart-router/%d", first.Sequence))
	if body := readBody(t, resp); body != string(first.File) || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Fatalf("bundle #%d: %q", first.Sequence, resp.Header.Get("Cache-Control"))
	}
	for path, want := range map[string]int{"/v1/bundles/genai-smart-router/0": 400, "/v1/bundles/genai-smart-router/x": 400,
		"/v1/bundles/genai-smart-router/99": 404, "/v1/bundles/no-such-product/latest": 404} {
		if resp, _ := http.Get(e.ts.URL + path); resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
