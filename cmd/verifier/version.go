package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/metrum/licensing/keys"
)

// version and commit are stamped by scripts/release-verifier
// (-ldflags "-X main.version=V -X main.commit=C"); a plain build reads what the Go
// toolchain recorded instead.
var (
	version = ""
	commit  = ""
)

func buildVersion() (string, string) {
	v, c := version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		if c == "" {
			var rev, dirty string
			for _, s := range bi.Settings {
				switch {
				case s.Key == "vcs.revision":
					rev = s.Value
				case s.Key == "vcs.modified" && s.Value == "true":
					dirty = "-dirty"
				}
			}
			if rev != "" {
				c = rev + dirty
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
}

// cmdVersion prints the version, the commit and the key set built in: its SHA-256
// (of the exact embedded bytes, so `sha256sum keyset.json` on the release's key set
// file matches it) and its keys, so an operator can tell which keys a binary trusts.
func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", stderr)
	keyset := fs.String("keyset", "", "describe this key set file instead of the one built in")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	data, source := keys.ReleaseKeySet, "embedded"
	if *keyset != "" {
		var err error
		if data, err = os.ReadFile(*keyset); err != nil {
			return fail(stderr, usageError{fmt.Sprintf("--keyset: %v", err)})
		}
		source = *keyset
	}
	ks, err := loadKeySet(*keyset, false)
	if err != nil {
		return fail(stderr, err)
	}
	sum := sha256.Sum256(data)
	fp := "sha256:" + hex.EncodeToString(sum[:])
	v, c := buildVersion()
	var kids []string
	for _, k := range ks.Keys() {
		kids = append(kids, k.KID)
	}
	if *asJSON {
		if kids == nil {
			kids = []string{}
		}
		printJSON(stdout, map[string]any{"version": v, "commit": c, "keyset": map[string]any{"source": source, "sha256": fp, "key_ids": kids}})
		return exitOK
	}
	fmt.Fprintf(stdout, "verifier %s\ncommit:  %s\nkey set: %s %s (%d keys)\n", v, c, source, fp, len(kids))
	if len(kids) == 0 {
		fmt.Fprintln(stdout, "         "+errNoKeys)
	}
	for _, k := range ks.Keys() {
		fmt.Fprintf(stdout, "  %s  %-6s %s  %s\n", k.KID, k.Alg, humanValue(k.Purposes), strings.Join(k.Products, ", "))
	}
	return exitOK
}
