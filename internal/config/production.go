package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
)

// ValidateServe applies the production defaults of `issuer serve` (docs/operations.md):
// it refuses a configuration that would run a production issuer unsafely, listing
// every problem. `issuer dev` runs without these (a private cluster on loopback).
func (c *Config) ValidateServe() error {
	var errs []error
	if c.Database.URL == "" {
		errs = append(errs, errors.New("DATABASE_URL (database.url) is required: the private cluster under data_dir is for issuer dev only"))
	}
	u, err := url.Parse(c.Server.BaseURL)
	if err == nil && u.Scheme == "http" && !loopback(c.Server.Addr) && !c.Server.AllowInsecureHTTP {
		errs = append(errs, fmt.Errorf("server.base_url %q is http:// while the issuer listens on %s, beyond loopback: "+
			"sign-in cookies and tokens would cross the network in clear. Use an https:// base URL (behind your TLS proxy), "+
			"or set server.allow_insecure_http (ISSUER_ALLOW_INSECURE_HTTP=1) if you must", c.Server.BaseURL, c.Server.Addr))
	}
	return errors.Join(errs...)
}

// loopback reports whether a listen address is on loopback only (an empty host, or
// 0.0.0.0, listens on every interface).
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
