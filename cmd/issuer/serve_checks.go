package main

import (
	"fmt"
)

// productionChecks refuse, before anything opens, what `serve` must not run with:
// no DATABASE_URL (the private cluster is for dev), an http:// base URL beyond
// loopback (unless server.allow_insecure_http), and a KEK that can't be random.
func (a *app) productionChecks() error {
	c, err := a.config()
	if err != nil {
		return err
	}
	if err := c.ValidateServe(); err != nil {
		return fmt.Errorf("refusing to serve:\n%w", err)
	}
	kek, err := a.kek()
	if err != nil {
		return err
	}
	if err := kek.CheckStrength(); err != nil {
		return fmt.Errorf("refusing to serve: %w", err)
	}
	return nil
}
