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

const usageText = `verifier — check Metrum licenses offline

Usage:
  verifier verify (--license FILE | --token TOKEN) [--product NAME] [--instance-fingerprint FP]
                  [--feature NAME]... [--limit NAME=VALUE]...
                  [--revocation FILE] [--require-current-bundle] [--fail-closed-on-bundle-error]
                  [--lease FILE] [--state FILE] [--keyset FILE] [--now RFC3339] [--json]
  verifier status (--license FILE | --token TOKEN) [--tenants-in-use N] [verify flags]
                                                    plan, status, expiry, tenants, RPS, features
  verifier inspect FILE [--keyset FILE] [--json]    safe summary of a license, bundle or lease
  verifier keys [--keyset FILE] [--json] [--strict] the keys this verifier trusts, with purposes and products
  verifier install (--license FILE | --token TOKEN) --dest PATH [verify flags]
                                                    verify, keep DEST as DEST.previous, write atomically
  verifier usage export --state-dir DIR [--since SEQ] --out FILE
                                                    usage reports not yet accepted, as one upload body
  verifier version [--keyset FILE] [--json]         version, commit, and the key set built in

Without --license or --token, the license is the token in $CORESDK_LICENSE_TOKEN.
Exit status: 0 valid or grace, 1 blocked, 2 usage error.
The trusted keys are embedded at build time (scripts/release-verifier); --keyset FILE replaces them.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
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
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "version":
		return cmdVersion(args[1:], stdout, stderr)
	case "usage":
		return cmdUsage(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	fmt.Fprintf(stderr, "verifier: unknown command %q\n\n%s", args[0], usageText)
	return exitUsage
}

// usageError marks a bad command line (exit 2).
type usageError struct{ msg string }

// Error is the message printed before exit status 2.
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

// errNoKeys is what a verifier built without a release key set says, rather than
// failing every license as signed by an unknown key_id.
const errNoKeys = "this build trusts no keys: build it with scripts/release-verifier, or pass --keyset"

// loadKeySet returns the embedded release key set, or the one in path. needKeys: a
// set with no keys is a usage error that says so (commands that only describe the
// set, keys and version, pass false).
func loadKeySet(path string, needKeys bool) (*verify.KeySet, error) {
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
	if needKeys && len(ks.Keys()) == 0 {
		if path != "" {
			return nil, usageError{fmt.Sprintf("the key set %s has no keys it can trust", path)}
		}
		return nil, usageError{errNoKeys}
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

// String and Set make multi a repeatable flag.
func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

type limits map[string]int64

// String and Set make limits a repeatable NAME=VALUE flag.
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
