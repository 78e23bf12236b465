package httpx

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
)

// CSRFKey is where the CSRF middleware leaves the page's token (the forms' _csrf).
const CSRFKey = "csrf"

// CSRF protects the unsafe methods of a browser group. The token is bound to the
// session: it is derived from the session cookie's secret (SHA-256, so the page shows
// nothing that could be turned back into the session), and before sign-in from a
// random seed cookie of the area. A token/cookie pair made anonymously is therefore
// worthless with someone else's session. Go's cross-origin protection (Sec-Fetch-Site,
// Origin) refuses cross-site requests first, as a second line.
func CSRF(k Cookies, session, seed string, sameSite http.SameSite) echo.MiddlewareFunc {
	cop := http.NewCrossOriginProtection()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			binding := k.Get(c, session)
			if binding == "" {
				if binding = k.Get(c, seed); binding == "" {
					b := make([]byte, 32)
					_, _ = rand.Read(b)
					binding = base64.RawURLEncoding.EncodeToString(b)
					k.Set(c, seed, binding, sameSite, time.Time{}, 0)
				}
			}
			want := tokenFor(binding)
			c.Set(CSRFKey, want)
			switch c.Request().Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				return next(c)
			}
			if err := cop.Check(c.Request()); err != nil {
				return entitlements.Errorf(entitlements.EFORBIDDEN, "cross-site request refused")
			}
			got := c.Request().Header.Get("X-CSRF-Token")
			if got == "" {
				got = c.FormValue("_csrf")
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				return entitlements.Errorf(entitlements.EFORBIDDEN, "the form expired or was not sent by this site: reload the page and try again")
			}
			return next(c)
		}
	}
}

// tokenFor derives the CSRF token of a session (or seed) secret.
func tokenFor(secret string) string {
	h := sha256.Sum256([]byte("metrum.csrf.v1:" + secret))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// CSRFToken is the token of the request's page.
func CSRFToken(c echo.Context) string {
	t, _ := c.Get(CSRFKey).(string)
	return t
}

// BindCSRF re-derives the page's token after a handler started a session in the
// same response (the page it renders then posts with the new session's token).
func BindCSRF(c echo.Context, sessionSecret string) { c.Set(CSRFKey, tokenFor(sessionSecret)) }
