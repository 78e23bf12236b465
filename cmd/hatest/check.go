package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// leaseKey names one signed lease: its slot's lease_id and its expiry (whole seconds,
// as the signed file says it).
type leaseKey struct {
	LeaseID string
	Expires int64
}

// dbState is what the database holds of the driver's writes, read after the run.
type dbState struct {
	leaseRows map[leaseKey]int  // granted and renewed rows of lease_events
	released  map[string]bool   // lease IDs with a 'released' row
	customers map[string]string // ID → name
	bundles   map[int64][]byte  // sequence → file SHA-256
	events    []leaseEvent      // the license's lease history, in id order
	occupied  int               // slots occupied now (lease-api.md v1.1)
}

// readDB reads, over conn, everything the checks compare with the driver's records.
func readDB(ctx context.Context, conn *pgx.Conn, license, product string, customerIDs []string) (*dbState, error) {
	st := &dbState{leaseRows: map[leaseKey]int{}, released: map[string]bool{}, customers: map[string]string{}, bundles: map[int64][]byte{}}
	rows, err := conn.Query(ctx, `SELECT at, instance_fingerprint, lease_id, outcome, reason, coalesce(expires_at, 'epoch')
		FROM lease_events WHERE license_id = $1 ORDER BY id`, license)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var e leaseEvent
		if err := rows.Scan(&e.At, &e.Host, &e.LeaseID, &e.Outcome, &e.Reason, &e.ExpiresAt); err != nil {
			return nil, err
		}
		st.events = append(st.events, e)
		switch e.Outcome {
		case "granted", "renewed":
			st.leaseRows[leaseKey{e.LeaseID, e.ExpiresAt.Unix()}]++
		case "released":
			st.released[e.LeaseID] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM leases WHERE license_id = $1 AND expires_at > now()
		AND (released_at IS NULL OR NOT freed_early)`, license).Scan(&st.occupied); err != nil {
		return nil, err
	}
	rows, err = conn.Query(ctx, `SELECT id, name FROM customers WHERE id = ANY($1)`, customerIDs)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		st.customers[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = conn.Query(ctx, `SELECT sequence, file_sha256 FROM revocation_bundles WHERE product = $1`, product)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var seq int64
		var sum []byte
		if err := rows.Scan(&seq, &sum); err != nil {
			return nil, err
		}
		st.bundles[seq] = sum
	}
	return st, rows.Err()
}

// lostWrites compares the acknowledged records with the database and returns how
// many are missing from it, with a line for each (at most a few dozen).
//   - a lease: the signed lease (lease_id, expires_at) must have its own granted or
//     renewed row; n acknowledged leases with one key need n rows;
//   - a release: the lease must have a 'released' row;
//   - a customer: the row with that ID and name;
//   - a bundle: that sequence, with the very file (SHA-256) the issuer answered.
func lostWrites(recs []record, st *dbState) (int, []string) {
	lost := 0
	var why []string
	note := func(format string, a ...any) {
		lost++
		if len(why) < 40 {
			why = append(why, fmt.Sprintf(format, a...))
		}
	}
	acked := map[leaseKey]int{}
	for i := range recs {
		r := &recs[i]
		if !r.acknowledged() {
			continue
		}
		switch r.Kind {
		case kindLease:
			k := leaseKey{r.LeaseID, r.ExpiresAt.Unix()}
			acked[k]++
			if acked[k] > st.leaseRows[k] {
				note("lease %s of %s expiring %s (answered %s): no row", r.LeaseID, r.Host, r.ExpiresAt.Format(time.RFC3339), r.End.Format(time.StampMilli))
			}
		case kindRelease:
			if !st.released[r.LeaseID] {
				note("release of %s by %s (answered %s): no row", r.LeaseID, r.Host, r.End.Format(time.StampMilli))
			}
		case kindCustomer:
			if name, ok := st.customers[r.ID]; !ok || name != r.Name {
				note("customer %s %q (answered %s): missing", r.ID, r.Name, r.End.Format(time.StampMilli))
			}
		case kindBundle:
			if sum, ok := st.bundles[r.Sequence]; !ok || !bytes.Equal(sum, r.SHA256) {
				note("bundle #%d (answered %s): missing or another file", r.Sequence, r.End.Format(time.StampMilli))
			}
		}
	}
	return lost, why
}
