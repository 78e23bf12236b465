package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/metrum/licensing/internal/entitlements"
)

// GrantLeases decides a batch of lease requests in one transaction, set-based:
//
//  1. take each license's advisory lock, in key order so batches on any replica
//     can't deadlock: shared when all its requests expect renewals (renewal batches
//     of one license then run side by side), exclusive when one may take a new slot
//     (which excludes every other batch of the license, so slot counts can't race);
//     read every request's license and slot with one query, and the clock after the
//     locks, so no two decisions disagree about which slots have expired;
//  2. count live slots, only for licenses where some host may take a new one;
//  3. decide (rules), run precommit (the caller's last check, e.g. that it can sign),
//     write every changed slot with one upsert and every request's event with one
//     insert, and commit once.
//
// Nothing is returned before the commit: a caller never hands out a lease whose row
// could still be lost. Any error fails the whole batch, which then changes nothing
// (EUNAVAILABLE), except EOUTCOMEUNKNOWN: the COMMIT was sent and not answered, and
// the batch commits only if the server got to it before its commit-by time.
func (s *Store) GrantLeases(ctx context.Context, reqs []entitlements.LeaseRequest, rules entitlements.LeaseRules, precommit func([]entitlements.LeaseDecision) error) ([]entitlements.LeaseDecision, error) {
	n := len(reqs)
	lics, hashes, fps := make([]string, n), make([][]byte, n), make([]string, n)
	for i, r := range reqs {
		lics[i], hashes[i], fps[i] = r.LicenseID, r.TokenHash, r.Fingerprint
	}
	out, err := s.grantLeases(ctx, reqs, lics, hashes, fps, rules, precommit)
	var de *entitlements.Error
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &de), errors.Is(err, context.Canceled):
		return nil, err
	}
	// Whatever else stopped the batch (a lock or statement timeout, the commit guard,
	// a renewal that changed), it stopped it before a COMMIT could apply: nothing of it
	// was made.
	return nil, &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "the database is unavailable", Err: err}
}

// The lease path's deadline (docs/operations.md, "Deadlines"). A batch runs under
// its context's deadline, the earliest of its requests' (internal/leases):
//   - the server is told it too: SET LOCAL statement_timeout and lock_timeout, and
//     metrum.lease_commit_by, leaseCommitMargin before it on the server's own clock,
//     which the commit guard (migration 00016) checks at COMMIT;
//   - a batch with less than the margin and a round trip left does not start, and
//     one with less than the margin left when it is ready to commit does not send
//     its COMMIT: both roll back, certainly.
//
// The margin covers the time between the caller sending the batch and the server
// reading the clock (network, scheduling), so a COMMIT that passes the guard came
// before the caller gave up.
const (
	leaseCommitMargin = 100 * time.Millisecond
	// leaseRollbackBound: how long the cleanup of a failed batch may wait on the
	// server (it runs after the batch's requests were answered).
	leaseRollbackBound = 2 * time.Second
)

type marginKey struct{}

// WithLeaseCommitMargin sets how long before a lease batch's deadline its commit
// guard closes (default 100 ms). Tests widen it, to hold a server inside the window
// between the guard closing and the caller giving up.
func WithLeaseCommitMargin(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, marginKey{}, d)
}

func commitMargin(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(marginKey{}).(time.Duration); ok {
		return d
	}
	return leaseCommitMargin
}

// errLeaseDeadline: too little of the batch's deadline was left to go on.
var errLeaseDeadline = errors.New("storage: lease batch deadline reached before its COMMIT was sent")

