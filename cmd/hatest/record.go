package main

import (
	"slices"
	"time"
)

// Kinds of write the driver makes.
const (
	kindLease    = "lease"    // POST /v1/leases: a grant or a renewal
	kindRelease  = "release"  // DELETE /v1/leases/{id}
	kindCustomer = "customer" // staff API: create a customer
	kindBundle   = "bundle"   // staff API: publish a revocation bundle
)

// record is one write the driver attempted and what the issuer answered.
type record struct {
	Kind       string
	Start, End time.Time
	Status     int    // the HTTP status; 0 when no answer came (connection refused, reset, timeout)
	Err        string // transport error, or why a 200 lease was not a valid lease
	Invalid    bool   // a 200 whose body is not a valid signed lease of this license and host

	Host      string    // lease, release: the instance fingerprint
	LeaseID   string    // lease, release
	ExpiresAt time.Time // lease: expires_at of the signed lease (whole seconds)

	ID   string // customer
	Name string // customer

	Sequence int64  // bundle
	SHA256   []byte // bundle: the file's SHA-256 as the issuer reported it
}

// acknowledged reports whether the issuer told the client the write was done: a
// valid signed lease (200), a release (204), a staff write (2xx).
func (r *record) acknowledged() bool {
	switch r.Kind {
	case kindLease:
		return r.Status == 200 && !r.Invalid
	case kindRelease:
		return r.Status == 204
	default:
		return r.Status >= 200 && r.Status < 300
	}
}

// failed reports whether the write failed for want of a database or an issuer: no
// answer, or a 5xx. A refusal (401, 403, 409, 429) is the service answering.
func (r *record) failed() bool { return r.Status == 0 || r.Status >= 500 || r.Invalid }

// longestOutage is the longest interval between two consecutive acknowledged writes
// (by completion time) during which at least one write failed; a failure after the
// last acknowledgement counts up to end. It is how long clients saw writes fail.
func longestOutage(recs []record, end time.Time) time.Duration {
	var acks, fails []time.Time
	for i := range recs {
		switch r := &recs[i]; {
		case r.acknowledged():
			acks = append(acks, r.End)
		case r.failed():
			fails = append(fails, r.End)
		}
	}
	if len(fails) == 0 {
		return 0
	}
	slices.SortFunc(acks, time.Time.Compare)
	slices.SortFunc(fails, time.Time.Compare)
	var longest time.Duration
	f := 0
	for _, ft := range fails {
		// The acknowledgements on either side of this failure.
		for f < len(acks) && !acks[f].After(ft) {
			f++
		}
		from := time.Time{}
		if f > 0 {
			from = acks[f-1]
		} else {
			continue // before the first acknowledgement: the run's start, not an outage
		}
		to := end
		if f < len(acks) {
			to = acks[f]
		}
		longest = max(longest, to.Sub(from))
	}
	return longest
}

// span is the time a simulated host held a lease it may use: from the moment it
// received its first signed lease to the moment it stopped using it (sent its release,
// or the run ended).
type span struct {
	Host     string
	From, To time.Time
}

// maxConcurrent is the largest number of spans that overlap at one instant. A span
// that ends at the instant another starts does not overlap it.
func maxConcurrent(spans []span) int {
	type edge struct {
		at    time.Time
		delta int
	}
	edges := make([]edge, 0, 2*len(spans))
	for _, s := range spans {
		edges = append(edges, edge{s.From, 1}, edge{s.To, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta // ends before starts
	})
	n, most := 0, 0
	for _, e := range edges {
		n += e.delta
		most = max(most, n)
	}
	return most
}

// leaseEvent is one row of lease_events, in id order.
type leaseEvent struct {
	At        time.Time
	Host      string
	LeaseID   string
	Outcome   string // granted, renewed, refused, released
	Reason    string
	ExpiresAt time.Time
}

// slotsFreed is lease_events.reason of a release that freed its slot at once
// (storage.ReleaseFreed); any other release keeps the slot until the lease expires.
const slotsFreed = "slot-freed"

// maxOccupied replays a license's lease history and returns the most slots occupied
// at once by the database's own account (lease-api.md v1.1): a grant or renewal
// occupies the host's slot until its expiry; a release frees it at once only when
// the row says the slot was freed.
func maxOccupied(events []leaseEvent) int {
	type slot struct {
		expires time.Time
	}
	live := map[string]slot{}
	most := 0
	for _, e := range events {
		for h, s := range live {
			if !s.expires.After(e.At) {
				delete(live, h)
			}
		}
		switch e.Outcome {
		case "granted", "renewed":
			live[e.Host] = slot{e.ExpiresAt}
		case "released":
			if e.Reason == slotsFreed {
				delete(live, e.Host)
			}
		}
		most = max(most, len(live))
	}
	return most
}
