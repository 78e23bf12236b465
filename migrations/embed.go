// Package migrations holds the goose SQL migrations, embedded in the binary.
package migrations

import "embed"

// FS is the migration files, for goose.NewProvider.
//
//go:embed *.sql
var FS embed.FS