// grantLeases is GrantLeases on one connection, in two pipelined round trips:
// BEGIN + lock + read, then writes + COMMIT (and a count between them only when a new
// host may take a slot). On any failure the transaction is rolled back, and a
// connection left in a transaction is discarded by the pool on release.
func (s *Store) grantLeases(ctx context.Context, reqs []entitlements.LeaseRequest, lics []string, hashes [][]byte, fps []string,
	rules entitlements.LeaseRules, precommit func([]entitlements.LeaseDecision) error) (out []entitlements.LeaseDecision, err error) {
	margin := commitMargin(ctx)
	left, bounded := budget(ctx)
	if bounded && left < margin+50*time.Millisecond {
		return nil, errLeaseDeadline // not even a round trip is left before the guard closes
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if committed {
			conn.Release()
			return
		}
		// No COMMIT was sent, or it failed: the answers need not wait for the cleanup
		// (a ROLLBACK on a frozen server waits until it is bounded).
		go func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseRollbackBound)
			defer cancel()
			_, _ = conn.Exec(rctx, "ROLLBACK")
			conn.Release()
		}()
	}()
	locks := leaseLocks(reqs)
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	execs := 1 + len(locks)
	if bounded {
		left, _ = budget(ctx)
		ms := fmt.Sprintf("%dms", max(left.Milliseconds(), 1))
		b.Queue(`SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true),
			set_config('metrum.lease_commit_by', (clock_timestamp() + $2::interval)::text, true)`, ms, left-margin)
		execs++
	}
	for _, l := range locks {
		if l.exclusive {
			b.Queue(`SELECT pg_advisory_xact_lock($1, $2)`, leaseLockClass, l.key)
		} else {
			b.Queue(`SELECT pg_advisory_xact_lock_shared($1, $2)`, leaseLockClass, l.key)
		}
	}
	// One clock for the whole batch, read after the locks; the product's active lease
	// key is read with it, so a key past its not_after (or replaced) is refused by the
	// very batch that would have signed with it.
	b.Queue(`WITH c AS (SELECT date_trunc('second', clock_timestamp()) AS now)
		SELECT c.now, r.idx::int, t.license_id IS NOT NULL,
			coalesce(t.token_hash = r.th, false), coalesce(l.product, ''), coalesce(l.status, ''),
			coalesce(l.status_effective_at, 'epoch'), coalesce(l.not_before, 'epoch'), coalesce(l.expires_at, 'epoch'),
			coalesce(l.instance_fingerprint, ''), l.max_instances, coalesce(l.lease_ttl_seconds, 0),
			coalesce(s.lease_id, ''), coalesce(s.expires_at, 'epoch'), s.released_at IS NOT NULL,
			coalesce((SELECT k.kid FROM active_keys a JOIN signing_keys k ON k.kid = a.kid
				WHERE a.product = l.product AND a.purpose = 'lease' AND k.status = 'published'
					AND (k.not_after IS NULL OR k.not_after > c.now)), ''),
			coalesce((SELECT max(q.at) FROM recoveries q WHERE q.product = l.product)
				+ make_interval(secs => l.lease_ttl_seconds), 'epoch')
		FROM c, unnest($1::text[], $2::bytea[], $3::text[]) WITH ORDINALITY AS r(lic, th, fp, idx)
		LEFT JOIN lease_tokens t ON t.license_id = r.lic
		LEFT JOIN licenses l ON l.id = t.license_id
		LEFT JOIN leases s ON s.license_id = r.lic AND s.instance_fingerprint = r.fp
		ORDER BY r.idx`, lics, hashes, fps)
	states := make([]entitlements.LeaseState, len(reqs))
	var now time.Time
	if err := readLeaseStates(conn.SendBatch(ctx, b), execs, states, &now); err != nil {
		return nil, err
	}
	exclusive := map[string]bool{}
	for _, l := range locks {
		if l.exclusive {
			for _, id := range l.licenses {
				exclusive[id] = true
			}
		}
	}
	for i := range states {
		states[i].Exclusive = exclusive[reqs[i].LicenseID]
	}
	tx := conn.Conn()
	if err := countLiveSlots(ctx, tx, now, reqs, states, rules); err != nil {
		return nil, err
	}
	out = rules.Decide(now, reqs, states)
	if err := precommit(out); err != nil {
		return nil, err
	}
	if left, _ := budget(ctx); bounded && left < margin {
		return nil, errLeaseDeadline // nothing of the batch was sent for it to commit
	}
	w := &pgx.Batch{}
	queueLeaseWrites(w, now, reqs, states, out)
	w.Queue(`COMMIT`)
	// From here the COMMIT may reach the server: an error the server did not answer
	// leaves the outcome unknown (commitOutcome).
	res := tx.SendBatch(ctx, w)
	for range w.Len() - 1 {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return nil, commitOutcome(fmt.Errorf("storage: write leases: %w", err))
		}
	}
	tag, err := res.Exec()
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, commitOutcome(fmt.Errorf("storage: commit leases: %w", err))
	}
	if tag.String() != "COMMIT" {
		return nil, fmt.Errorf("storage: lease batch did not commit (%s)", tag)
	}
	committed = true
	return out, nil
}

