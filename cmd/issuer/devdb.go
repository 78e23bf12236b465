package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/config"
	"github.com/metrum/licensing/internal/pgcluster"
)

// devDatabaseURL starts (or joins) the private dev cluster under the data folder and
// makes sure its `issuer` database exists. It is what runs when DATABASE_URL is unset.
func devDatabaseURL(c *config.Config) (string, *pgcluster.Cluster, error) {
	ctx := context.Background()
	if err := os.MkdirAll(c.Database.DataDir, 0o711); err != nil {
		return "", nil, err
	}
	// The server may run as the postgres user: it must be able to pass through.
	_ = os.Chmod(c.Database.DataDir, 0o711)
	cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(c.Database.DataDir, "pg"), Durable: true})
	if err != nil {
		return "", nil, err
	}
	conn, err := pgx.Connect(ctx, cl.URL("postgres"))
	if err != nil {
		return "", cl, fmt.Errorf("dev database: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'issuer')`).Scan(&exists); err != nil {
		return "", cl, err
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE DATABASE issuer`); err != nil {
			return "", cl, err
		}
	}
	return cl.URL("issuer"), cl, nil
}
