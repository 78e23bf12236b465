package httpx

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
)

// MaxTokenLength bounds every bearer credential the issuer accepts.
const MaxTokenLength = 128

// Bearer returns the request's bearer credential, or false when there is none (or it
// is longer than any token the issuer makes).
func Bearer(c echo.Context) (string, bool) {
	tok, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
	if !ok || tok == "" || len(tok) > MaxTokenLength {
		return "", false
	}
	return tok, true
}

// credentialParams are query parameters that would carry a credential in a URL, where
// it ends up in logs, proxies and browser history: refused, never read.
var credentialParams = []string{"access_token", "token", "api_key", "apikey", "key", "bearer"}

// RefuseTokenInURL answers 400 when a request carries a credential in its query string.
func RefuseTokenInURL(c echo.Context) error {
	for name := range c.Request().URL.Query() {
		// Case-insensitively: ?Access_Token= is a credential in a URL all the same.
		for _, p := range credentialParams {
			if strings.EqualFold(name, p) {
				return entitlements.Errorf(entitlements.EINVALID, "credentials go in the Authorization header, never in the URL")
			}
		}
	}
	return nil
}
