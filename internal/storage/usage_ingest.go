package storage

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// UsageSeq names one report of a batch: its chain and seq.
type UsageSeq struct {
	entitlements.UsageChainKey
	Seq int64
}

// UsageBatch is what a batch of uploads names, before anything is decided: every
// report's chain and seq, and every license.
type UsageBatch struct {
	Reports  []UsageSeq
	Licenses []string
	Now      time.Time
}

// UsageState is what the batch's transaction read, under the chains' locks.
type UsageState struct {
	Now      time.Time
	Heads    map[entitlements.UsageChainKey]*entitlements.UsageHead
	Licenses map[string]*entitlements.UsageLicense
	hashes   map[UsageSeq][32]byte
}

// Accepted is the hash of the accepted report seq of chain k, nil when the raw
// report is no longer kept (or the chain never had it).
func (st *UsageState) Accepted(k entitlements.UsageChainKey, seq int64) *[32]byte {
	h, ok := st.hashes[UsageSeq{k, seq}]
	if !ok {
		return nil
	}
	return &h
}

// UsageDecision is what the caller decided over the state: the reports to keep, in
// order, the chains' new heads, and the refusals staff should see.
type UsageDecision struct {
	Accepted  []*entitlements.UsageReport
	Heads     []*entitlements.UsageHead
	Incidents []*entitlements.UsageIncident
}

// UsageCommitted is what a committed batch changed beyond the decision: the warnings
// it wrote (each one its license's first at that threshold).
type UsageCommitted struct {
	Warnings []entitlements.UsageWarning
}

// usageLockClass is the first key of ingestion's advisory locks (the second is a
// hash of the chain); the two-key form never collides with the audit lock.
const usageLockClass = int32(0x55534147) // "USAG"

// IngestUsage runs one batch of uploads in one transaction:
//
//  1. take each named chain's advisory lock, in key order (so batches on any replica
//     can't deadlock), and read the chains' heads and the licenses;
//  2. read the hashes of accepted reports whose seqs come again (duplicates or forks);
//  3. decide (the caller: signatures and the chain rules), then write the accepted
//     reports, the daily rollups, the chains, the refusals staff see and the licenses'
//     totals; compute each license's consumption after the batch and write the
//     warnings it reached (a unique row per license and threshold) with their mails;
//     commit once.
//
// Nothing is kept unless all of it commits. A decision error fails the batch.
func (s *Store) IngestUsage(ctx context.Context, b *UsageBatch, decide func(*UsageState) (*UsageDecision, error)) (*UsageCommitted, error) {
	if err := s.ensureUsagePartitions(ctx, b.Now); err != nil {
		return nil, err
	}
	var out *UsageCommitted
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		st, err := readUsageState(ctx, tx, b)
		if err != nil {
			return err
		}
		d, err := decide(st)
		if err != nil {
			return err
		}
		out, err = writeUsage(ctx, tx, st, d)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func readUsageState(ctx context.Context, tx pgx.Tx, b *UsageBatch) (*UsageState, error) {
	keys := map[int32]bool{}
	var lics, inss []string
	seen := map[entitlements.UsageChainKey]bool{}
	for _, r := range b.Reports {
		if !seen[r.UsageChainKey] {
			seen[r.UsageChainKey] = true
			lics, inss = append(lics, r.LicenseID), append(inss, r.InstanceID)
			keys[fnv32(r.LicenseID+"/"+r.InstanceID)] = true
		}
	}
	sorted := make([]int32, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	batch := &pgx.Batch{}
	for _, k := range sorted {
		batch.Queue(`SELECT pg_advisory_xact_lock($1, $2)`, usageLockClass, k)
	}
	batch.Queue(`SELECT c.license_id, c.instance_id, c.product, c.key_id, c.host_key, c.last_seq, c.last_hash, c.last_period_end,
			c.last_totals, c.period_seconds, c.first_period_start, c.instance_fingerprint, c.reporter
		FROM usage_chains c JOIN unnest($1::text[], $2::text[]) AS k(lic, ins) ON c.license_id = k.lic AND c.instance_id = k.ins`, lics, inss)
	batch.Queue(`SELECT id, customer_id, product, instance_fingerprint, limits FROM licenses WHERE id = ANY($1)`, b.Licenses)
	res := tx.SendBatch(ctx, batch)
	defer res.Close()
	for range sorted {
		if _, err := res.Exec(); err != nil {
			return nil, fmt.Errorf("storage: lock usage chains: %w", err)
		}
	}
	st := &UsageState{Now: b.Now, Heads: map[entitlements.UsageChainKey]*entitlements.UsageHead{},
		Licenses: map[string]*entitlements.UsageLicense{}, hashes: map[UsageSeq][32]byte{}}
	rows, err := res.Query()
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		h := &entitlements.UsageHead{}
		var hash []byte
		if err := rows.Scan(&h.LicenseID, &h.InstanceID, &h.Product, &h.KeyID, &h.Key, &h.Seq, &hash, &h.PeriodEnd,
			&h.Totals, &h.PeriodSeconds, &h.FirstStart, &h.Fingerprint, &h.Reporter); err != nil {
			rows.Close()
			return nil, err
		}
		copy(h.Hash[:], hash)
		st.Heads[h.UsageChainKey] = h
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = res.Query()
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		l := &entitlements.UsageLicense{}
		var limits map[string]int64
		if err := rows.Scan(&l.ID, &l.CustomerID, &l.Product, &l.Fingerprint, &limits); err != nil {
			rows.Close()
			return nil, err
		}
		l.Budget, l.Window = entitlements.UsageBudgetOf(limits)
		st.Licenses[l.ID] = l
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := res.Close(); err != nil {
		return nil, err
	}
	// The accepted hashes of seqs that come again, in one more round trip only when
	// some do (a host re-sending after a lost answer; a fork).
	var oLic, oIns []string
	var oSeq []int64
	for _, r := range b.Reports {
		if h := st.Heads[r.UsageChainKey]; h != nil && r.Seq <= h.Seq {
			oLic, oIns, oSeq = append(oLic, r.LicenseID), append(oIns, r.InstanceID), append(oSeq, r.Seq)
		}
	}
	if len(oSeq) == 0 {
		return st, nil
	}
	rows, err = tx.Query(ctx, `SELECT r.license_id, r.instance_id, r.seq, r.envelope_sha256
		FROM usage_reports r JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS k(lic, ins, seq)
			ON r.license_id = k.lic AND r.instance_id = k.ins AND r.seq = k.seq`, oLic, oIns, oSeq)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k UsageSeq
		var h []byte
		if err := rows.Scan(&k.LicenseID, &k.InstanceID, &k.Seq, &h); err != nil {
			return nil, err
		}
		var a [32]byte
		copy(a[:], h)
		st.hashes[k] = a
	}
	return st, rows.Err()
}

// fnv32 is FNV-1a of s, as an int32 (an advisory lock key).
func fnv32(s string) int32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return int32(h)
}
