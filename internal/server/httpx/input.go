package httpx

import (
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
)

// maxFormValue bounds a single form or query value before any handler, log line or
// SQL sees it (the longest field the issuer takes is a 200-character name or reason;
// a token name; a pasted license ID).
const maxFormValue = 8 << 10

// ValidInput refuses, with a 400, a request whose path, query or form carries
// invalid UTF-8, a NUL or other control character (tab and newline aside), or a value
// longer than any field takes: such input is never a 5xx from the database, and never
// reaches a log line whole.
func ValidInput(next echo.HandlerFunc) echo.HandlerFunc { return ValidInputExcept()(next) }

// ValidInputExcept is ValidInput that leaves the bodies of the paths given unread: an
// API whose body is not a form (POST /v1/usage takes JSON whatever the Content-Type:
// curl --data-binary says application/x-www-form-urlencoded) checks its own.
func ValidInputExcept(rawBody ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc { return validInput(next, rawBody) }
}

func validInput(next echo.HandlerFunc, rawBody []string) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if path, err := url.PathUnescape(r.URL.EscapedPath()); err != nil || !clean(path) {
			return badInput("the path")
		}
		for k, vs := range r.URL.Query() {
			if !clean(k) || !allClean(vs) {
				return badInput("the query")
			}
		}
		if ct := r.Header.Get(echo.HeaderContentType); (strings.HasPrefix(ct, echo.MIMEApplicationForm) || strings.HasPrefix(ct, echo.MIMEMultipartForm)) &&
			!slices.Contains(rawBody, r.URL.Path) {
			form, err := c.FormParams()
			if err != nil {
				return badInput("the form")
			}
			for k, vs := range form {
				if !clean(k) || !allClean(vs) {
					return badInput("the form")
				}
			}
		}
		return next(c)
	}
}

func badInput(where string) error {
	return entitlements.Errorf(entitlements.EINVALID, "%s carries text that is not valid UTF-8, a control character, or a value too long", where)
}

func allClean(vs []string) bool {
	for _, v := range vs {
		if !clean(v) {
			return false
		}
	}
	return true
}

func clean(s string) bool {
	if len(s) > maxFormValue || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return false
		}
	}
	return true
}
