package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/metrum/licensing/usage"
	"github.com/metrum/licensing/verify"
)

// cmdUsage is `verifier usage export`: the air-gapped path of spec/usage.md. It reads
// a router's usage folder (a running router may hold it; every write there is one
// atomic rename), verifies the reports not yet accepted, and writes them as the
// upload body {"reports": […]} for a person to carry to the portal or the customer
// API. More than one body holds (1,000 reports, 4 MiB) goes into FILE, FILE.2, … .
func cmdUsage(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "export" {
		return fail(stderr, usageError{"usage: verifier usage export --state-dir DIR [--since SEQ] --out FILE"})
	}
	fs := newFlags("usage export", stderr)
	dir := fs.String("state-dir", "", "the router's usage folder (--usage-dir)")
	since := fs.Int64("since", 0, "only reports with a seq above this one (the issuer's last_seq)")
	out := fs.String("out", "", "file to write")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *dir == "" || *out == "" || fs.NArg() > 0 || *since < 0 {
		return fail(stderr, usageError{"usage export needs --state-dir DIR and --out FILE (and --since ≥ 0)"})
	}
	bodies, n, err := usage.Export(*dir, *since)
	if err != nil {
		return fail(stderr, err)
	}
	if n == 0 {
		fmt.Fprintln(stdout, "no usage reports pending: nothing written")
		return exitOK
	}
	for i, b := range bodies {
		name := partName(*out, i)
		// 0600: the reports name the license and the host's instance.
		if err := verify.WriteFileAtomic(name, b, 0o600); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "wrote %s\n", name)
	}
	fmt.Fprintf(stdout, "%d usage reports exported in %d file(s): upload each in the portal or with POST /v1/usage\n", n, len(bodies))
	return exitOK
}

// partName is FILE for the first body, then FILE with .2, .3 … before its extension.
func partName(out string, i int) string {
	if i == 0 {
		return out
	}
	ext := filepath.Ext(out)
	return fmt.Sprintf("%s.%d%s", strings.TrimSuffix(out, ext), i+1, ext)
}
