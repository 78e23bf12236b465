package leaseapi

import (
	"context"
	"crypto/sha256"
	"net/http"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/leases"
	"github.com/metrum/licensing/internal/server/httpx"
)

// LeaseGranter is the lease API's service (the real one batches into Postgres; the
// load benchmark's ceiling answers with a pre-signed lease).
type LeaseGranter interface {
	Grant(ctx context.Context, tokenHash []byte, licenseID, fingerprint string) (*leases.Lease, error)
	Release(ctx context.Context, tokenHash []byte, leaseID string) (*entitlements.ReleaseResult, error)
}

var _ LeaseGranter = (*leases.Service)(nil)

// Lease API limits (lease-api.md).
const (
	maxLeaseBody     = 4 << 10
	leaseContentType = "application/vnd.metrum.lease.v1+json"
	// DefaultDeadline bounds a lease request when Handler.Deadline is unset
	// (server.lease_deadline).
	DefaultDeadline = 2 * time.Second
)

// deadline bounds a request from its arrival to its answer: the lease service's
// batches end before it (internal/leases), and past it the host gets a 503 and
// retries.
func (s *Handler) deadline() time.Duration {
	if s.Deadline > 0 {
		return s.Deadline
	}
	return DefaultDeadline
}

// Routes lists the lease API. No session, no CSRF: the bearer lease token is the
// credential.
func (s *Handler) Routes(g *echo.Group) {
	g.POST("/leases", s.grantLease)
	g.DELETE("/leases/:lease_id", s.releaseLease)
}

// bearer returns the SHA-256 of the request's lease token, or a 401.
func bearer(c echo.Context) ([]byte, error) {
	tok, ok := httpx.Bearer(c)
	if !ok {
		return nil, leases.ErrUnauthorized
	}
	sum := sha256.Sum256([]byte(tok))
	return sum[:], nil
}

type leaseRequest struct {
	LicenseID           string `json:"license_id"`
	InstanceFingerprint string `json:"instance_fingerprint"`
}

func (s *Handler) grantLease(c echo.Context) error {
	start := time.Now()
	outcome, reason := "error", ""
	defer func() { s.Metrics.observeLease(outcome, reason, time.Since(start)) }()
	// From the arrival: the body is read within it too.
	ctx, cancel := context.WithDeadline(c.Request().Context(), start.Add(s.deadline()))
	defer cancel()
	err := func() error {
		// The token is checked against the license in the database, with the rate
		// limit of the license it authenticates (lease-api.md v1.1), in the batch.
		hash, err := bearer(c)
		if err != nil {
			return err
		}
		req, err := readLeaseRequest(c)
		if err != nil {
			return err
		}
		l, err := s.Leases.Grant(ctx, hash, req.LicenseID, req.InstanceFingerprint)
		if err != nil {
			return err
		}
		outcome = "granted"
		if l.Renewed {
			outcome = "renewed"
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Blob(http.StatusOK, leaseContentType, l.File)
	}()
	if err != nil {
		outcome, reason = "refused", entitlements.ErrorCode(err)
		if reason == entitlements.EUNAVAILABLE || reason == entitlements.EOUTCOMEUNKNOWN || reason == entitlements.EINTERNAL {
			outcome = "error"
		}
	}
	return err
}

// readLeaseRequest enforces the body rules: JSON, at most 4 KiB, exactly the two
// members, each once, with exact names.
func readLeaseRequest(c echo.Context) (*leaseRequest, error) {
	body, err := httpx.ReadJSONBody(c, maxLeaseBody)
	if err == httpx.TooLarge {
		return nil, tooLarge
	}
	if err != nil {
		return nil, err
	}
	var req leaseRequest
	if err := json.Unmarshal(body, &req, json.RejectUnknownMembers(true)); err != nil {
		return nil, entitlements.Errorf(entitlements.EINVALID, "the body must be one JSON object with exactly license_id and instance_fingerprint")
	}
	return &req, nil
}

var tooLarge = entitlements.Errorf(httpx.ETooLarge, "the body is larger than 4 KiB")

func (s *Handler) releaseLease(c echo.Context) error {
	outcome, reason := "released", ""
	defer func() { s.Metrics.observeLease(outcome, reason, 0) }()
	err := func() error {
		hash, err := bearer(c)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.deadline())
		defer cancel()
		res, err := s.Leases.Release(ctx, hash, c.Param("lease_id"))
		if err != nil {
			return err
		}
		if res.Released && !res.Freed {
			reason = "held"
		}
		return c.NoContent(http.StatusNoContent)
	}()
	if err != nil {
		outcome, reason = "refused", entitlements.ErrorCode(err)
	}
	return err
}
