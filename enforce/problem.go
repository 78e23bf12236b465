package enforce

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/oklog/ulid/v2"
)

// ProblemBase is the type URI prefix of the license-* problems, the one the issuer's
// APIs use (lease-api.md: a type ending in the reason code).
const ProblemBase = "https://metrum.ai/problems/"

// PlanLimitType is CoreSDK's plan-limit problem type, as its document spells it.
const PlanLimitType = "https://errors.coresdk.io/tenant/plan-limit"

// Problem is an RFC 9457 problem detail. A license problem carries the request ID
// (request_id) the router document asks callers to give support; CoreSDK's plan-limit
// problem carries trace_id as CoreSDK's document shows. Detail is safe for callers:
// it never carries license payloads or operational details, only what the caller
// asked for and was refused.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	TraceID   string `json:"trace_id,omitempty"`
	// Reason is the license-* code ("" for plan-limit); not in the body, which has
	// it as the type's last segment.
	Reason Reason `json:"-"`
	// RetryAfter, when positive, is sent as Retry-After.
	RetryAfter time.Duration `json:"-"`
	// coreSDK: the ID goes out as trace_id.
	coreSDK bool
}

// Error makes a Problem an error (what the plan checks return).
func (p *Problem) Error() string { return fmt.Sprintf("%s (%d): %s", p.Type, p.Status, p.Detail) }

var titles = map[Reason]string{
	ReasonMissing: "License missing", ReasonInvalid: "License invalid", ReasonProductMismatch: "License for another product",
	ReasonClockRollback: "Clock rollback detected", ReasonNotYetValid: "License not yet valid",
	ReasonInstanceMismatch: "License bound to another instance", ReasonRevocationRequired: "Revocation bundle required",
	ReasonRevocationCheckFailed: "Revocation check failed", ReasonRevoked: "License revoked", ReasonSuspended: "License suspended",
	ReasonSuperseded: "License superseded", ReasonExpired: "License expired", ReasonLeaseRequired: "License lease required",
	ReasonLeaseInvalid: "License lease invalid", ReasonLeaseExpired: "License lease expired",
	ReasonFeatureForbidden: "Feature not licensed", ReasonLimitExceeded: "License limit exceeded",
}

// LicenseProblem is the problem for a license-* code. A reason that stops the whole
// deployment is 503 (the deployment can't serve; another replica may), a feature or
// limit the caller asked for is 403, and a rolling usage window that is spent for now
// is 429 with Retry-After (set RetryAfter on the result).
func LicenseProblem(reason Reason, detail string) *Problem {
	title, ok := titles[reason]
	if !ok {
		title = "License check failed"
	}
	status := http.StatusServiceUnavailable
	switch reason {
	case ReasonFeatureForbidden, ReasonLimitExceeded:
		status = http.StatusForbidden
	}
	if detail == "" {
		detail = fmt.Sprintf("This deployment's license does not allow serving now (%s). Give your operator the request ID.", reason)
	}
	return &Problem{Type: ProblemBase + string(reason), Title: title, Status: status, Detail: detail, Reason: reason}
}

// PlanLimit is CoreSDK's plan-limit problem: 403, "Plan Limit Exceeded", with the
// detail in CoreSDK's words ("Your plan allows 50 tenants. Current count: 50.").
func PlanLimit(detail string) *Problem {
	return &Problem{Type: PlanLimitType, Title: "Plan Limit Exceeded", Status: http.StatusForbidden, Detail: detail, coreSDK: true}
}

// Write sends the problem as application/problem+json with the request's ID (as
// request_id, or trace_id for CoreSDK's), which also goes out as X-Request-Id.
func (p *Problem) Write(w http.ResponseWriter, r *http.Request) {
	q := *p
	id := RequestID(r)
	if q.coreSDK {
		q.TraceID = id
	} else {
		q.RequestID = id
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Request-Id", id)
	if q.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(q.RetryAfter.Seconds()))))
	}
	w.WriteHeader(q.Status)
	json.MarshalWrite(w, &q, json.Deterministic(true))
}

type ridKey struct{}

// WithRequestID gives every request an ID: the caller's X-Request-Id when it is a
// plain token of at most 128 characters, else a new ULID. It is in the request's
// context for RequestID and goes back as X-Request-Id.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := incomingID(r)
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ridKey{}, id)))
	})
}

// RequestID is the request's ID: the one WithRequestID set, else the caller's
// X-Request-Id when it is a plain token, else a new ULID.
func RequestID(r *http.Request) string {
	if id, ok := r.Context().Value(ridKey{}).(string); ok {
		return id
	}
	return incomingID(r)
}

func incomingID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); plainID(id) {
		return id
	}
	return ulid.Make().String()
}

// plainID: 1–128 characters of [A-Za-z0-9._-], so a caller can't put markup or log
// lines in an ID that is echoed and logged.
func plainID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
