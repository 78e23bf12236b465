package httpx

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
)

// ReadJSONBody reads a request body that must be application/json and at most max
// bytes (over it: TooLarge, before reading more than max+1).
func ReadJSONBody(c echo.Context, max int64) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > max {
		return nil, TooLarge
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationJSON {
		return nil, entitlements.Errorf(entitlements.EINVALID, "Content-Type must be application/json")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, entitlements.Errorf(entitlements.EINVALID, "the body could not be read")
	}
	if int64(len(body)) > max {
		return nil, TooLarge
	}
	return body, nil
}

// DecodeStrict decodes one JSON value with the project's strict rules (exact member
// names, no unknown or duplicate members, nothing after it) into v. Its error says
// what is wrong and where, in the body's own terms: never a Go type name.
func DecodeStrict(body []byte, v any, opts ...json.Options) error {
	opts = append([]json.Options{json.RejectUnknownMembers(true)}, opts...)
	if err := json.Unmarshal(body, v, opts...); err != nil {
		return entitlements.Errorf(entitlements.EINVALID, "the body is not the JSON this call takes: %s", describeJSONError(err))
	}
	return nil
}

// describeJSONError says what a decoding error found, without Go type names.
func describeJSONError(err error) string {
	var se *json.SemanticError
	var sx *jsontext.SyntacticError
	switch {
	case errors.As(err, &se):
		where := string(se.JSONPointer)
		if where == "" {
			where = "/"
		}
		switch {
		case errors.Is(se.Err, json.ErrUnknownName):
			return fmt.Sprintf("unknown member at %s", where)
		case se.JSONKind != 0:
			return fmt.Sprintf("a JSON %s is not allowed at %s", se.JSONKind, where)
		}
		return fmt.Sprintf("the value at %s is not allowed", where)
	case errors.As(err, &sx):
		if errors.Is(sx.Err, jsontext.ErrDuplicateName) {
			return fmt.Sprintf("duplicate member at %s", sx.JSONPointer)
		}
		return fmt.Sprintf("not valid JSON (at byte %d)", sx.ByteOffset)
	}
	return "not valid JSON"
}

// LimitBodies bounds the bodies of the requests match accepts to max bytes, before
// any middleware reads them (ValidInput parses forms): a larger Content-Length is
// refused at once (413), and a body that turns out longer fails where it is read.
func LimitBodies(max int64, match func(method, path string) bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if !match(r.Method, r.URL.Path) {
				return next(c)
			}
			if r.ContentLength > max {
				return &entitlements.Error{Code: ETooLarge, Message: fmt.Sprintf("the upload is larger than %d bytes", max)}
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, max)
			return next(c)
		}
	}
}
