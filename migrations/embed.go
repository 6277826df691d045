// Package migrations holds the versioned SQL schema, one set per dialect, applied with goose.
// Tenant tables carry tenant_id first in every primary key and unique constraint (Citus-ready);
// on PostgreSQL each also has a FORCE'd row-level security policy on app.tenant_id.
package migrations

import "embed"

// SQLite is the embedded default's schema.
//
//go:embed sqlite/*.sql
var SQLite embed.FS

// Postgres is the production schema.
//
//go:embed postgres/*.sql
var Postgres embed.FS
