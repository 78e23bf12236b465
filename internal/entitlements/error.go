package entitlements

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. They are mapped to HTTP statuses in exactly one place (the web error
// handler) and to CLI exit messages in main; license reason codes from the spec
// (license-revoked, …) are codes too.
const (
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	EINTERNAL     = "internal"
	EUNAVAILABLE  = "unavailable"
	// ERATELIMITED: over a rate limit; RetryAfter says when to come back (HTTP 429).
	ERATELIMITED = "rate-limited"
	// EOUTCOMEUNKNOWN: a change was sent to the database and no answer came in time,
	// so it may or may not have been made (HTTP 503, like EUNAVAILABLE, which promises
	// that nothing changed).
	EOUTCOMEUNKNOWN = "outcome-unknown"
)

// Error is the one error type of the domain: a code, a message safe to show a user,
// and optional per-field messages for forms. Details for logs travel wrapped in Err.
type Error struct {
	Code    string
	Message string
	Fields  map[string]string
	Err     error
	// RetryAfter, when set, tells the caller when to try again (HTTP Retry-After).
	RetryAfter time.Duration
	// Extensions are members the error's RFC 9457 problem carries besides the standard
	// ones (a refused usage upload's report_index and next_seq).
	Extensions map[string]any
	// Conflict is the ID of what a conflict is with (the open successor a second
	// renewal meets), when known, so a page can link to it.
	Conflict string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is a generic not-found; storage wraps it with what was missing.
var ErrNotFound = &Error{Code: ENOTFOUND, Message: "not found"}

// NotFound says what was not found.
func NotFound(what, id string) *Error {
	return &Error{Code: ENOTFOUND, Message: fmt.Sprintf("%s %s not found", what, id)}
}

// ErrorCode returns the code of err, EINTERNAL for anything that is not an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}

// ErrorMessage returns the safe message of err; internal errors get a generic one so
// their detail stays in the logs.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Invalid builds a validation error from field messages.
func Invalid(fields map[string]string) error {
	if len(fields) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: "the input is not valid", Fields: fields}
}

// RateLimited is the error of a request over its rate limit: nothing was done, and
// wait says when to come back.
func RateLimited(wait time.Duration, message string) *Error {
	return &Error{Code: ERATELIMITED, Message: message, RetryAfter: wait}
}
