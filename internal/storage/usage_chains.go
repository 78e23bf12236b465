package storage

import (
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// queueHeads writes the chains' new heads: an update for known chains, an insert for
// new ones, each new chain recorded as the restart of an earlier chain of its license
// when one fits (docs/usage.md, "Restarts"): one the issuer refused a fork or a gap
// since its last accepted report, one whose last period ended where the new chain's
// first starts, or one with the same instance fingerprint.
func queueHeads(b *pgx.Batch, now time.Time, heads []*entitlements.UsageHead) {
	var uLic, uIns, uTotals, uRep []string
	var uSeq, uPer []int64
	var uHash [][]byte
	var uEnd []time.Time
	var nLic, nIns, nProd, nKid, nFP, nRep, nTotals []string
	var nKey, nHash [][]byte
	var nFirst, nEnd []time.Time
	var nSeq, nPer []int64
	for _, h := range heads {
		totals, _ := json.Marshal(h.Totals)
		if !h.New {
			uLic, uIns, uSeq, uHash = append(uLic, h.LicenseID), append(uIns, h.InstanceID), append(uSeq, h.Seq), append(uHash, h.Hash[:])
			uEnd, uTotals, uPer, uRep = append(uEnd, h.PeriodEnd), append(uTotals, string(totals)), append(uPer, h.PeriodSeconds), append(uRep, h.Reporter)
			continue
		}
		nLic, nIns, nProd, nKid, nFP = append(nLic, h.LicenseID), append(nIns, h.InstanceID), append(nProd, h.Product), append(nKid, h.KeyID), append(nFP, h.Fingerprint)
		nRep, nTotals, nKey, nHash = append(nRep, h.Reporter), append(nTotals, string(totals)), append(nKey, h.Key), append(nHash, h.Hash[:])
		nFirst, nEnd, nSeq, nPer = append(nFirst, h.FirstStart), append(nEnd, h.PeriodEnd), append(nSeq, h.Seq), append(nPer, h.PeriodSeconds)
	}
	if len(uLic) > 0 {
		b.Queue(`UPDATE usage_chains c SET last_seq = u.seq, last_hash = u.hash, last_period_end = u.pe, last_totals = u.totals::jsonb,
				period_seconds = u.per, reporter = u.rep, last_report_at = $1
			FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bytea[], $6::timestamptz[], $7::text[], $8::bigint[], $9::text[])
				AS u(lic, ins, seq, hash, pe, totals, per, rep)
			WHERE c.license_id = u.lic AND c.instance_id = u.ins`,
			now, uLic, uIns, uSeq, uHash, uEnd, uTotals, uPer, uRep)
	}
	if len(nLic) > 0 {
		b.Queue(`WITH n AS (
			INSERT INTO usage_chains (license_id, instance_id, product, key_id, host_key, instance_fingerprint, reporter,
				first_period_start, last_seq, last_hash, last_period_end, last_totals, period_seconds, created_at, last_report_at, restart_of)
			SELECT u.lic, u.ins, u.prod, u.kid, u.key, u.fp, u.rep, u.first, u.seq, u.hash, u.pe, u.totals::jsonb, u.per, $1, $1,
				coalesce((SELECT c.instance_id FROM usage_chains c
					WHERE c.license_id = u.lic AND c.restarted_by = ''
						AND (c.last_refused_at >= c.last_report_at OR c.last_period_end = u.first
							OR (u.fp <> '' AND c.instance_fingerprint = u.fp))
					ORDER BY c.last_report_at DESC, c.instance_id LIMIT 1), '')
			FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::text[], $8::text[], $9::timestamptz[],
				$10::bigint[], $11::bytea[], $12::timestamptz[], $13::text[], $14::bigint[])
				AS u(lic, ins, prod, kid, key, fp, rep, first, seq, hash, pe, totals, per)
			RETURNING license_id, instance_id, restart_of)
		UPDATE usage_chains c SET restarted_by = n.instance_id FROM n
			WHERE n.restart_of <> '' AND c.license_id = n.license_id AND c.instance_id = n.restart_of`,
			now, nLic, nIns, nProd, nKid, nKey, nFP, nRep, nFirst, nSeq, nHash, nEnd, nTotals, nPer)
	}
}
