package httpx

import (
	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
)

// Context keys of the authenticated caller, set by each audience's authentication
// middleware.
const (
	staffKey     = "staff"
	principalKey = "principal"
)

// Staff is the signed-in staff member of a console or staff API request (nil when none).
func Staff(c echo.Context) *entitlements.Staff {
	st, _ := c.Get(staffKey).(*entitlements.Staff)
	return st
}

// SetStaff records the authenticated staff member of a request.
func SetStaff(c echo.Context, st *entitlements.Staff) { c.Set(staffKey, st) }

// Principal is the customer principal of a portal or customer API request (nil when
// none).
func Principal(c echo.Context) *entitlements.Principal {
	p, _ := c.Get(principalKey).(*entitlements.Principal)
	return p
}

// SetPrincipal records the authenticated customer principal of a request.
func SetPrincipal(c echo.Context, p *entitlements.Principal) { c.Set(principalKey, p) }
