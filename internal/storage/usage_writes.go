package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// The writes of an ingestion batch (IngestUsage, usage_ingest.go): raw reports, daily
// rollups, incidents, the licenses' totals, consumption and warnings; the chains'
// heads are in usage_chains.go.

type dailyKey struct {
	license, instance, counter string
	day                        time.Time
}

type licenseDelta struct {
	tokens, requests, reports int64
}

// writeUsage writes a decided batch and its warnings (the transaction commits after).
func writeUsage(ctx context.Context, tx pgx.Tx, st *UsageState, d *UsageDecision) (*UsageCommitted, error) {
	now := st.Now
	b := &pgx.Batch{}
	// The refusals first: a chain that was refused a fork or a gap in this batch is
	// one a new chain of the same license may restart.
	queueIncidents(b, now, d.Incidents)
	if len(d.Accepted) == 0 {
		if err := execAll(ctx, tx, b); err != nil {
			return nil, err
		}
		return &UsageCommitted{}, nil
	}
	var rLic, rIns, rCounters []string
	var rSeq []int64
	var rStart, rEnd []time.Time
	var rHash, rEnv [][]byte
	daily := map[dailyKey][2]int64{}
	deltas := map[string]*licenseDelta{}
	for _, r := range d.Accepted {
		if st.Licenses[r.LicenseID] == nil {
			return nil, errUsageNoLicense
		}
		counters, err := json.Marshal(r.Counters)
		if err != nil {
			return nil, err
		}
		rLic, rIns, rSeq = append(rLic, r.LicenseID), append(rIns, r.InstanceID), append(rSeq, r.Seq)
		rStart, rEnd, rCounters = append(rStart, r.Start), append(rEnd, r.End), append(rCounters, string(counters))
		rHash, rEnv = append(rHash, r.Hash[:]), append(rEnv, r.Envelope)
		day := entitlements.UsageDayOf(r.End)
		for name, v := range r.Counters {
			k := dailyKey{r.LicenseID, r.InstanceID, name, day}
			a := daily[k]
			daily[k] = [2]int64{a[0] + v, a[1] + 1}
		}
		dl := deltas[r.LicenseID]
		if dl == nil {
			dl = &licenseDelta{}
			deltas[r.LicenseID] = dl
		}
		dl.tokens += r.Counters[entitlements.CounterTokens]
		dl.requests += r.Counters[entitlements.CounterRequests]
		dl.reports++
	}
	b.Queue(`INSERT INTO usage_reports (received_at, license_id, instance_id, seq, period_start, period_end, envelope_sha256, envelope, counters)
		SELECT $1, u.lic, u.ins, u.seq, u.ps, u.pe, u.sha, u.env, u.counters::jsonb
		FROM unnest($2::text[], $3::text[], $4::bigint[], $5::timestamptz[], $6::timestamptz[], $7::bytea[], $8::bytea[], $9::text[])
			AS u(lic, ins, seq, ps, pe, sha, env, counters)`,
		now, rLic, rIns, rSeq, rStart, rEnd, rHash, rEnv, rCounters)
	queueDaily(b, daily)
	queueHeads(b, now, d.Heads)
	lics := queueLicenseTotals(b, now, st, deltas)
	// The rolling windows' tokens, after this batch's rollups (same transaction).
	var wLic []string
	var wFrom []time.Time
	for _, id := range lics {
		if l := st.Licenses[id]; l.Window > 0 {
			wLic, wFrom = append(wLic, id), append(wFrom, entitlements.UsageWindowFrom(now, l.Window))
		}
	}
	b.Queue(`SELECT w.lic, coalesce(sum(d.amount), 0)::bigint
		FROM unnest($1::text[], $2::date[]) AS w(lic, from_day)
		LEFT JOIN usage_daily d ON d.license_id = w.lic AND d.day >= w.from_day AND d.counter = 'tokens'
		GROUP BY w.lic`, wLic, wFrom)
	res := tx.SendBatch(ctx, b)
	for range b.Len() - 2 {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return nil, fmt.Errorf("storage: write usage: %w", err)
		}
	}
	termTokens := map[string]int64{}
	if err := scanPairs(res, termTokens); err != nil {
		res.Close()
		return nil, err
	}
	windowTokens := map[string]int64{}
	if err := scanPairs(res, windowTokens); err != nil {
		res.Close()
		return nil, err
	}
	if err := res.Close(); err != nil {
		return nil, err
	}
	return writeConsumption(ctx, tx, st, lics, termTokens, windowTokens)
}

