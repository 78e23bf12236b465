// Package usageapi is POST /v1/usage (docs/spec/usage.md section 3): signed usage
// reports from router hosts with their license's lease token, and files carried out
// of air-gapped sites with a customer API token. Its Handler holds the metering
// service and, for customer API tokens, the portal service.
package usageapi

import (
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/metering"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/ratelimit"
	"github.com/metrum/licensing/internal/server/httpx"
	"github.com/metrum/licensing/usage"
)

// Handler serves the usage upload.
type Handler struct {
	Usage *metering.Service
	// Portal authenticates customer API tokens (nil: only lease tokens are taken).
	Portal *portal.Service
	// Limit is the rate limit per credential (nil: none).
	Limit *ratelimit.Limiter
}

// Path is the upload's path.
const Path = "/v1/usage"

// Routes lists the usage API. No session, no CSRF: the bearer token is the credential.
func (s *Handler) Routes(g *echo.Group) {
	g.POST("/usage", s.upload)
}

// credential authenticates the bearer token: a customer API token (mct_…) through
// the portal's one check, anything else as a lease token. One 401 for every failure.
func (s *Handler) credential(c echo.Context) (*metering.Credential, error) {
	if err := httpx.RefuseTokenInURL(c); err != nil {
		return nil, err
	}
	tok, ok := httpx.Bearer(c)
	if !ok {
		return nil, metering.ErrBadToken
	}
	ctx := c.Request().Context()
	if strings.HasPrefix(tok, entitlements.CustomerTokenPrefix) && s.Portal != nil {
		p, err := s.Portal.Authenticate(ctx, tok, c.RealIP())
		if err == nil {
			return metering.CredentialOf(p)
		}
		if entitlements.ErrorCode(err) != entitlements.EUNAUTHORIZED {
			return nil, err
		}
		// Not a customer token after all: a lease token may start the same way.
	}
	cred, err := s.Usage.AuthenticateLease(ctx, tok)
	if entitlements.ErrorCode(err) == entitlements.EUNAUTHORIZED {
		return nil, metering.ErrBadToken
	}
	return cred, err
}

// upload takes one envelope or {"reports": […]} (at most 1,000 reports and 4 MiB),
// whatever the Content-Type (curl --data-binary sends a form's): the body is read as
// JSON, strictly. A body over the limits is usage-invalid at report 0, like any other
// body that is not an upload.
func (s *Handler) upload(c echo.Context) error {
	cred, err := s.credential(c)
	if err != nil {
		return err
	}
	if wait := s.Limit.Wait(cred.Key); wait > 0 {
		return entitlements.RateLimited(wait, "too many uploads for this credential: retry after the Retry-After delay")
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	r := c.Request()
	if r.ContentLength > usage.MaxBatchBytes {
		return tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, usage.MaxBatchBytes+1))
	if err != nil {
		return entitlements.UsageRefusal(entitlements.EUSAGEINVALID, 0, 0, "the body could not be read")
	}
	if len(body) > usage.MaxBatchBytes {
		return tooLarge
	}
	ans, err := s.Usage.Ingest(r.Context(), cred, body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ans)
}

var tooLarge = entitlements.UsageRefusal(entitlements.EUSAGEINVALID, 0, 0, "the body is larger than 4 MiB (an upload holds at most 1,000 reports and 4 MiB)")
