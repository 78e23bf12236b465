package portal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

// Releases is the folder of the verifier release customers download (releases.dir:
// what scripts/release-verifier --out wrote): every regular file in it, listed with
// its size and SHA-256, nothing below it, no dot files, no links.
type Releases struct {
	Dir string

	mu     sync.Mutex
	hashes map[string]releaseHash // by name, valid while size and mtime are unchanged
}

type releaseHash struct {
	size    int64
	modTime time.Time
	sum     string
}

// releaseName is what a served file may be called: the release script's names.
var releaseName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)

// verifierName is verifier-VERSION-OS-ARCH[.exe].
var verifierName = regexp.MustCompile(`^verifier-(v?[0-9][0-9A-Za-z.+-]*)-([a-z0-9]+)-([a-z0-9]+)(\.exe)?$`)

// ErrNoReleases: this issuer publishes no release folder.
var ErrNoReleases = entitlements.Errorf(entitlements.ENOTFOUND, "no verifier release is published on this issuer (releases.dir is not set)")

// list reads the folder: the release files, by name.
func (r *Releases) list() ([]entitlements.ReleaseFile, error) {
	if r == nil || r.Dir == "" {
		return nil, ErrNoReleases
	}
	entries, err := os.ReadDir(r.Dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil // configured, nothing released yet: an empty list
		}
		return nil, &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "the release folder can't be read", Err: err}
	}
	var out []entitlements.ReleaseFile
	version := ""
	for _, e := range entries {
		if !e.Type().IsRegular() || !releaseName.MatchString(e.Name()) {
			continue
		}
		f, err := r.file(e.Name())
		if err != nil {
			return nil, err
		}
		if m := verifierName.FindStringSubmatch(f.Name); m != nil {
			f.Version, f.Platform = m[1], m[2]+"/"+m[3]
			if version == "" || version == f.Version {
				version = f.Version
			} else {
				version = "mixed"
			}
		}
		out = append(out, f)
	}
	for i := range out {
		if out[i].Platform == "" && version != "mixed" {
			out[i].Version = version // SHA256SUMS and keyset.json belong to the release
		}
	}
	slices.SortFunc(out, func(a, b entitlements.ReleaseFile) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// file describes one release file, hashing it unless its size and mtime are those
// of the last hash.
func (r *Releases) file(name string) (entitlements.ReleaseFile, error) {
	p := filepath.Join(r.Dir, name)
	st, err := os.Lstat(p)
	if err != nil || !st.Mode().IsRegular() {
		return entitlements.ReleaseFile{}, entitlements.NotFound("download", name)
	}
	r.mu.Lock()
	h, ok := r.hashes[name]
	r.mu.Unlock()
	if !ok || h.size != st.Size() || !h.modTime.Equal(st.ModTime()) {
		sum, err := hashFile(p)
		if err != nil {
			return entitlements.ReleaseFile{}, &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "a release file can't be read", Err: err}
		}
		h = releaseHash{size: st.Size(), modTime: st.ModTime(), sum: sum}
		r.mu.Lock()
		if r.hashes == nil {
			r.hashes = map[string]releaseHash{}
		}
		r.hashes[name] = h
		r.mu.Unlock()
	}
	return entitlements.ReleaseFile{Name: name, Size: h.size, SHA256: h.sum}, nil
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Downloads lists the verifier release (customer-api.md v1.1 `GET /v1/downloads`) for
// any signed-in portal user or customer API token.
func (s *Service) Downloads(ctx context.Context, p *entitlements.Principal) ([]entitlements.ReleaseFile, error) {
	if p == nil || p.CustomerID == "" {
		return nil, entitlements.Errorf(entitlements.EFORBIDDEN, "downloads are for a customer's portal user or API token")
	}
	return s.Releases.list()
}

// OpenDownload opens one release file for the principal and records the delivery
// first (as a license download: who, what, when, from where). The bytes served are
// the ones hashed: a file replaced between the listing and the download is hashed
// again from the open file, and the answer names that hash.
func (s *Service) OpenDownload(ctx context.Context, p *entitlements.Principal, name string) (*entitlements.ReleaseFile, io.ReadSeekCloser, error) {
	list, err := s.Downloads(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	i := slices.IndexFunc(list, func(f entitlements.ReleaseFile) bool { return f.Name == name })
	if i < 0 {
		return nil, nil, entitlements.NotFound("download", name)
	}
	f, err := os.Open(filepath.Join(s.Releases.Dir, name))
	if err != nil {
		return nil, nil, entitlements.NotFound("download", name)
	}
	rf := list[i]
	if err := checkOpened(f, &rf); err != nil {
		f.Close()
		return nil, nil, err
	}
	if err := s.store.RecordDownload(ctx, &entitlements.Download{CustomerID: p.CustomerID, Product: "verifier", What: entitlements.WhatRelease,
		FileName: name, ActorKind: p.Kind, Actor: p.Actor, ClientAddr: p.Addr}); err != nil {
		f.Close()
		return nil, nil, err
	}
	return &rf, f, nil
}

// checkOpened makes the description match the open file: its size, and its hash
// when the size or mtime moved since the listing.
func checkOpened(f *os.File, rf *entitlements.ReleaseFile) error {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return entitlements.NotFound("download", rf.Name)
	}
	if st.Size() == rf.Size {
		return nil
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "a release file can't be read", Err: err}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("portal: rewind %s: %w", rf.Name, err)
	}
	rf.Size, rf.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	return nil
}
