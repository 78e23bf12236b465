// Package public is what anyone may fetch or post: revocation bundles (public by
// design) and Stripe's signed webhook.
package public

import (
	"context"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/purchase"
)

// Bundles serves published bundles.
type Bundles interface {
	PublicBundle(ctx context.Context, product string, sequence int64) (*entitlements.Bundle, error)
}

// Handler serves the public routes.
type Handler struct {
	Bundles  Bundles
	Purchase *purchase.Service // nil: no webhook
}
