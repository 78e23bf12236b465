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

// lazyStream opens the NDJSON answer at the first line, so a call refused before any
// work (a role, a bad body) is still an ordinary problem answer.
type lazyStream struct {
	c  echo.Context
	st *streamNDJSON
}

func (l *lazyStream) send(p staffapi.Progress, err error) {
	if l.st == nil {
		l.st = newStream(l.c)
	}
	if err != nil {
		p.Error = entitlements.ErrorMessage(err)
	}
	l.st.send(p)
}

// finish ends the stream with its Done line, or answers err when nothing was streamed.
func (l *lazyStream) finish(err error, done staffapi.Progress) error {
	if l.st == nil && err != nil {
		return err
	}
	done.Done = true
	l.send(done, nil)
	return nil
}

// issueAllApproved issues every approved entitlement (of one customer when asked), on
// the server, streaming a line per license.
func (s *Handler) issueAllApproved(c echo.Context) error {
	var p staffapi.IssueAllRequest
	if err := decodeStaffBody(c, &p); err != nil {
		return err
	}
	out := &lazyStream{c: c}
	n, of, err := s.Svc.IssueAllApproved(c.Request().Context(), p.CustomerID, p.Limit, httpx.Staff(c), func(r issuance.IssueProgress) {
		out.send(staffapi.Progress{N: r.N, Of: r.Of, ID: r.EntitlementID, License: withoutBytes(r.License), LeaseToken: r.LeaseToken}, r.Err)
	})
	return out.finish(err, staffapi.Progress{Of: of, Count: n})
}

// renewExpiring opens a renewal for every active license expiring within the window,
// on the server, streaming a line per license.
func (s *Handler) renewExpiring(c echo.Context) error {
	var p staffapi.RenewAllRequest
	if err := decodeStaffBody(c, &p); err != nil {
		return err
	}
	out := &lazyStream{c: c}
	n, err := s.Svc.RenewExpiring(c.Request().Context(), p.Product, p.Within, httpx.Staff(c), func(r issuance.RenewalProgress) {
		out.send(staffapi.Progress{N: r.N, Of: r.Of, ID: r.LicenseID, Opened: r.Entitlement}, r.Err)
	})
	return out.finish(err, staffapi.Progress{Count: n})
}
