package server

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
)

// publicRoutes are served to anyone: revocation bundles are meant to be distributed
// to every customer of a product (and mirrored into air-gapped networks), and carry
// only license IDs, statuses and reasons.
func (s *Server) publicRoutes(g *echo.Group) {
	g.GET("/bundles/:product/latest", s.bundle)
	g.GET("/bundles/:product/:sequence", s.bundle)
}

// bundle serves the exact stored bytes of a published bundle. A numbered bundle never
// changes (cache it forever); "latest" moves, so caches must revalidate.
func (s *Server) bundle(c echo.Context) error {
	var seq int64
	if p := c.Param("sequence"); p != "" {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 1 {
			return entitlements.Errorf(entitlements.EINVALID, "a bundle sequence is a positive integer")
		}
		seq = n
	}
	b, err := s.Svc.PublicBundle(c.Request().Context(), c.Param("product"), seq)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	etag := fmt.Sprintf(`"%x"`, b.FileSHA256)
	h.Set("ETag", etag)
	h.Set("X-Bundle-Sequence", strconv.FormatInt(b.Sequence, 10))
	if seq == 0 {
		h.Set("Cache-Control", "public, max-age=60, must-revalidate")
	} else {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="revocation-%s-%d.json"`, b.Product, b.Sequence))
	if c.Request().Header.Get("If-None-Match") == etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, "application/json", b.File)
}
