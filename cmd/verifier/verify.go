package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/metrum/licensing/verify"
)

// cmdVerify runs `verify`, or `install` (mode "install": verify, then write atomically).
func cmdVerify(args []string, stdout, stderr io.Writer, mode string) int {
	name := mode
	if mode == "" {
		name = "verify"
	}
	fs := newFlags(name, stderr)
	var c checkFlags
	c.register(fs)
	dest := fs.String("dest", "", "install: where to write the verified license")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		return fail(stderr, usageError{fmt.Sprintf("unexpected arguments: %v", fs.Args())})
	}
	if mode == "install" && *dest == "" {
		return fail(stderr, usageError{"install needs --dest PATH"})
	}
	o, now, err := c.options()
	if err != nil {
		return fail(stderr, err)
	}
	warnKeys(stderr, o.KeySet)
	var r *verify.Result
	installed := false
	if mode == "install" {
		r, installed, err = install(o, *dest)
		if err != nil {
			return fail(stderr, err)
		}
	} else {
		r = verify.Verify(o)
	}
	if c.asJSON {
		printJSON(stdout, r)
		if r.Detail != "" {
			fmt.Fprintf(stderr, "verifier: %s: %s\n", r.Reason, r.Detail)
		}
	} else {
		printHuman(stdout, r, now)
	}
	if mode == "install" {
		// install succeeds only when it wrote the file: a grace result means the new
		// file itself did not verify, so it is exit 1 here although verify says 0.
		if !installed {
			fmt.Fprintf(stderr, "verifier: not installed: %s is unchanged\n", *dest)
			return exitBlocked
		}
		fmt.Fprintf(stderr, "verifier: installed %s at %s\n", r.LicenseID, *dest)
		return exitOK
	}
	if r.OK() {
		return exitOK
	}
	return exitBlocked
}

// install reads the license once into a temp file beside dest, verifies that very
// copy, and renames it into place only when valid: what is checked is what lands.
// The file it replaces is kept as dest.previous first (the router document's
// renewal step 2, "back up the previous runtime license file"), so a bad renewal is
// one rename away from undone. Grace is not enough to install: grace means the new
// file itself did not verify. installed is true only when dest was written.
func install(o verify.Options, dest string) (r *verify.Result, installed bool, err error) {
	data, err := licenseBytes(o)
	if err != nil {
		// Verify the same unreadable path, so the result names why (license-missing).
		// Nothing is written whatever it says: there are no bytes to install.
		r := verify.Verify(o)
		r.Warnings = append(r.Warnings, "not installed: the license file could not be read")
		return r, false, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".verify-*")
	if err != nil {
		return nil, false, err
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath)
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		return nil, false, errors.Join(werr, cerr)
	}
	o.LicensePath, o.License = tmpPath, nil
	r = verify.Verify(o)
	if r.Status != verify.StatusValid {
		r.Warnings = append(r.Warnings, "not installed: the license is not valid")
		return r, false, nil
	}
	if err := keepPrevious(dest); err != nil {
		return nil, false, fmt.Errorf("not installed: the previous license could not be kept as %s.previous: %w", dest, err)
	}
	if err := verify.WriteFileAtomic(dest, data, 0o644); err != nil {
		return nil, false, err
	}
	return r, true, nil
}

// keepPrevious copies dest, if there is one, to dest.previous (atomically, with its
// mode): the copy is complete before dest is replaced.
func keepPrevious(dest string) error {
	fi, err := os.Stat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	old, err := os.ReadFile(dest)
	if err != nil {
		return err
	}
	return verify.WriteFileAtomic(dest+".previous", old, fi.Mode().Perm())
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return verify.ReadCapped(f, max) // one byte over the cap: Verify says license-invalid
}
