// Package staffjson is the staff JSON API (internal/staffapi is its contract): bearer
// personal access tokens, one POST per call, RFC 9457 problems. Its Handler holds only
// the services staff use.
package staffjson

import (
	"log/slog"

	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/portal"
)

// Handler serves the staff API.
type Handler struct {
	Svc    *issuance.Service
	Portal *portal.Service // what staff do on a customer's behalf; nil: not served
	Log    *slog.Logger
}