// leaseLockClass is the first key of the lease path's advisory locks (the second is a
// hash of the license ID); the two-key form never collides with the audit lock.
const leaseLockClass = int32(0x4c454153) // "LEAS"

type leaseLock struct {
	key       int32
	exclusive bool
	licenses  []string
}

// leaseLocks returns the batch's locks sorted by key: one per license hash, exclusive
// when any request of a license under it asks for it. Two licenses whose IDs hash
// alike share a lock, which costs only some concurrency.
func leaseLocks(reqs []entitlements.LeaseRequest) []leaseLock {
	byKey := map[int32]*leaseLock{}
	for _, r := range reqs {
		k := leaseLockKey(r.LicenseID)
		l, ok := byKey[k]
		if !ok {
			l = &leaseLock{key: k}
			byKey[k] = l
		}
		l.exclusive = l.exclusive || r.Exclusive
		if !slices.Contains(l.licenses, r.LicenseID) {
			l.licenses = append(l.licenses, r.LicenseID)
		}
	}
	out := make([]leaseLock, 0, len(byKey))
	for _, l := range byKey {
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b leaseLock) int { return cmp.Compare(a.key, b.key) })
	return out
}

// leaseLockKey is FNV-1a of the license ID, as an int32.
func leaseLockKey(licenseID string) int32 {
	h := uint32(2166136261)
	for i := 0; i < len(licenseID); i++ {
		h = (h ^ uint32(licenseID[i])) * 16777619
	}
	return int32(h)
}

// readLeaseStates reads the first round trip: BEGIN, the locks, the states.
func readLeaseStates(res pgx.BatchResults, execs int, states []entitlements.LeaseState, now *time.Time) error {
	defer res.Close()
	for range execs {
		if _, err := res.Exec(); err != nil {
			return fmt.Errorf("storage: lock leases: %w", err)
		}
	}
	rows, err := res.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var idx int
		var st entitlements.LeaseState
		if err := rows.Scan(now, &idx, &st.Known, &st.TokenOK, &st.Product, &st.Status, &st.StatusEffectiveAt,
			&st.NotBefore, &st.ExpiresAt, &st.BoundFingerprint, &st.MaxInstances, &st.TTLSeconds,
			&st.SlotLeaseID, &st.SlotExpiresAt, &st.SlotReleased, &st.LeaseKeyID, &st.QuarantineUntil); err != nil {
			return err
		}
		states[idx-1] = st
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	return res.Close()
}

