// Package storage is the issuer's only persistence: raw SQL over pgx v5, one file per
// table. Public methods open the transaction; private helpers take a pgx.Tx, so a
// license, its exact bytes and its audit event commit together or not at all.
package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/migrations"
)

// DefaultMaxConns is the pool size unless the database URL sets pool_max_conns.
const DefaultMaxConns = 16

// Store is the issuer's database.
type Store struct {
	pool *pgxpool.Pool
	// usageParts is the range of months usage_reports has partitions for, as far as
	// this process made sure (usage_partitions.go).
	usageParts usageParts
}

// Open connects to url and checks the connection.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("storage: database URL: %w", err)
	}
	// pgx defaults to max(4, CPUs) connections: too few for a server whose requests
	// each hold one for a transaction. pool_max_conns in the URL still wins.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	// Every statement of the issuer (staff, portal, bundles, leases) is bounded, so a
	// stuck query can't hold a connection and its locks for ever; statement_timeout in
	// the URL (?statement_timeout=60s) wins. Migrations run without it (Migrate).
	// One time zone for every session, so date_trunc buckets (console plots) are UTC.
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	if _, ok := cfg.ConnConfig.RuntimeParams["statement_timeout"]; !ok {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = DefaultStatementTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("storage: connect: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close releases the pool.
func (s *Store) Close() { s.pool.Close() }

// Ping checks the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Pool exposes the pool to code that needs raw access (tests, benchmarks).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// DefaultStatementTimeout bounds each statement on the issuer's pool.
const DefaultStatementTimeout = "30s"

// Migrate applies every pending goose migration and returns what it applied. It runs
// on a connection of its own without the statement timeout: a migration that
// rewrites a large table may take longer than any request should.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	cfg := s.pool.Config()
	cfg.MaxConns, cfg.MinConns = 1, 0
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "0"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("storage: migrations: %w", err)
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		return nil, fmt.Errorf("storage: migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: migrate: %w", err)
	}
	var applied []string
	for _, r := range res {
		applied = append(applied, r.Source.Path)
	}
	return applied, nil
}

// inTx runs fn in a transaction, committing only when fn returns nil. fn must do all
// its database work through tx: a second pool connection taken inside it can wait on
// locks the transaction holds, and with the pool exhausted that is a deadlock.
//
// Under a deadline, the transaction's statements and lock waits are bounded by what is
// left of it (beginQuery). A COMMIT the server neither confirmed nor refused is
// EOUTCOMEUNKNOWN, not "unavailable", which promises nothing was made.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: beginQuery(ctx)})
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback(ctx) // no-op after commit; with ctx done, pgx drops the connection and the server rolls back
	if err := fn(tx); err != nil {
		return bounded(err)
	}
	if err := ctx.Err(); err != nil {
		return unavailable(err) // not sent: rolled back
	}
	if err := tx.Commit(ctx); err != nil {
		if rejected(err) || pgconn.SafeToRetry(err) {
			return unavailable(fmt.Errorf("storage: commit: %w", err))
		}
		return outcomeUnknown(fmt.Errorf("storage: commit: %w", err))
	}
	return nil
}

// unavailable marks failures to reach the database so the API can answer 503: any
// error that is not the server's answer to the statement, and the server's own
// connection, shutdown and resource errors (SQLSTATE classes 08, 57, 53). Domain
// errors pass through unchanged.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var de *entitlements.Error
	if errors.As(err, &de) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "57", "53":
		default:
			return err
		}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "the database is unavailable", Err: err}
}

// notFound turns pgx.ErrNoRows into the domain's not-found.
func notFound(err error, what, id string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return entitlements.NotFound(what, id)
	}
	return fmt.Errorf("storage: %s %s: %w", what, id, err)
}

// isUniqueViolation reports a unique constraint failure, optionally a named one.
func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (constraint == "" || pgErr.ConstraintName == constraint)
}

// isForeignKeyViolation reports a foreign key failure.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
