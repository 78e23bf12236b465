// Package leaseapi is the online lease API (docs/spec/lease-api.md): bearer lease
// tokens, the issuer's hottest path. Its Handler holds the lease service only.
package leaseapi

import "time"

// Handler serves the lease API.
type Handler struct {
	Leases  LeaseGranter
	Metrics *Metrics
	// Deadline bounds each request (server.lease_deadline; 0: DefaultDeadline).
	Deadline time.Duration
}
