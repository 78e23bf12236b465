package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/metrum/licensing/internal/entitlements"
)

// Deadlines (docs/operations.md, "Deadlines"). A request's deadline reaches the
// database twice: through the context (pgx gives up on the connection when it ends)
// and as SET LOCAL statement_timeout and lock_timeout at the start of each
// transaction, so the server itself abandons a statement or a lock wait once nobody
// waits for it, instead of holding its locks until the session's 30 s timeout.

// budget is what is left of ctx's deadline (ok false: it has none).
func budget(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Deadline()
	if !ok {
		return 0, false
	}
	return time.Until(d), true
}

// beginQuery opens a transaction bounded by ctx's deadline (one round trip: pgx sends
// a query without arguments as one simple-protocol message).
func beginQuery(ctx context.Context) string {
	left, ok := budget(ctx)
	if !ok {
		return "BEGIN"
	}
	ms := max(left.Milliseconds(), 1)
	return fmt.Sprintf("BEGIN; SET LOCAL statement_timeout = %d; SET LOCAL lock_timeout = %d", ms, ms)
}

// outcomeUnknown: a COMMIT was sent and no answer said how it ended (the connection
// broke or the deadline came first). The change may or may not have been made.
func outcomeUnknown(err error) error {
	return &entitlements.Error{Code: entitlements.EOUTCOMEUNKNOWN,
		Message: "the database did not confirm the change in time: it may or may not have been made; check before retrying", Err: err}
}

// rejected reports whether err is the server's refusal of a statement (severity
// ERROR): its transaction is aborted, and nothing of it can commit any more. FATAL
// and PANIC end the session instead, and a broken connection says nothing.
func rejected(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	sev := pg.SeverityUnlocalized
	if sev == "" {
		sev = pg.Severity
	}
	return sev == "ERROR"
}

// commitOutcome classifies the error of a COMMIT (or of a pipeline ending in one):
// refused by the server or never sent means rolled back (an unavailable error: the
// caller may say nothing changed); anything else means the outcome is unknown.
func commitOutcome(err error) error {
	if rejected(err) || pgconn.SafeToRetry(err) {
		return unavailable(err)
	}
	return outcomeUnknown(err)
}

// bounded says "unavailable" for the ways a deadline ends a statement: the context's
// deadline (pgx gave up), statement_timeout (57014) or lock_timeout (55P03), so the
// caller answers 503, not 500. Other errors pass unchanged.
func bounded(err error) error {
	var de *entitlements.Error
	if errors.As(err, &de) {
		return err
	}
	var pg *pgconn.PgError
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &pg) && (pg.Code == "55P03" || pg.Code == "57014")) {
		return &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "the database did not answer in time", Err: err}
	}
	return err
}
