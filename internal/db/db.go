// Package db opens the SQL database (embedded SQLite or PostgreSQL) and applies the versioned
// migrations. Module code never uses it directly: it goes through tenant.DB.
package db

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/libtnb/sqlite"
	"github.com/pressly/goose/v3"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	moderncsqlite "modernc.org/sqlite"

	"github.com/switchboard-cloud/switchboard/migrations"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Options says which database to open.
type Options struct {
	// URL is a postgres:// URL; empty opens SQLite at SQLitePath.
	URL        string
	SQLitePath string
	MaxConns   int
}

// SQLiteDSN is the DSN of the embedded database: WAL so readers do not block the writer, a busy
// timeout instead of immediate SQLITE_BUSY, foreign keys on, and write transactions that take
// the write lock at BEGIN so two of them never deadlock upgrading read locks. Times are written
// as "2006-01-02 15:04:05.999999999-07:00" and read back as time.Time only from columns declared
// as times: the result of strftime() and the like stays text, as the queries expect. The log is
// checkpointed in the background (see checkpoint); SQLite's own checkpoint in the commit is the
// fallback past 10,000 pages (~40 MB). Each connection may cache 32 MB of pages (SQLite's default
// is 2 MB), taken as pages are read: once the inbox outgrows a few megabytes, index pages of the
// tables every message writes would otherwise be read back from the OS inside the write lock.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(10000)&_pragma=cache_size(-32768)&_txlock=immediate" +
		"&_time_format=sqlite&_texttotime=0&_inttotime=0"
}

// Open opens the database and returns it with its dialect.
func Open(opts Options) (*gorm.DB, tenant.Dialect, error) {
	gcfg := &gorm.Config{
		Logger:                 logger.Default.LogMode(logger.Silent),
		SkipDefaultTransaction: true, // tenant.DB decides where transactions go
		NowFunc:                func() time.Time { return time.Now().UTC() },
		TranslateError:         true,
	}
	if opts.URL != "" {
		pcfg, err := pgx.ParseConfig(opts.URL)
		if err != nil {
			return nil, "", fmt.Errorf("db: parse DATABASE_URL: %w", err)
		}
		sqlDB := sql.OpenDB(scopedConnector{inner: stdlib.GetConnector(*pcfg)})
		g, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), gcfg)
		if err != nil {
			_ = sqlDB.Close()
			return nil, "", fmt.Errorf("db: open postgres: %w", err)
		}
		n := opts.MaxConns
		if n <= 0 {
			n = 20
		}
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
		return g, tenant.Postgres, nil
	}
	if err := os.MkdirAll(filepath.Dir(opts.SQLitePath), 0o700); err != nil {
		return nil, "", fmt.Errorf("db: create data dir: %w", err)
	}
	// Statements are cached on each connection (cachingConnector), not by gorm: gorm's cache
	// prepares a statement first seen in a transaction again on every later use.
	conn, err := moderncsqlite.NewConnector(SQLiteDSN(opts.SQLitePath))
	if err != nil {
		return nil, "", fmt.Errorf("db: sqlite dsn: %w", err)
	}
	sqlDB := sql.OpenDB(cachingConnector{inner: conn})
	g, err := gorm.Open(sqlite.New(sqlite.Config{Conn: sqlDB}), gcfg)
	if err != nil {
		_ = sqlDB.Close()
		return nil, "", fmt.Errorf("db: open sqlite %s: %w", opts.SQLitePath, err)
	}
	sqlDB.SetMaxOpenConns(8)
	sqlDB.SetMaxIdleConns(8)
	go checkpoint(sqlDB, time.Second)
	return g, tenant.SQLite, nil
}

// checkpoint copies the write-ahead log into the database file every interval, outside any
// write transaction, until db is closed. SQLite's own checkpoint runs inside the commit that
// crosses wal_autocheckpoint pages, so the one writer of the process — and every request
// waiting on it — would wait for the copy and its fsync; a PASSIVE checkpoint runs beside the
// writer instead. wal_autocheckpoint stays on at a higher mark (SQLiteDSN) as the safety net
// should this loop fall behind.
func checkpoint(db *sql.DB, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for range t.C {
		// database/sql has no exported error for a closed *sql.DB; its text is what says so.
		if _, err := db.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil && strings.Contains(err.Error(), "database is closed") {
			return
		}
	}
}

// Migrator applies the schema of one dialect.
type Migrator struct {
	p       *goose.Provider
	sqlDB   *sql.DB
	dialect tenant.Dialect
}

// NewMigrator prepares goose for sqlDB, which must be connected as the tables' owner.
func NewMigrator(sqlDB *sql.DB, dialect tenant.Dialect) (*Migrator, error) {
	var fsys fs.FS
	var gd goose.Dialect
	var err error
	switch dialect {
	case tenant.Postgres:
		fsys, err = fs.Sub(migrations.Postgres, "postgres")
		gd = goose.DialectPostgres
	default:
		fsys, err = fs.Sub(migrations.SQLite, "sqlite")
		gd = goose.DialectSQLite3
	}
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(gd, sqlDB, fsys)
	if err != nil {
		return nil, fmt.Errorf("db: migrations: %w", err)
	}
	return &Migrator{p: p, sqlDB: sqlDB, dialect: dialect}, nil
}

// Up applies every pending migration.
func (m *Migrator) Up(ctx context.Context, log *slog.Logger) error {
	res, err := m.p.Up(ctx)
	for _, r := range res {
		log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
	}
	if err != nil {
		return fmt.Errorf("db: migrate up: %w", err)
	}
	return nil
}

// Down rolls back the newest migration.
func (m *Migrator) Down(ctx context.Context) error {
	if _, err := m.p.Down(ctx); err != nil {
		return fmt.Errorf("db: migrate down: %w", err)
	}
	return nil
}

// Status lists each migration and whether it is applied.
func (m *Migrator) Status(ctx context.Context) ([]string, error) {
	st, err := m.p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("db: migrate status: %w", err)
	}
	out := make([]string, 0, len(st))
	for _, s := range st {
		applied := "pending"
		if s.State == goose.StatePending {
			applied = "pending"
		} else {
			applied = "applied " + s.AppliedAt.UTC().Format(time.RFC3339)
		}
		out = append(out, fmt.Sprintf("%05d %-40s %s", s.Source.Version, filepath.Base(s.Source.Path), applied))
	}
	return out, nil
}

// GrantApp gives the application role what it may do and no more: it owns nothing (so RLS
// binds it as well as FORCE does), and may only read and append the audit log.
func (m *Migrator) GrantApp(ctx context.Context, appRole string) error {
	if m.dialect != tenant.Postgres || appRole == "" {
		return nil
	}
	role := pgx.Identifier{appRole}.Sanitize()
	for _, q := range []string{
		`GRANT USAGE ON SCHEMA public TO ` + role,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ` + role,
		`REVOKE UPDATE, DELETE ON audit_events FROM ` + role,
		`REVOKE UPDATE, DELETE ON usage_events FROM ` + role,
		`REVOKE UPDATE, DELETE ON invoices FROM ` + role,
		`GRANT UPDATE (status, push_status, push_error, stripe_invoice_id) ON invoices TO ` + role,
		`REVOKE INSERT, UPDATE, DELETE ON goose_db_version FROM ` + role,
	} {
		if _, err := m.sqlDB.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("db: grant app role: %s: %w", q, err)
		}
	}
	return nil
}

// UserOf returns the user name in a postgres URL or key=value DSN.
func UserOf(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.User.Username()
	}
	for _, kv := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(kv, "user="); ok {
			return v
		}
	}
	return ""
}
