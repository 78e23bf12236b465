// Package staffclient is the staff JSON API's client: what the `issuer` CLI calls
// instead of opening the database and the keys itself. It holds an issuer URL and a
// personal access token, nothing else.
package staffclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/staffapi"
)

// Client calls one issuer as one staff member.
type Client struct {
	URL   string // the issuer's base URL, e.g. https://licensing.example.com
	Token string // a personal access token (mst_…)
	HTTP  *http.Client
}

// New returns a client; HTTP defaults to one with a generous timeout (bulk calls
// stream for as long as they run, so they use no overall timeout).
func New(url, token string) *Client {
	return &Client{URL: strings.TrimRight(url, "/"), Token: token, HTTP: &http.Client{}}
}

type problem struct {
	Type   string            `json:"type"`
	Status int               `json:"status"`
	Detail string            `json:"detail"`
	Errors map[string]string `json:"errors"`
}

// Do posts req to path and decodes the answer into resp; an RFC 9457 answer becomes
// the domain error it stands for (same code and safe message as in-process).
func (c *Client) Do(ctx context.Context, path string, req, resp any) error {
	r, err := c.post(ctx, path, req, 60*time.Second)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	if resp == nil {
		_, err := io.Copy(io.Discard, r.Body)
		return err
	}
	if err := json.NewDecoder(r.Body).Decode(resp); err != nil {
		return fmt.Errorf("staff API %s: unreadable answer: %w", path, err)
	}
	return nil
}

// ErrBroken marks a stream that the issuer began and that ended before its last line
// (the connection broke, the issuer stopped): the server may have done more than
// the lines read say.
var ErrBroken = errors.New("the issuer's stream broke before its last line")

// Stream posts req to a bulk path and calls fn with each progress line until the
// last one, which it returns. A stream that ends early is ErrBroken.
func (c *Client) Stream(ctx context.Context, path string, req any, fn func(staffapi.Progress)) (staffapi.Progress, error) {
	r, err := c.post(ctx, path, req, 0)
	if err != nil {
		return staffapi.Progress{}, err
	}
	defer r.Body.Close()
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var p staffapi.Progress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return p, fmt.Errorf("%w: staff API %s: unreadable progress: %v", ErrBroken, path, err)
		}
		if p.Done {
			return p, nil
		}
		fn(p)
	}
	if err := sc.Err(); err != nil {
		return staffapi.Progress{}, fmt.Errorf("%w: %v", ErrBroken, err)
	}
	return staffapi.Progress{}, fmt.Errorf("%w: staff API %s: the answer ended before the run finished", ErrBroken, path)
}

func (c *Client) post(ctx context.Context, path string, req any, timeout time.Duration) (*http.Response, error) {
	if c.URL == "" {
		return nil, entitlements.Errorf(entitlements.EINVALID, "no issuer URL: set ISSUER_URL, or run `issuer login --url URL`")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	cancel := context.CancelFunc(func() {})
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, timeout)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+staffapi.Prefix+path, bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	if c.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.Token)
	}
	r, err := c.HTTP.Do(hr)
	if err != nil {
		cancel()
		return nil, &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "the issuer at " + c.URL + " can't be reached", Err: err}
	}
	r.Body = cancelOnClose{r.Body, cancel}
	if r.StatusCode >= 400 {
		defer r.Body.Close()
		var p problem
		b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if json.Unmarshal(b, &p) != nil || p.Type == "" {
			return nil, &entitlements.Error{Code: entitlements.EINTERNAL, Message: fmt.Sprintf("the issuer answered %s", r.Status)}
		}
		code := p.Type[strings.LastIndex(p.Type, "/")+1:]
		return nil, &entitlements.Error{Code: code, Message: p.Detail, Fields: p.Errors}
	}
	return r, nil
}

// cancelOnClose releases the request's timeout when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
