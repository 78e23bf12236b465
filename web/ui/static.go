// Package web holds the HTML of the staff UI and portal (templ components) and the
// static assets, embedded so the issuer needs no CDN: staff and customers may be
// air-gapped.
package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
)

//go:embed static
var staticFS embed.FS

// Static is the asset tree (style.css, …).
var Static, _ = fs.Sub(staticFS, "static")

// assetHash is the content hash in asset URLs, so they can be cached for a year.
var assetHash = func() string {
	h := sha256.New()
	_ = fs.WalkDir(Static, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(Static, p)
			h.Write([]byte(p))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// AssetPrefix is the URL prefix of the static assets, content-hashed.
var AssetPrefix = "/static/" + assetHash

// Asset returns the URL of a static file.
func Asset(name string) string { return AssetPrefix + "/" + name }
