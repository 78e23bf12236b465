// Package leaseapi is the online lease API (docs/spec/lease-api.md): bearer lease
// tokens, the issuer's hottest path. Its Handler holds the lease service only.
package leaseapi

// Handler serves the lease API.
type Handler struct {
	Leases  LeaseGranter
	Metrics *Metrics
}
