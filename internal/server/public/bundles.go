package public

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
)

// Routes are served to anyone: revocation bundles are meant to be distributed
// to every customer of a product (and mirrored into air-gapped networks), and carry
// only license IDs, statuses and reasons.
func (s *Handler) Routes(g *echo.Group) {
	g.GET("/bundles/:product/latest", s.bundle)
	g.GET("/bundles/:product/:sequence", s.bundle)
	if s.Purchase != nil {
		g.POST("/stripe/webhook", s.stripeWebhook)
	}
}

// bundle serves the exact stored bytes of a published bundle. A numbered bundle never
// changes (cache it forever); "latest" moves, so caches must revalidate.
func (s *Handler) bundle(c echo.Context) error {
	var seq int64
	if p := c.Param("sequence"); p != "" {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 1 {
			return entitlements.Errorf(entitlements.EINVALID, "a bundle sequence is a positive integer")
		}
		seq = n
	}
	b, err := s.Bundles.PublicBundle(c.Request().Context(), c.Param("product"), seq)
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

// maxWebhookBody bounds a Stripe event (they are a few KiB).
const maxWebhookBody = 256 << 10

// stripeWebhook verifies the signature over the raw body with stripe-go (default
// tolerance) and handles the event once. A bad signature is 400 and changes nothing.
func (s *Handler) stripeWebhook(c echo.Context) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxWebhookBody+1))
	if err != nil || len(body) > maxWebhookBody {
		return entitlements.Errorf(entitlements.EINVALID, "the webhook body is unreadable or too large")
	}
	outcome, err := s.Purchase.HandleWebhook(c.Request().Context(), body, c.Request().Header.Get("Stripe-Signature"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"received": "yes", "outcome": outcome})
}
