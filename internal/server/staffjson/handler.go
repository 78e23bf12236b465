// Package staffjson is the staff JSON API (internal/staffapi is its contract): bearer
// personal access tokens, one POST per call, RFC 9457 problems. Its Handler holds only
// the services staff use.
package staffjson

import (
	"log/slog"

	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/purchase"
)

// Handler serves the staff API.
type Handler struct {
	Svc    *issuance.Service
	Portal *portal.Service // what staff do on a customer's behalf; nil: not served
	// Shop is self-service purchase (held orders fulfilled by hand or refunded); nil:
	// purchase is off.
	Shop *purchase.Service
	Log  *slog.Logger
}
