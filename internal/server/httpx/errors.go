package httpx

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
)

// ETooLarge is the code of a body over its limit (HTTP 413), an HTTP matter the
// domain does not have.
const ETooLarge = "too-large"

// TooLarge is the error of a body over its limit.
var TooLarge = &entitlements.Error{Code: ETooLarge, Message: "the body is too large"}

var statusOf = map[string]int{
	entitlements.EINVALID:      http.StatusBadRequest,
	entitlements.ENOTFOUND:     http.StatusNotFound,
	entitlements.ECONFLICT:     http.StatusConflict,
	entitlements.EUNAUTHORIZED: http.StatusUnauthorized,
	entitlements.EFORBIDDEN:    http.StatusForbidden,
	entitlements.EUNAVAILABLE:  http.StatusServiceUnavailable,
	entitlements.EINTERNAL:     http.StatusInternalServerError,
	entitlements.ERATELIMITED:  http.StatusTooManyRequests,
	ETooLarge:                  http.StatusRequestEntityTooLarge,

	// Refused usage reports (usage.md section 3).
	entitlements.EUSAGEINVALID: http.StatusUnprocessableEntity,
	entitlements.EUSAGEFORK:    http.StatusConflict,
	entitlements.EUSAGEGAP:     http.StatusConflict,

	// Also a 503, so clients retry as before; the problem type says it is not a
	// promise that nothing changed.
	entitlements.EOUTCOMEUNKNOWN: http.StatusServiceUnavailable,
}

// StatusOf maps an error code to its HTTP status: the domain's codes, and the
// license-* reason codes of the lease API (lease-api.md, Errors).
func StatusOf(code string) (int, bool) {
	switch {
	case code == "license-limit-exceeded":
		return http.StatusConflict, true
	case strings.HasPrefix(code, "license-"):
		return http.StatusForbidden, true
	}
	st, ok := statusOf[code]
	return st, ok
}

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"request_id"`
	// Errors are per-field messages of a validation error (an RFC 9457 extension).
	Errors map[string]string `json:"errors,omitempty"`
	// Extensions are further members (a refused usage upload's report_index and
	// next_seq), written beside the standard ones; they never replace one.
	Extensions map[string]any `json:"-"`
}

// MarshalJSON writes the problem with its extension members.
func (p Problem) MarshalJSON() ([]byte, error) {
	type plain Problem
	b, err := json.Marshal(plain(p))
	if err != nil || len(p.Extensions) == 0 {
		return b, err
	}
	ext := map[string]any{}
	for k, v := range p.Extensions {
		switch k {
		case "type", "title", "status", "detail", "request_id", "errors":
		default:
			ext[k] = v
		}
	}
	e, err := json.Marshal(ext)
	if err != nil || len(ext) == 0 {
		return b, err
	}
	return append(append(b[:len(b)-1], ','), e[1:]...), nil
}

// ProblemType is the `type` of the problem for an error code.
func ProblemType(code string) string { return "https://metrum.ai/problems/" + code }

// HTMLError renders an error page for a browser on the audience's own frame, and
// reports whether it did (false: the request is not the audience's).
type HTMLError func(c echo.Context, status int, msg string) bool

// ErrorHandler is the one place errors become HTTP: users see a safe message, the log
// keeps the detail. Browsers of the console and the portal get an error page (the
// first HTMLError that takes the request); everything else an RFC 9457 problem.
func ErrorHandler(log *slog.Logger, pages ...HTMLError) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, code, msg := http.StatusInternalServerError, entitlements.EINTERNAL, "internal error"
		var fields map[string]string
		var ext map[string]any
		var he *echo.HTTPError
		var de *entitlements.Error
		switch {
		case errors.As(err, &de):
			code, msg, fields, ext = de.Code, de.Message, de.Fields, de.Extensions
			if st, ok := StatusOf(code); ok {
				status = st
			}
			if de.RetryAfter > 0 {
				c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(de.RetryAfter.Seconds()))))
			}
		case errors.As(err, &he):
			status, code = he.Code, strings.ReplaceAll(strings.ToLower(http.StatusText(he.Code)), " ", "_")
			if m, ok := he.Message.(string); ok {
				msg = m
			} else {
				msg = http.StatusText(he.Code)
			}
		}
		rid := c.Response().Header().Get(echo.HeaderXRequestID)
		if status >= 500 {
			log.Error("request failed", "request_id", rid, "path", c.Path(), "err", err)
		}
		if strings.Contains(c.Request().Header.Get("Accept"), "text/html") {
			for _, page := range pages {
				if page(c, status, msg) {
					return
				}
			}
		}
		c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
		_ = c.JSON(status, Problem{Type: ProblemType(code), Title: http.StatusText(status),
			Status: status, Detail: msg, RequestID: rid, Errors: fields, Extensions: ext})
	}
}
