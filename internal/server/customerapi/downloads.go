package customerapi

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/server/httpx"
)

type downloadList struct {
	Downloads []entitlements.ReleaseFile `json:"downloads"`
}

// apiDownloads lists the verifier release (customer-api.md v1.1).
func (s *Handler) apiDownloads(c echo.Context) error {
	list, err := s.Portal.Downloads(c.Request().Context(), httpx.Principal(c))
	if err != nil && !errors.Is(err, portal.ErrNoReleases) {
		return err // with no release folder the list is empty, not an error for scripts
	}
	if list == nil {
		list = []entitlements.ReleaseFile{}
	}
	return c.JSON(http.StatusOK, downloadList{Downloads: list})
}

// apiDownload serves one release file: the exact bytes, ETag the SHA-256, recorded
// like a license download. A matching If-None-Match is a 304 and records nothing.
func (s *Handler) apiDownload(c echo.Context) error {
	ctx, p := c.Request().Context(), httpx.Principal(c)
	name := c.Param("name")
	list, err := s.Portal.Downloads(ctx, p)
	if err != nil {
		return err
	}
	for _, f := range list {
		if f.Name == name && c.Request().Header.Get("If-None-Match") == `"`+f.SHA256+`"` {
			c.Response().Header().Set("ETag", `"`+f.SHA256+`"`)
			return c.NoContent(http.StatusNotModified)
		}
	}
	rf, r, err := s.Portal.OpenDownload(ctx, p, name)
	if err != nil {
		return err
	}
	defer r.Close()
	return httpx.SendRelease(c, rf, r)
}
