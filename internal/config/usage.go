package config

import (
	"errors"
	"time"
)

// Usage tunes usage metering (docs/usage.md): POST /v1/usage and its storage.
type Usage struct {
	// Retention is how long raw reports are kept (their monthly partitions are dropped
	// once wholly older); the daily rollups are kept for ever.
	Retention time.Duration `yaml:"retention"`
	// RatePerCredential and BurstPerCredential bound uploads per lease token or
	// customer API token per replica (a host uploads about once an hour; 0: off).
	RatePerCredential  float64 `yaml:"rate_per_credential"`
	BurstPerCredential int     `yaml:"burst_per_credential"`
	// MaxBatch caps the uploads decided per transaction; Workers is how many batches
	// may be in flight.
	MaxBatch int `yaml:"max_batch"`
	Workers  int `yaml:"workers"`
}

// DefaultUsage is Usage with nothing set.
var DefaultUsage = Usage{Retention: 90 * 24 * time.Hour, RatePerCredential: 2, BurstPerCredential: 20, MaxBatch: 64, Workers: 2}

func (c *Config) validateUsage() []error {
	var errs []error
	u := c.Usage
	if u.Retention < 24*time.Hour {
		errs = append(errs, errors.New("usage.retention must be at least 24h"))
	}
	if u.RatePerCredential < 0 || u.BurstPerCredential < 0 || u.MaxBatch < 1 || u.Workers < 1 {
		errs = append(errs, errors.New("usage: rate_per_credential and burst_per_credential must be ≥ 0, max_batch and workers ≥ 1"))
	}
	return errs
}
