package staffjson

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

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

// lineWriteTimeout bounds writing one line: a stream runs as long as its items take,
// beyond the server's WriteTimeout, but a client that stops reading is given up on.
const lineWriteTimeout = 30 * time.Second

// send writes and flushes one line; it reports whether that worked (the line is in the
// connection's buffers: a break right after can still lose it).
func (st *streamNDJSON) send(p staffapi.Progress) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	rc := http.NewResponseController(st.c.Response())
	_ = rc.SetWriteDeadline(time.Now().Add(lineWriteTimeout))
	if err := st.enc.Encode(p); err != nil {
		return false
	}
	return rc.Flush() == nil
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

func (l *lazyStream) send(p staffapi.Progress, err error) bool {
	if l.st == nil {
		l.st = newStream(l.c)
	}
	if err != nil {
		p.Error = entitlements.ErrorMessage(err)
	}
	return l.st.send(p)
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
	var job string
	o := issuance.BulkOptions{CustomerID: p.CustomerID, Limit: p.Limit, ItemDeadline: s.ItemDeadline}
	n, of, err := s.Svc.IssueAllApproved(c.Request().Context(), o, httpx.Staff(c), func(r issuance.IssueProgress) bool {
		if r.Job != nil {
			job = r.Job.ID
			return out.send(staffapi.Progress{Of: r.Of, Job: r.Job.ID, StartedAt: r.Job.StartedAt}, nil)
		}
		return out.send(staffapi.Progress{N: r.N, Of: r.Of, Job: job, ID: r.EntitlementID, License: withoutBytes(r.License), LeaseToken: r.LeaseToken}, r.Err)
	})
	return out.finish(err, staffapi.Progress{Of: of, Count: n, Job: job})
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
	}, issuance.BulkOptions{ItemDeadline: s.ItemDeadline})
	return out.finish(err, staffapi.Progress{Count: n})
}
