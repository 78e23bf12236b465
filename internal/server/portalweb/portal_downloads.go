package portalweb

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/portal"
	"github.com/metrum/licensing/internal/server/httpx"
	pages "github.com/metrum/licensing/web/portal"
)

// portalDownloads is the Downloads page: the verifier release with sizes and hashes.
func (s *Handler) portalDownloads(c echo.Context) error {
	list, err := s.Portal.Downloads(c.Request().Context(), httpx.Principal(c))
	v := pages.PortalDownloadsView{Off: errors.Is(err, portal.ErrNoReleases), Files: list, Sizes: map[string]string{},
		APIBase: strings.TrimRight(s.Portal.BaseURL, "/")}
	if err != nil && !v.Off {
		return err
	}
	for _, f := range list {
		v.Sizes[f.Name] = humanSize(f.Size)
		if f.Version != "" && f.Version != "mixed" {
			v.Version = f.Version
		}
	}
	return httpx.Render(c, http.StatusOK, pages.PortalDownloads(s.portalPage(c, "Downloads"), v))
}

// portalDownloadFile records and serves one release file.
func (s *Handler) portalDownloadFile(c echo.Context) error {
	rf, r, err := s.Portal.OpenDownload(c.Request().Context(), httpx.Principal(c), c.Param("name"))
	if err != nil {
		return err
	}
	defer r.Close()
	return httpx.SendRelease(c, rf, r)
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
