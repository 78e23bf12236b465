// Package pgtest gives tests a real PostgreSQL: one private cluster per test binary
// (started in TestMain through Main), migrated once into a template database, and a
// fresh database cloned from it for every test. TEST_DATABASE_URL points the tests at
// an existing server instead (they create and drop databases there).
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/pgcluster"
	"github.com/metrum/licensing/internal/storage"
)

var (
	cluster  *pgcluster.Cluster
	adminURL string // a database on the server to run CREATE DATABASE from
	tmplName string
	counter  atomic.Int64
)

// Main starts the cluster, runs the tests and stops it. Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		adminURL = u
	} else {
		dir, err := pgcluster.MkdirTemp("pgtest-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		cluster, err = pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			return 1
		}
		defer cluster.Stop()
		adminURL = cluster.URL("postgres")
	}
	tmplName = fmt.Sprintf("tmpl_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if err := exec(ctx, "CREATE DATABASE "+tmplName); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	s, err := storage.Open(ctx, dbURL(tmplName))
	if err == nil {
		_, err = s.Migrate(ctx)
		s.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: migrate:", err)
		return 1
	}
	code := m.Run()
	if cluster == nil {
		_ = exec(ctx, "DROP DATABASE IF EXISTS "+tmplName+" WITH (FORCE)")
	}
	return code
}

func exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func dbURL(name string) string {
	u, err := url.Parse(adminURL)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

// NewDatabase creates a fresh migrated database for t and returns its URL; it is
// dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	if tmplName == "" {
		t.Fatal("pgtest: call pgtest.Main from TestMain")
	}
	name := fmt.Sprintf("%s_t%d", tmplName, counter.Add(1))
	if err := exec(context.Background(), fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmplName)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { _ = exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	return dbURL(name)
}

// EmptyDatabase creates an empty database (from template0, not migrated: what a
// restore from a dump goes into) and returns its URL; it is dropped when the test ends.
func EmptyDatabase(t testing.TB) string {
	t.Helper()
	if tmplName == "" {
		t.Fatal("pgtest: call pgtest.Main from TestMain")
	}
	name := fmt.Sprintf("%s_e%d", tmplName, counter.Add(1))
	if err := exec(context.Background(), fmt.Sprintf("CREATE DATABASE %s TEMPLATE template0", name)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { _ = exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	return dbURL(name)
}

// NewStore returns a Store over a fresh migrated database.
func NewStore(t testing.TB) *storage.Store {
	t.Helper()
	s, err := storage.Open(context.Background(), NewDatabase(t))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Cluster is the private cluster, or nil when TEST_DATABASE_URL is in use.
func Cluster() *pgcluster.Cluster { return cluster }

// OwnCluster is the private cluster for a test that stops or freezes it (a database
// outage). With TEST_DATABASE_URL there is none: the test is skipped on a developer's
// machine, and fails in CI (CI=true), where a check that can't run must not pass.
func OwnCluster(t testing.TB, why string) *pgcluster.Cluster {
	t.Helper()
	if cluster == nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("TEST_DATABASE_URL is set in CI: %s, which needs the private test cluster", why)
		}
		t.Skipf("TEST_DATABASE_URL is set: %s, which it can't do to a shared server", why)
	}
	return cluster
}
