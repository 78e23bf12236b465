package httpx

import (
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Cookies makes and reads the browser groups' cookies. Over https their names carry
// the __Host- prefix (Secure, Path=/, no Domain: a sibling subdomain can't set or
// shadow them), so every cookie has a name of its own area (staff_…, portal_…).
type Cookies struct{ Secure bool }

// Name is a cookie's name in this deployment.
func (k Cookies) Name(base string) string {
	if k.Secure {
		return "__Host-" + base
	}
	return base
}

// Set writes an HttpOnly cookie of the area; maxAge < 0 deletes it, 0 makes it last
// until expires (zero: the browser session).
func (k Cookies) Set(c echo.Context, base, value string, sameSite http.SameSite, expires time.Time, maxAge int) {
	c.SetCookie(&http.Cookie{Name: k.Name(base), Value: value, Path: "/", HttpOnly: true, SameSite: sameSite,
		Secure: k.Secure, Expires: expires, MaxAge: maxAge})
}

// Get reads a cookie of the area ("" when absent).
func (k Cookies) Get(c echo.Context, base string) string {
	ck, err := c.Cookie(k.Name(base))
	if err != nil {
		return ""
	}
	return ck.Value
}

// Clear removes a cookie of the area.
func (k Cookies) Clear(c echo.Context, base string) {
	k.Set(c, base, "", http.SameSiteLaxMode, time.Time{}, -1)
}

// flashName is the area's one-time message cookie.
func flashName(to string) string {
	if strings.HasPrefix(to, "/staff") {
		return "staff_flash"
	}
	return "portal_flash"
}

// RedirectWithFlash ends a POST: redirect, with a one-time message for the next page
// of the area (/portal or /staff), which reads and clears it.
func (k Cookies) RedirectWithFlash(c echo.Context, to, msg string) error {
	k.Set(c, flashName(to), base64.RawURLEncoding.EncodeToString([]byte(msg)), http.SameSiteLaxMode, time.Time{}, 60)
	return c.Redirect(http.StatusSeeOther, to)
}

// TakeFlash reads and clears the area's one-time message (area: /staff or /portal).
func (k Cookies) TakeFlash(c echo.Context, area string) string {
	v := k.Get(c, flashName(area))
	if v == "" {
		return ""
	}
	k.Clear(c, flashName(area))
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return ""
	}
	return string(b)
}
