package staffjson

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/issuance"
	"github.com/metrum/licensing/internal/server/httpx"
	"github.com/metrum/licensing/internal/staffapi"
)

// streamNDJSON answers a bulk call: one JSON line per item as it is done, flushed, so
// the CLI shows progress while the server works in batches.
type streamNDJSON struct {
	mu  sync.Mutex
	c   echo.Context
	enc *json.Encoder
}

func newStream(c echo.Context) *streamNDJSON {
	c.Response().Header().Set(echo.HeaderContentType, "application/x-ndjson")
	c.Response().WriteHeader(http.StatusOK)
	return &streamNDJSON{c: c, enc: json.NewEncoder(c.Response())}
}

func (st *streamNDJSON) send(p staffapi.Progress) {
	st.mu.Lock()
	defer st.mu.Unlock()
	_ = st.enc.Encode(p)
	st.c.Response().Flush()
}

// withoutBytes drops the file and summary from a streamed license (the CLI fetches a
// file when asked to write it).
func withoutBytes(l *entitlements.License) *entitlements.License {
	if l == nil {
		return nil
	}
	c := *l
	c.File, c.Summary = nil, nil
	return &c
}

// issueAllApproved issues every approved entitlement (of one customer when asked), on
// the server, streaming a line per license.
func (s *Handler) issueAllApproved(c echo.Context) error {
	var p staffapi.IssueAllRequest
	if err := decodeStaffBody(c, &p); err != nil {
		return err
	}
	ctx, by := c.Request().Context(), httpx.Staff(c)
	var st *streamNDJSON
	n, of, err := s.Svc.IssueAllApproved(ctx, p.CustomerID, p.Limit, by, func(r issuance.IssueProgress) {
		if st == nil {
			st = newStream(c)
		}
		pr := staffapi.Progress{N: r.N, Of: r.Of, ID: r.EntitlementID, License: withoutBytes(r.License), LeaseToken: r.LeaseToken}
		if r.Err != nil {
			pr.Error = entitlements.ErrorMessage(r.Err)
		}
		st.send(pr)
	})
	if st == nil {
		if err != nil {
			return err
		}
		st = newStream(c)
	}
	st.send(staffapi.Progress{Done: true, Of: of, Count: n})
	return nil
}

// renewExpiring opens a renewal for every active license expiring within the window,
// on the server, streaming a line per license.
func (s *Handler) renewExpiring(c echo.Context) error {
	var p staffapi.RenewAllRequest
	if err := decodeStaffBody(c, &p); err != nil {
		return err
	}
	ctx, by := c.Request().Context(), httpx.Staff(c)
	var st *streamNDJSON
	n, err := s.Svc.RenewExpiring(ctx, p.Product, p.Within, by, func(r issuance.RenewalProgress) {
		if st == nil {
			st = newStream(c)
		}
		pr := staffapi.Progress{N: r.N, Of: r.Of, ID: r.LicenseID, Opened: r.Entitlement}
		if r.Err != nil {
			pr.Error = entitlements.ErrorMessage(r.Err)
		}
		st.send(pr)
	})
	if st == nil {
		if err != nil {
			return err
		}
		st = newStream(c)
	}
	st.send(staffapi.Progress{Done: true, Count: n})
	return nil
}
