package enforce_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The host-side packages' dependency rules, read from `go list -deps` so that a
// wrong import fails here rather than in a review: verify imports nothing else of
// the module; nothing a router embeds links the issuer's internal packages; usage
// and the offline verifier link no HTTP client.
func TestDependencies(t *testing.T) {
	const mod = "github.com/metrum/licensing/"
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", mod+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	for _, d := range deps("verify") {
		if strings.HasPrefix(d, mod) && d != mod+"verify" {
			t.Errorf("verify imports %s", d)
		}
	}
	for _, pkg := range []string{"enforce", "usage", "usage/usagehttp", "examples/router", "cmd/verifier"} {
		for _, d := range deps(pkg) {
			if strings.HasPrefix(d, mod+"internal/") || strings.HasPrefix(d, "github.com/jackc/") || d == "database/sql" {
				t.Errorf("%s links %s", pkg, d)
			}
		}
	}
	for _, pkg := range []string{"usage", "cmd/verifier"} {
		for _, d := range deps(pkg) {
			if d == "net/http" {
				t.Errorf("%s links net/http", pkg)
			}
		}
	}
}