// countLiveSlots fills LiveSlots for the licenses where some request may take a new
// slot: one grouped count, and none at all for a batch of renewals.
func countLiveSlots(ctx context.Context, tx *pgx.Conn, now time.Time, reqs []entitlements.LeaseRequest, states []entitlements.LeaseState, rules entitlements.LeaseRules) error {
	var need []string
	for i := range reqs {
		if rules.NeedsCount(now, &reqs[i], &states[i]) && !slices.Contains(need, reqs[i].LicenseID) {
			need = append(need, reqs[i].LicenseID)
		}
	}
	if len(need) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT license_id, count(*) FROM leases
		WHERE license_id = ANY($1) AND expires_at > $2 AND (released_at IS NULL OR NOT freed_early)
		GROUP BY license_id`, need, now)
	if err != nil {
		return unavailable(err)
	}
	live := map[string]int64{}
	for rows.Next() {
		var id string
		var c int64
		if err := rows.Scan(&id, &c); err != nil {
			rows.Close()
			return err
		}
		live[id] = c
	}
	rows.Close()
	for i := range reqs {
		states[i].LiveSlots = live[reqs[i].LicenseID]
	}
	return rows.Err()
}

// queueLeaseWrites queues the batch's outcome: the final state of every slot that was
// granted or renewed (one upsert; a host asking twice in one batch is written once),
// and one event per authenticated request (one insert).
func queueLeaseWrites(b *pgx.Batch, now time.Time, reqs []entitlements.LeaseRequest, states []entitlements.LeaseState, ds []entitlements.LeaseDecision) {
	type slot struct{ lic, fp string }
	last := map[slot]int{}
	for i := range ds {
		if ds[i].Granted() {
			last[slot{reqs[i].LicenseID, reqs[i].Fingerprint}] = i
		}
	}
	// Renewals of slots read live are plain updates (HOT: no indexed column changes);
	// new tenures are upserts (the row may exist, expired or released).
	var rLic, rFP, rID []string
	var rExp []time.Time
	var gLic, gFP, gID []string
	var gExp []time.Time
	for k, i := range last {
		if states[i].SlotLeaseID == ds[i].LeaseID {
			rLic, rFP, rID, rExp = append(rLic, k.lic), append(rFP, k.fp), append(rID, ds[i].LeaseID), append(rExp, ds[i].ExpiresAt)
		} else {
			gLic, gFP, gID, gExp = append(gLic, k.lic), append(gFP, k.fp), append(gID, ds[i].LeaseID), append(gExp, ds[i].ExpiresAt)
		}
	}
	if len(rLic) > 0 {
		// A renewal extends only the unreleased lease it read (the release takes the
		// license's exclusive lock, so it can't slip in between; the guard makes a
		// released row impossible to extend whatever the locking). If a slot read live
		// was released or replaced under us, metrum_assert aborts the transaction before
		// the COMMIT queued behind it: no lease is signed for it, its hosts retry.
		b.Queue(`WITH u AS (UPDATE leases SET renewed_at = $5, expires_at = u.exp
			FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS u(lic, fp, id, exp)
			WHERE leases.license_id = u.lic AND leases.instance_fingerprint = u.fp
				AND leases.lease_id = u.id AND leases.released_at IS NULL RETURNING 1)
			SELECT metrum_assert(count(*) = $6, 'storage: renewed leases changed during the batch') FROM u`,
			rLic, rFP, rID, rExp, now, len(rLic))
	}
	if len(gLic) > 0 {
		b.Queue(`INSERT INTO leases (license_id, instance_fingerprint, lease_id, granted_at, renewed_at, expires_at)
			SELECT u.lic, u.fp, u.id, $5, $5, u.exp FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS u(lic, fp, id, exp)
			ON CONFLICT (license_id, instance_fingerprint) DO UPDATE SET lease_id = excluded.lease_id,
				granted_at = excluded.granted_at, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at,
				released_at = NULL, freed_early = false`,
			gLic, gFP, gID, gExp, now)
	}
	var eLic, eFP, eID, eOut, eWhy []string
	var eExp []*time.Time
	for i := range ds {
		// Only authenticated requests leave a row (lease-api.md v1.1): someone who
		// merely knows a license_id can't grow its history. Retries are decided later;
		// rate-limited requests and those no key could sign leave counters only.
		if !states[i].Known || !states[i].TokenOK || (!ds[i].Granted() && ds[i].Outcome != "refused") {
			continue
		}
		var exp *time.Time
		if ds[i].Granted() {
			exp = &ds[i].ExpiresAt
		}
		eLic, eFP, eID = append(eLic, reqs[i].LicenseID), append(eFP, reqs[i].Fingerprint), append(eID, ds[i].LeaseID)
		eOut, eWhy, eExp = append(eOut, ds[i].Outcome), append(eWhy, ds[i].Reason), append(eExp, exp)
	}
	if len(eLic) > 0 {
		b.Queue(`INSERT INTO lease_events (at, license_id, instance_fingerprint, lease_id, outcome, reason, expires_at)
			SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
				AS u(lic, fp, id, outcome, reason, exp)`,
			now, eLic, eFP, eID, eOut, eWhy, eExp)
	}
}
