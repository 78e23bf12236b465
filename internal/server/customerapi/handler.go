// Package customerapi is the customer download API (docs/spec/customer-api.md):
// bearer customer API tokens, read-only. Its Handler holds the portal service only.
package customerapi

import (
	"time"

	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/ratelimit"
)

// Handler serves the customer API.
type Handler struct {
	Portal *portal.Service
	// Limit is the rate limit per customer API token (nil: none).
	Limit *ratelimit.Limiter
	Now   func() time.Time
}

func (s *Handler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
