// Package usagehttp uploads usage reports to the issuer over HTTP, as
// spec/usage.md section 3 says: POST {report-url} with the license's lease token as
// the bearer credential and the body usage.Recorder builds. It is apart from package
// usage so that the offline verifier, which exports reports but never uploads them,
// links no HTTP client.
package usagehttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/metrum/licensing/usage"
)

// maxAnswer caps what is read of an answer: the 200 answer and the problems are
// small, and an endpoint that sends more is not the issuer.
const maxAnswer = 1 << 20

// Client posts upload bodies to one URL with one lease token.
type Client struct {
	url   string
	token string
	http  *http.Client
}

var _ usage.Uploader = (*Client)(nil)

// New returns a client for reportURL (https://…/v1/usage; http:// only to a loopback
// host, for tests and a local relay) with the lease token. hc nil: a client with a
// one-minute timeout.
func New(reportURL, leaseToken string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(reportURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return nil, fmt.Errorf("usagehttp: report URL %q must be https:// (http:// only to loopback)", reportURL)
	}
	if leaseToken == "" {
		return nil, errors.New("usagehttp: a lease token is required")
	}
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	return &Client{url: u.String(), token: leaseToken, http: hc}, nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// Upload posts one body and returns the answer, whatever its status; only a transport
// failure is an error.
func (c *Client) Upload(ctx context.Context, body []byte) (*usage.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, application/problem+json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("usagehttp: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("usagehttp: reading the answer: %w", err)
	}
	return &usage.Response{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"),
		RetryAfter: resp.Header.Get("Retry-After"), Body: data}, nil
}
