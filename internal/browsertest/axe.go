package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// AxeVersion is the axe-core scripts/setup --test installs (npm).
const AxeVersion = "4.14.1"

var (
	axeOnce sync.Once
	axeJS   string
	axeErr  error
)

// axeScript reads axe.min.js: AXE_CORE_JS, else where scripts/setup --test put it.
// Without it the test fails in CI (CI=true) and is skipped elsewhere, saying how to
// install it.
func axeScript(t *testing.T) string {
	t.Helper()
	axeOnce.Do(func() {
		path := os.Getenv("AXE_CORE_JS")
		if path == "" {
			cache := os.Getenv("XDG_CACHE_HOME")
			if cache == "" {
				home, _ := os.UserHomeDir()
				cache = filepath.Join(home, ".cache")
			}
			path = filepath.Join(cache, "metrum-test", "axe", "node_modules", "axe-core", "axe.min.js")
		}
		b, err := os.ReadFile(path)
		axeJS, axeErr = string(b), err
	})
	if axeErr != nil {
		msg := "axe-core not installed: run scripts/setup --test (npm install axe-core@" + AxeVersion + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return axeJS
}

// AxeViolation is one rule axe-core found broken on a page, with where.
type AxeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

func (v AxeViolation) String() string {
	return fmt.Sprintf("%s (%s): %s at %s", v.ID, v.Impact, v.Help, strings.Join(v.Targets, ", "))
}

// Axe runs axe-core (WCAG 2.1 A and AA rules and best practices) on the page the
// browser shows and returns the serious and critical violations.
func Axe(t *testing.T, ctx context.Context) []AxeViolation {
	t.Helper()
	js := axeScript(t)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function(){ if (!window.axe) { `+js+` } return true })()`)); err != nil {
		t.Fatalf("browsertest: inject axe-core: %v", err)
	}
	awaitPromise := func(p *runtime.EvaluateParams) { yes := true; p.AwaitPromise = &yes }
	out, err := chromedp.Run(ctx, chromedp.Evaluate[[]AxeViolation](`axe.run(document, {resultTypes: ["violations"]}).then(r =>
		r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => ({id: v.id, impact: v.impact, help: v.help,
		targets: v.nodes.map(n => n.target.join(" ")).slice(0, 5)})))`, awaitPromise))
	if err != nil {
		t.Fatalf("browsertest: axe.run: %v", err)
	}
	return out
}

// Unreachable returns the page's form controls, buttons and links that Tab never
// focuses (pressing Tab through the whole page, as a keyboard user does), by id or
// name; hidden and disabled ones don't count.
func Unreachable(t *testing.T, ctx context.Context) []string {
	t.Helper()
	want, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(function(){
		window.__focused = new Set();
		document.addEventListener("focusin", e => window.__focused.add(e.target), true);
		const els = [...document.querySelectorAll("a[href], button, input, select, textarea, summary")].filter(e =>
			e.type !== "hidden" && !e.disabled && !e.hidden && e.checkVisibility({checkVisibilityCSS: true, contentVisibilityAuto: true}));
		window.__controls = els;
		return els.map(e => e.id || e.name || e.textContent.trim().slice(0, 30));
	})()`))
	if err != nil {
		t.Fatalf("browsertest: list controls: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.activeElement && document.activeElement.blur(), window.scrollTo(0,0), true)`)); err != nil {
		t.Fatal(err)
	}
	// A date-time field takes several Tab stops of its own: press until every control
	// was focused, or four times the controls' count.
	for i := range 4*len(want) + 20 {
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			t.Fatalf("browsertest: tab: %v", err)
		}
		if i%10 == 9 {
			done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__controls.every(e => window.__focused.has(e))`))
			if err == nil && done {
				break
			}
		}
	}
	missed, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__controls.filter(e => !window.__focused.has(e)).map(e =>
		e.id || e.name || e.textContent.trim().slice(0, 30))`))
	if err != nil {
		t.Fatalf("browsertest: focused controls: %v", err)
	}
	return missed
}
