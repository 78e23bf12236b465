// Package archtest checks the layering rules of docs/architecture.md by reading
// `go list` and the source: a wrong import, a role decision outside the domain, or a
// store built outside cmd fails CI instead of a review.
package archtest

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/metrum/licensing"

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	Deps       []string
	GoFiles    []string
}

// packages lists every package of the module with its direct imports and deps.
func packages(t *testing.T) map[string]*pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps=false", "-json", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	all := map[string]*pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		all[p.ImportPath] = &p
	}
	if len(all) < 20 {
		t.Fatalf("go list found only %d packages", len(all))
	}
	return all
}

func under(path, prefix string) bool {
	return path == module+"/"+prefix || strings.HasPrefix(path, module+"/"+prefix+"/")
}

func ours(list []string) []string {
	var out []string
	for _, p := range list {
		if strings.HasPrefix(p, module+"/") || p == module {
			out = append(out, p)
		}
	}
	return out
}

func has(list []string, pred func(string) bool) []string {
	var out []string
	for _, p := range list {
		if pred(p) {
			out = append(out, p)
		}
	}
	return out
}

// TestLayering: the import rules of docs/architecture.md.
func TestLayering(t *testing.T) {
	all := packages(t)
	pgx := func(p string) bool { return strings.HasPrefix(p, "github.com/jackc/pgx") }
	http := func(p string) bool {
		return strings.HasPrefix(p, "github.com/labstack/echo") || strings.HasPrefix(p, "github.com/a-h/templ") ||
			p == module+"/web" || strings.HasPrefix(p, module+"/web/")
	}
	type rule struct {
		name  string
		match func(string) bool
		bad   func(p *pkg) []string
	}
	rules := []rule{
		{"verify imports nothing of the module", func(p string) bool { return under(p, "verify") },
			func(p *pkg) []string {
				return has(ours(p.Deps), func(d string) bool { return !under(d, "verify") })
			}},
		{"entitlements imports nothing of the module but verify", func(p string) bool { return under(p, "internal/entitlements") },
			func(p *pkg) []string {
				return has(ours(p.Deps), func(d string) bool { return !under(d, "verify") && !under(d, "internal/entitlements") })
			}},
		{"services never import echo, templ or web", func(p string) bool {
			return under(p, "internal/issuance") || under(p, "internal/leases") || under(p, "internal/portal") || under(p, "internal/purchase") ||
				under(p, "internal/metering")
		}, func(p *pkg) []string { return has(p.Deps, http) }},
		{"internal/server never imports storage or pgx", func(p string) bool { return under(p, "internal/server") },
			func(p *pkg) []string {
				return has(p.Imports, func(d string) bool { return pgx(d) || under(d, "internal/storage") })
			}},
		{"web imports only web/ui and entitlements of the module", func(p string) bool { return under(p, "web") },
			func(p *pkg) []string {
				return has(ours(p.Imports), func(d string) bool { return !under(d, "web/ui") && !under(d, "internal/entitlements") })
			}},
		{"staffapi and staffclient never link pgx", func(p string) bool {
			return under(p, "internal/staffapi") || under(p, "internal/staffclient")
		}, func(p *pkg) []string { return has(p.Deps, pgx) }},
	}
	for _, r := range rules {
		n := 0
		for path, p := range all {
			if !r.match(path) {
				continue
			}
			n++
			if bad := r.bad(p); len(bad) > 0 {
				t.Errorf("%s: %s imports %v", r.name, path, bad)
			}
		}
		if n == 0 {
			t.Errorf("%s: no package matched (the rule checks nothing)", r.name)
		}
	}
}

// walk parses every non-test, non-generated Go file of the module's packages.
func walk(t *testing.T, fn func(path, file string, f *ast.File)) {
	t.Helper()
	for path, p := range packages(t) {
		for _, name := range p.GoFiles {
			if strings.HasSuffix(name, "_templ.go") {
				continue
			}
			file := filepath.Join(p.Dir, name)
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			fn(path, file, f)
		}
	}
}

// TestRoleDecisionsAreTheDomains: no code outside internal/entitlements compares
// roles itself (Role.AtLeast, Role == …): every decision is entitlements.Require or a
// domain Can… rule, and pages get booleans from entitlements.PermissionsOf.
func TestRoleDecisionsAreTheDomains(t *testing.T) {
	checked := 0
	walk(t, func(path, file string, f *ast.File) {
		if under(path, "internal/entitlements") {
			return
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if n.Sel.Name == "AtLeast" {
					t.Errorf("%s: a role decision outside the domain (AtLeast): use entitlements.Require or a Can… rule", file)
				}
			case *ast.BinaryExpr:
				// A staff role compared with one of the domain's roles (Patroni's member
				// roles and the like are other things called role).
				for _, side := range []ast.Expr{n.X, n.Y} {
					sel, ok := side.(*ast.SelectorExpr)
					if !ok || (n.Op != token.EQL && n.Op != token.NEQ) {
						continue
					}
					if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "entitlements" && strings.HasPrefix(sel.Sel.Name, "Role") {
						t.Errorf("%s: a role compared outside the domain: use entitlements.Require", file)
					}
				}
			}
			return true
		})
	})
	if checked < 50 {
		t.Fatalf("only %d files checked", checked)
	}
}

// TestOnlyCmdBuildsAStore: storage.Open is called from cmd/* and the test helper only;
// everything else gets services.
func TestOnlyCmdBuildsAStore(t *testing.T) {
	calls := 0
	walk(t, func(path, file string, f *ast.File) {
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := c.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Open" {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "storage" {
				calls++
				if !under(path, "cmd") && !slices.Contains([]string{module + "/internal/pgtest"}, path) {
					t.Errorf("%s builds a storage.Store: only cmd/* and internal/pgtest may", file)
				}
			}
			return true
		})
	})
	if calls == 0 {
		t.Fatal("no storage.Open found at all: the check looks at nothing")
	}
}
