package httpx

import (
	"net"

	"github.com/labstack/echo/v4"
)

// ClientIP believes X-Forwarded-For only from the configured proxies; c.RealIP() is
// then the client address for throttling, download records and logs.
func ClientIP(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
