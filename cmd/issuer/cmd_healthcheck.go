package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

func cmdHealthcheck(ctx context.Context, a *app, args []string) error {
	fs := a.flags("healthcheck", "healthcheck [--url URL] [--json]",
		`Asks a running issuer whether it is ready (GET /readyz: the database answers) and
exits 0 only on 200. For container health checks, where the image has no curl.
Default URL: /readyz on server.addr, with a wildcard host read as loopback.`)
	url := fs.String("url", "", "readiness URL (default from server.addr)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *url == "" {
		c, err := a.config()
		if err != nil {
			return err
		}
		host, port, err := net.SplitHostPort(c.Server.Addr)
		if err != nil {
			return err
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		*url = "http://" + net.JoinHostPort(host, port) + "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	if *asJSON {
		if err := a.printJSON(map[string]any{"url": *url, "status": resp.StatusCode, "ready": resp.StatusCode == http.StatusOK}); err != nil {
			return err
		}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s answered %d: %.200s", *url, resp.StatusCode, body)
	}
	if !*asJSON {
		fmt.Fprintln(a.stdout, "ready")
	}
	return nil
}