func execAll(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	res := tx.SendBatch(ctx, b)
	for range b.Len() {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return fmt.Errorf("storage: write usage: %w", err)
		}
	}
	return res.Close()
}

func scanPairs(res pgx.BatchResults, into map[string]int64) error {
	rows, err := res.Query()
	if err != nil {
		return fmt.Errorf("storage: write usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		into[k] = v
	}
	return rows.Err()
}

// queueDaily adds the batch's counts to the daily rollups (one upsert; every key once).
func queueDaily(b *pgx.Batch, daily map[dailyKey][2]int64) {
	keys := make([]dailyKey, 0, len(daily))
	for k := range daily {
		keys = append(keys, k)
	}
	// Key order, so two batches of one license take the rows' locks in the same order.
	slices.SortFunc(keys, func(a, b dailyKey) int {
		return cmp.Or(cmp.Compare(a.license, b.license), a.day.Compare(b.day), cmp.Compare(a.instance, b.instance), cmp.Compare(a.counter, b.counter))
	})
	var lic, ins, ctr []string
	var day []time.Time
	var amt, n []int64
	for _, k := range keys {
		v := daily[k]
		lic, ins, ctr, day = append(lic, k.license), append(ins, k.instance), append(ctr, k.counter), append(day, k.day)
		amt, n = append(amt, v[0]), append(n, v[1])
	}
	b.Queue(`INSERT INTO usage_daily AS d (license_id, day, instance_id, counter, amount, reports)
		SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
		ON CONFLICT (license_id, day, instance_id, counter) DO UPDATE SET amount = d.amount + excluded.amount, reports = d.reports + excluded.reports`,
		lic, day, ins, ctr, amt, n)
}

type incidentKey struct {
	entitlements.UsageChainKey
	kind string
	seq  int64
}

// queueIncidents records the batch's forks and gaps (one row per chain, kind and seq,
// counted) and marks their chains as refused.
func queueIncidents(b *pgx.Batch, now time.Time, incs []*entitlements.UsageIncident) {
	if len(incs) == 0 {
		return
	}
	agg := map[incidentKey]*entitlements.UsageIncident{}
	var order []incidentKey
	for _, in := range incs {
		k := incidentKey{in.UsageChainKey, in.Kind, in.Seq}
		if a, ok := agg[k]; ok {
			a.Count++
			continue
		}
		c := *in
		c.Count = 1
		agg[k] = &c
		order = append(order, k)
	}
	slices.SortFunc(order, func(a, b incidentKey) int {
		return cmp.Or(cmp.Compare(a.LicenseID, b.LicenseID), cmp.Compare(a.InstanceID, b.InstanceID), cmp.Compare(a.kind, b.kind), cmp.Compare(a.seq, b.seq))
	})
	var lic, ins, kind []string
	var seq, next, count []int64
	var hash [][]byte
	for _, k := range order {
		a := agg[k]
		lic, ins, kind, seq = append(lic, a.LicenseID), append(ins, a.InstanceID), append(kind, a.Kind), append(seq, a.Seq)
		next, count, hash = append(next, a.NextSeq), append(count, a.Count), append(hash, a.Hash[:])
	}
	b.Queue(`INSERT INTO usage_incidents AS i (license_id, instance_id, kind, seq, next_seq, envelope_sha256, first_at, last_at, count)
		SELECT u.lic, u.ins, u.kind, u.seq, u.next, u.hash, $1, $1, u.count
		FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bytea[], $8::bigint[]) AS u(lic, ins, kind, seq, next, hash, count)
		ON CONFLICT (license_id, instance_id, kind, seq) DO UPDATE SET last_at = excluded.last_at, count = i.count + excluded.count`,
		now, lic, ins, kind, seq, next, hash, count)
	b.Queue(`UPDATE usage_chains c SET forks = c.forks + u.forks, gaps = c.gaps + u.gaps, last_refused_at = $1
		FROM (SELECT lic, ins, coalesce(sum(count) FILTER (WHERE kind = 'fork'), 0)::bigint AS forks,
				coalesce(sum(count) FILTER (WHERE kind = 'gap'), 0)::bigint AS gaps
			FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[]) AS x(lic, ins, kind, count) GROUP BY lic, ins) u
		WHERE c.license_id = u.lic AND c.instance_id = u.ins`,
		now, lic, ins, kind, count)
}

// queueLicenseTotals adds the batch to each license's totals (rows locked in license
// order) and returns the licenses, in that order; the upsert returns the term tokens.
func queueLicenseTotals(b *pgx.Batch, now time.Time, st *UsageState, deltas map[string]*licenseDelta) []string {
	lics := make([]string, 0, len(deltas))
	for id := range deltas {
		lics = append(lics, id)
	}
	slices.Sort(lics)
	var cus []string
	var tok, req, reps, budget, win []int64
	for _, id := range lics {
		l, dl := st.Licenses[id], deltas[id]
		cus, tok, req, reps = append(cus, l.CustomerID), append(tok, dl.tokens), append(req, dl.requests), append(reps, dl.reports)
		budget, win = append(budget, l.Budget), append(win, int64(l.Window/time.Second))
	}
	b.Queue(`INSERT INTO usage_licenses AS u (license_id, customer_id, tokens, requests, reports, budget, window_seconds, first_report_at, last_report_at)
		SELECT x.lic, x.cus, x.tok, x.req, x.reps, x.budget, x.win, $1, $1
		FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[]) WITH ORDINALITY
			AS x(lic, cus, tok, req, reps, budget, win, n)
		ORDER BY x.n
		ON CONFLICT (license_id) DO UPDATE SET tokens = u.tokens + excluded.tokens, requests = u.requests + excluded.requests,
			reports = u.reports + excluded.reports, budget = excluded.budget, window_seconds = excluded.window_seconds,
			last_report_at = excluded.last_report_at
		RETURNING license_id, tokens`,
		now, lics, cus, tok, req, reps, budget, win)
	return lics
}

// writeConsumption stores each license's consumption after the batch and writes the
// warnings it reached: a unique row per license and threshold (so racing batches,
// replicas and retries write each once), with a mail row for every enabled portal user
// of its customer, sent after the commit (internal/metering).
func writeConsumption(ctx context.Context, tx pgx.Tx, st *UsageState, lics []string, term, window map[string]int64) (*UsageCommitted, error) {
	var uLic []string
	var uUsed, uPm []int64
	var wLic, wCus []string
	var wThr []int32
	var wUsed, wBudget []int64
	for _, id := range lics {
		l := st.Licenses[id]
		used := term[id]
		if l.Window > 0 {
			used = window[id]
		}
		uLic, uUsed, uPm = append(uLic, id), append(uUsed, used), append(uPm, entitlements.UsagePermille(used, l.Budget))
		for _, t := range entitlements.UsageCrossed(used, l.Budget) {
			wLic, wCus, wThr = append(wLic, id), append(wCus, l.CustomerID), append(wThr, int32(t))
			wUsed, wBudget = append(wUsed, used), append(wBudget, l.Budget)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE usage_licenses u SET used = x.used, permille = x.pm, used_at = $1
		FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS x(lic, used, pm) WHERE u.license_id = x.lic`, st.Now, uLic, uUsed, uPm)
	b.Queue(`WITH w AS (
			INSERT INTO usage_warnings (license_id, threshold, customer_id, crossed_at, used, budget)
			SELECT x.lic, x.thr, x.cus, $1, x.used, x.budget
			FROM unnest($2::text[], $3::int[], $4::text[], $5::bigint[], $6::bigint[]) AS x(lic, thr, cus, used, budget)
			ON CONFLICT (license_id, threshold) DO NOTHING
			RETURNING license_id, threshold, customer_id, used, budget),
		m AS (
			INSERT INTO usage_warning_mails (license_id, threshold, email, created_at)
			SELECT w.license_id, w.threshold, p.email, $1 FROM w JOIN portal_users p ON p.customer_id = w.customer_id AND p.disabled_at IS NULL)
		SELECT license_id, threshold, customer_id, used, budget FROM w`,
		st.Now, wLic, wThr, wCus, wUsed, wBudget)
	res := tx.SendBatch(ctx, b)
	defer res.Close()
	if _, err := res.Exec(); err != nil {
		return nil, fmt.Errorf("storage: usage consumption: %w", err)
	}
	rows, err := res.Query()
	if err != nil {
		return nil, fmt.Errorf("storage: usage warnings: %w", err)
	}
	out := &UsageCommitted{}
	for rows.Next() {
		w := entitlements.UsageWarning{CrossedAt: st.Now}
		if err := rows.Scan(&w.LicenseID, &w.Threshold, &w.CustomerID, &w.Used, &w.Budget); err != nil {
			rows.Close()
			return nil, err
		}
		out.Warnings = append(out.Warnings, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, res.Close()
}

// errUsageNoLicense is a decision that named a license the state does not hold.
var errUsageNoLicense = errors.New("storage: a usage decision names a license the batch did not read")
