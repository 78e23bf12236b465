package storage_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/metrum/licensing/internal/pgtest"
	"github.com/metrum/licensing/migrations"
)

// TestOperationsMigrationsDownUpIdempotent: the operations migrations (00016 the lease
// commit guard, 00017 bulk jobs) go down and up again, and their Up runs twice on a
// database that has it without failing (each statement is idempotent).
func TestOperationsMigrationsDownUpIdempotent(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("pgx", pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	objects := func() string {
		var s string
		if err := db.QueryRowContext(ctx, `SELECT concat_ws(',', to_regclass('bulk_jobs'), to_regclass('bulk_job_items'),
			(SELECT tgname FROM pg_trigger WHERE tgname = 'lease_events_commit_guard'), to_regproc('metrum_assert'))`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	all := "bulk_jobs,bulk_job_items,lease_events_commit_guard,metrum_assert"
	if got := objects(); got != all {
		t.Fatalf("migrated: %q", got)
	}
	if _, err := p.DownTo(ctx, 12); err != nil {
		t.Fatal(err)
	}
	if got := objects(); got != "" {
		t.Fatalf("after down to 12: %q", got)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if got := objects(); got != all {
		t.Fatalf("up again: %q", got)
	}
	for _, name := range []string{"00016_lease_commit_guard.sql", "00017_bulk_jobs.sql"} {
		b, err := migrations.FS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		up, _, _ := strings.Cut(string(b), "-- +goose Down")
		if _, err := db.ExecContext(ctx, up); err != nil {
			t.Fatalf("%s's Up again: %v", name, err)
		}
	}
	if got := objects(); got != all {
		t.Fatalf("after the Ups again: %q", got)
	}
}
