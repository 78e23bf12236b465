// Package browsertest starts headless Chromium (Debian's, installed by scripts/setup
// --test) for tests of what a person does in the UI.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// New returns a chromedp context for one test, with a fresh profile. The browser is
// closed when the test ends.
func New(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("CHROMIUM_PATH")
	if path == "" {
		var err error
		if path, err = exec.LookPath("chromium"); err != nil {
			t.Fatal("browsertest: chromium not found: run scripts/setup --test (apt-get install -y chromium)")
		}
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir()), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("browsertest: start chromium: %v", err)
	}
	return ctx
}

// Screenshot takes a full-page PNG of what the browser shows. With SCREENSHOT_DIR set
// it is written there as NAME.png, for a person to look at; the test fails if the
// browser gives no image.
func Screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("browsertest: screenshot %s: %v", name, err)
	}
	if dir := os.Getenv("SCREENSHOT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Fetch runs fetch(path) in the page, with its cookies, and returns the status and
// body text: how a test reads a download the way the signed-in browser gets it.
func Fetch(t *testing.T, ctx context.Context, path string) (int, string) {
	t.Helper()
	type result struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	awaitPromise := func(p *runtime.EvaluateParams) { yes := true; p.AwaitPromise = &yes }
	r, err := chromedp.Run(ctx, chromedp.Evaluate[result](`fetch(`+strconv.Quote(path)+`).then(async r => ({status: r.status, body: await r.text()}))`, awaitPromise))
	if err != nil {
		t.Fatalf("browsertest: fetch %s: %v", path, err)
	}
	return r.Status, r.Body
}
