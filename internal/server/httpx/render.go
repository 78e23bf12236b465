package httpx

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
)

// Render writes a templ component with a status.
func Render(c echo.Context, status int, comp templ.Component) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return comp.Render(c.Request().Context(), c.Response())
}

// SendFile answers a delivered file as an attachment with its name, byte for byte.
func SendFile(c echo.Context, f *entitlements.File, contentType string) error {
	h := c.Response().Header()
	h.Set("Content-Disposition", `attachment; filename="`+f.Name+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, contentType, f.Bytes)
}

// SendBrowserFile sends a license's file to a browser, under its browser name
// (lic_…-SKU.license.json) when it has one.
func SendBrowserFile(c echo.Context, f *entitlements.File) error {
	g := *f
	if g.BrowserName != "" {
		g.Name = g.BrowserName
	}
	return SendFile(c, &g, g.ContentType)
}

// SendRelease streams a release file: application/octet-stream, as an attachment
// under its name, ETag its SHA-256 (customer-api.md v1.1).
func SendRelease(c echo.Context, f *entitlements.ReleaseFile, r io.Reader) error {
	h := c.Response().Header()
	h.Set("Content-Disposition", `attachment; filename="`+f.Name+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", `"`+f.SHA256+`"`)
	h.Set("Content-Length", strconv.FormatInt(f.Size, 10))
	return c.Stream(http.StatusOK, "application/octet-stream", r)
}

// NoStore keeps pages (licenses, secrets shown once) out of shared caches and the
// browser's back-forward cache.
func NoStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		return next(c)
	}
}

// CacheForever marks content-addressed assets immutable. It serves files only: a
// folder (a path ending in /) is not found, never a listing.
func CacheForever(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		h.ServeHTTP(w, r)
	})
}
