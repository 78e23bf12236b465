package storage

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Usage reports are partitioned by the month they were received (plain declarative
// range partitioning, migration 00022): the running issuer creates the partitions
// ahead (EnsureUsagePartitions, at start and then hourly) and drops those wholly
// older than usage.retention (DropUsagePartitions). docs/operations.md, "Usage
// reports: partitions and retention".

// UsagePartitionsAhead is how many months after the current one have partitions.
const UsagePartitionsAhead = 2

type usageParts struct {
	mu          sync.Mutex
	from, until time.Time // received_at in [from, until) has a partition
}

func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func usagePartitionName(m time.Time) string {
	return fmt.Sprintf("usage_reports_y%04dm%02d", m.Year(), int(m.Month()))
}

// ensureUsagePartitions makes sure the partition that now's reports go to exists,
// without a round trip while this process knows it does.
func (s *Store) ensureUsagePartitions(ctx context.Context, now time.Time) error {
	p := &s.usageParts
	p.mu.Lock()
	ok := !now.Before(p.from) && now.Before(p.until)
	p.mu.Unlock()
	if ok {
		return nil
	}
	_, err := s.EnsureUsagePartitions(ctx, now)
	return err
}

// EnsureUsagePartitions creates the partitions of usage_reports for now's month and
// the UsagePartitionsAhead months after it, where missing, and returns those it
// created. Replicas serialise on an advisory lock; each statement waits at most 5 s
// for its lock on the parent table (an ingestion batch holds it briefly).
func (s *Store) EnsureUsagePartitions(ctx context.Context, now time.Time) ([]string, error) {
	first := monthOf(now)
	var created []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, usagePartLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '5s'`); err != nil {
			return err
		}
		for i := range UsagePartitionsAhead + 1 {
			m := first.AddDate(0, i, 0)
			name := usagePartitionName(m)
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil {
				return err
			}
			if exists {
				continue
			}
			// The bounds are computed here, never taken from input: the statement is
			// built from integers only.
			sql := fmt.Sprintf(`CREATE TABLE %s PARTITION OF usage_reports FOR VALUES FROM ('%s') TO ('%s')`,
				name, m.Format(time.RFC3339), m.AddDate(0, 1, 0).Format(time.RFC3339))
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("storage: create %s: %w", name, err)
			}
			created = append(created, name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p := &s.usageParts
	p.mu.Lock()
	// Partitions may exist before first too (older months), but this process only
	// vouches for the ones it checked.
	p.from, p.until = first, first.AddDate(0, UsagePartitionsAhead+1, 0)
	p.mu.Unlock()
	return created, nil
}

// usagePartLock is the advisory lock of partition maintenance ("USPT").
const usagePartLock = int32(0x55535054)

// UsagePartitions lists the partitions of usage_reports and the month each holds,
// oldest first.
func (s *Store) UsagePartitions(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'usage_reports'::regclass`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// DropUsagePartitions drops the partitions of usage_reports whose every row was
// received before `before` (now less usage.retention), and returns them. A partition
// is dropped whole or not at all, so reports are kept for the retention rounded up to
// the month.
func (s *Store) DropUsagePartitions(ctx context.Context, before time.Time) ([]string, error) {
	names, err := s.UsagePartitions(ctx)
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, name := range names {
		var y, mo int
		if n, err := fmt.Sscanf(name, "usage_reports_y%04dm%02d", &y, &mo); n != 2 || err != nil || mo < 1 || mo > 12 {
			continue // not one of ours: left alone
		}
		end := time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
		if end.After(before) {
			continue
		}
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '5s'`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{name}.Sanitize())
			return err
		})
		if err != nil {
			return dropped, fmt.Errorf("storage: drop %s: %w", name, err)
		}
		dropped = append(dropped, name)
	}
	if len(dropped) > 0 {
		s.usageParts.mu.Lock()
		s.usageParts.from, s.usageParts.until = time.Time{}, time.Time{} // check again at the next batch
		s.usageParts.mu.Unlock()
	}
	return dropped, nil
}
