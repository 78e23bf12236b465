package enforce

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/metrum/licensing/verify"
)

// Source is where a document (the license, the revocation bundle, the lease) comes
// from: a file, which the Enforcer also watches for changes, bytes held in memory, a
// reader opened at each check, or an environment variable (CORESDK_LICENSE_TOKEN).
// The zero Source is none.
type Source struct {
	path string
	data []byte
	open func() (io.ReadCloser, error)
	env  string
}

// File reads the document from path at each check, and watches it: a changed, replaced
// or deleted file triggers a check.
func File(path string) Source { return Source{path: path} }

// Bytes is a document held in memory; nil is an absent one.
func Bytes(b []byte) Source {
	if b == nil {
		return Source{data: nil, open: func() (io.ReadCloser, error) { return nil, fs.ErrNotExist }}
	}
	return Source{data: b}
}

// Reader opens the document at each check; an error that is fs.ErrNotExist means
// absent, any other that it exists but can't be read.
func Reader(open func() (io.ReadCloser, error)) Source { return Source{open: open} }

// Env reads the document from an environment variable at each check; unset or empty
// is absent.
func Env(name string) Source { return Source{env: name} }

// IsZero reports whether s is no source at all.
func (s Source) IsZero() bool { return s.path == "" && s.data == nil && s.open == nil && s.env == "" }

// String names the source for logs, never its content.
func (s Source) String() string {
	switch {
	case s.path != "":
		return s.path
	case s.env != "":
		return "$" + s.env
	case s.open != nil:
		return "(reader)"
	case s.data != nil:
		return "(bytes)"
	}
	return "(none)"
}

// read returns the document, at most max+1 bytes (verify refuses one over the cap):
// nil and no error when absent, an error when it exists but can't be read.
func (s Source) read(max int64) ([]byte, error) {
	switch {
	case s.path != "":
		f, err := os.Open(s.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return verify.ReadCapped(f, max)
	case s.env != "":
		v := os.Getenv(s.env)
		if v == "" {
			return nil, nil
		}
		return []byte(v), nil
	case s.open != nil:
		rc, err := s.open()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return verify.ReadCapped(rc, max)
	case s.data != nil:
		if int64(len(s.data)) > max {
			return s.data[:max+1], nil
		}
		return s.data, nil
	}
	return nil, nil
}

// stamp is what a poll compares to notice a changed file: whether it exists, its size,
// its modification time and its identity (a file replaced by rename is another file,
// whatever its time says).
type stamp struct {
	exists bool
	size   int64
	mod    time.Time
	info   os.FileInfo
}

func (a stamp) same(b stamp) bool {
	if a.exists != b.exists {
		return false
	}
	if !a.exists {
		return true
	}
	return a.size == b.size && a.mod.Equal(b.mod) && os.SameFile(a.info, b.info)
}

func (s Source) stamp() (stamp, bool) {
	if s.path == "" {
		return stamp{}, false
	}
	fi, err := os.Stat(s.path) // follows symlinks: a Kubernetes secret's ..data swap shows
	if err != nil {
		return stamp{}, true
	}
	return stamp{exists: true, size: fi.Size(), mod: fi.ModTime(), info: fi}, true
}
