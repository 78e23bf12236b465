package httpx

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

const flashCookie = "portal_flash"

// Cookies sets the browser groups' cookies: the Secure flag over https.
type Cookies struct{ Secure bool }

// RedirectWithFlash ends a POST: redirect, with a one-time message for the next page
// (a cookie of the area, /portal or /staff, that the next page reads and clears).
func (k Cookies) RedirectWithFlash(c echo.Context, to, msg string) error {
	path := "/portal"
	if strings.HasPrefix(to, "/staff") {
		path = "/staff"
	}
	c.SetCookie(&http.Cookie{Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(msg)), Path: path,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: k.Secure, MaxAge: 60})
	return c.Redirect(http.StatusSeeOther, to)
}

// TakeFlash reads and clears the area's one-time message.
func (k Cookies) TakeFlash(c echo.Context, path string) string {
	ck, err := c.Cookie(flashCookie)
	if err != nil || ck.Value == "" {
		return ""
	}
	c.SetCookie(&http.Cookie{Name: flashCookie, Value: "", Path: path, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: k.Secure})
	b, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return ""
	}
	return string(b)
}

// Clear removes a cookie of the area at path.
func (k Cookies) Clear(c echo.Context, name, path string) {
	c.SetCookie(&http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: k.Secure})
}
