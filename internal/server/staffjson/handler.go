// Package staffjson is the staff JSON API (internal/staffapi is its contract): bearer
// personal access tokens, one POST per call, RFC 9457 problems. Its Handler holds only
// the services staff use.
package staffjson

import (
	"log/slog"
	"time"

	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/purchase"
	"github.com/metrum/licensing/internal/staffapi"
)

// Handler serves the staff API.
type Handler struct {
	Svc    *issuance.Service
	Portal *portal.Service // what staff do on a customer's behalf; nil: not served
	// Shop is self-service purchase (held orders fulfilled by hand or refunded); nil:
	// purchase is off.
	Shop *purchase.Service
	Log  *slog.Logger
	// ItemDeadline bounds each item of a bulk stream (the stream itself runs as long
	// as its items take; 0: none).
	ItemDeadline time.Duration
}

// Streams reports whether path is one of the bulk calls that answer a stream (they
// get no request deadline; each item has one).
func Streams(path string) bool {
	return path == staffapi.Prefix+staffapi.LicenseIssueAll || path == staffapi.Prefix+staffapi.LicenseRenewAll
}
