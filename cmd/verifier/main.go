// Command verifier checks Metrum licenses, revocation bundles and leases offline, on
// customer hosts, with the release public keys embedded at build time. It never opens
// a network connection and never needs a private key.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/metrum/licensing/keys"
	"github.com/metrum/licensing/verify"
)

// Exit statuses of formats.md section 8.
const (
	exitOK      = 0 // valid or grace
	exitBlocked = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `verifier — check Metrum licenses offline

Usage:
  verifier verify --license FILE [--product NAME] [--instance-fingerprint FP]
                  [--feature NAME]... [--limit NAME=VALUE]...
                  [--revocation FILE] [--require-current-bundle] [--fail-closed-on-bundle-error]
                  [--lease FILE] [--state FILE] [--keyset FILE] [--now RFC3339] [--json]
  verifier inspect FILE [--keyset FILE] [--json]    safe summary of a license, bundle or lease
  verifier keys [--keyset FILE] [--json]            the keys this verifier trusts, with purposes and products
  verifier install --license FILE --dest PATH [verify flags]   verify, then write atomically

Exit status: 0 valid or grace, 1 blocked, 2 usage error.
The trusted keys are embedded at build time; --keyset FILE replaces them.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "verify":
		return cmdVerify(args[1:], stdout, stderr, "")
	case "install":
		return cmdVerify(args[1:], stdout, stderr, "install")
	case "inspect":
		return cmdInspect(args[1:], stdout, stderr)
	case "keys":
		return cmdKeys(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "verifier: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// usageError marks a bad command line (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseInterleaved parses flags that may come before or after positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// loadKeySet returns the embedded release key set, or the one in path.
func loadKeySet(path string) (*verify.KeySet, error) {
	data := keys.ReleaseKeySet
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, usageError{fmt.Sprintf("--keyset: %v", err)}
		}
	}
	ks, err := verify.ParseKeySet(data)
	if err != nil {
		return nil, usageError{fmt.Sprintf("key set: %v", err)}
	}
	return ks, nil
}

// warnKeys says, on standard error, which keys of the set trust nothing: entries that
// were refused, and keys without products (a key set exported before v1.2).
func warnKeys(stderr io.Writer, ks *verify.KeySet) {
	for _, d := range ks.Dropped {
		fmt.Fprintln(stderr, "verifier: warning: key set entry not trusted:", d)
	}
	for _, kid := range ks.NoProducts() {
		fmt.Fprintf(stderr, "verifier: warning: key %s has no products: it trusts nothing\n", kid)
	}
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

type limits map[string]int64

func (l limits) String() string { return fmt.Sprint(map[string]int64(l)) }
func (l limits) Set(s string) error {
	name, val, ok := strings.Cut(s, "=")
	n, err := strconv.ParseInt(val, 10, 64)
	if !ok || name == "" || err != nil || n < 0 {
		return fmt.Errorf("want NAME=VALUE with a non-negative integer VALUE, got %q", s)
	}
	l[name] = n
	return nil
}

func printJSON(w io.Writer, v any) {
	b, _ := json.Marshal(v, jsontext.WithIndent("  "), json.Deterministic(true))
	fmt.Fprintf(w, "%s\n", b)
}

func parseNow(s string) (time.Time, error) {
	if s == "" {
		return time.Now().UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageError{fmt.Sprintf("--now %q: not RFC 3339", s)}
	}
	return t.UTC(), nil
}

func fail(stderr io.Writer, err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "verifier:", ue.msg)
		return exitUsage
	}
	fmt.Fprintln(stderr, "verifier:", err)
	return exitBlocked
}
