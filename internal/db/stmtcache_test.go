package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	moderncsqlite "modernc.org/sqlite"
)

// countingConnector counts the statements the SQLite driver is asked to prepare.
type countingConnector struct {
	driver.Connector
	prepares *atomic.Int64
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{innerConn: dc.(innerConn), prepares: c.prepares}, nil
}

type countingConn struct {
	innerConn
	prepares *atomic.Int64
}

func (c *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.prepares.Add(1)
	return c.innerConn.PrepareContext(ctx, q)
}

// cachedDB opens a SQLite file through cachingConnector on one connection, counting prepares.
func cachedDB(t *testing.T) (*sql.DB, *atomic.Int64) {
	t.Helper()
	inner, err := moderncsqlite.NewConnector(SQLiteDSN(filepath.Join(t.TempDir(), "cache.db")))
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	db := sql.OpenDB(cachingConnector{inner: countingConnector{Connector: inner, prepares: &n}})
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, at DATETIME)`); err != nil {
		t.Fatal(err)
	}
	return db, &n
}

func TestStatementsArePreparedOncePerConnection(t *testing.T) {
	db, prepares := cachedDB(t)
	before := prepares.Load()
	at := time.Date(2026, 12, 6, 10, 0, 0, 123456000, time.UTC)
	for i := range 50 {
		// Alternately outside and inside a transaction: both use the connection's statement.
		if i%2 == 0 {
			if _, err := db.Exec(`INSERT INTO t (id, name, at) VALUES (?, ?, ?)`, i, fmt.Sprint("n", i), at); err != nil {
				t.Fatal(err)
			}
			continue
		}
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO t (id, name, at) VALUES (?, ?, ?)`, i, fmt.Sprint("n", i), at); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	var count int
	for range 20 {
		if err := db.QueryRow(`SELECT COUNT(*) FROM t WHERE name LIKE ?`, "n%").Scan(&count); err != nil {
			t.Fatal(err)
		}
	}
	if count != 50 {
		t.Fatalf("rows: %d, want 50", count)
	}
	var at2 time.Time
	if err := db.QueryRow(`SELECT at FROM t WHERE id = ?`, 7).Scan(&at2); err != nil {
		t.Fatal(err)
	}
	if !at2.Equal(at) {
		t.Fatalf("time read back as %v, want %v (microseconds kept)", at2, at)
	}
	// Three distinct statements (the insert, the count, the lookup) run 71 times: each is
	// prepared once on the one connection.
	if n := prepares.Load() - before; n != 3 {
		t.Fatalf("%d prepares for 3 distinct statements run 71 times, want 3", n)
	}
}

func TestStatementRunInsideItsOwnRowsLoop(t *testing.T) {
	db, _ := cachedDB(t)
	for i := range 5 {
		if _, err := db.Exec(`INSERT INTO t (id, name) VALUES (?, ?)`, i, fmt.Sprint("n", i)); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // the test fails either way
	const q = `SELECT id, name FROM t WHERE id >= ? ORDER BY id`
	rows, err := tx.Query(q, 0)
	if err != nil {
		t.Fatal(err)
	}
	outer, inner := 0, 0
	for rows.Next() {
		var id int
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		outer++
		// The same text again while its rows are open: it must not reset the outer query.
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM (`+q+`)`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		again, err := tx.Query(q, id)
		if err != nil {
			t.Fatal(err)
		}
		for again.Next() {
			inner++
		}
		if err := again.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	_ = rows.Close()
	if outer != 5 || inner != 5+4+3+2+1 {
		t.Fatalf("outer %d rows (want 5), inner %d (want 15)", outer, inner)
	}
}

func TestStatementCacheEvictsBeyondItsSize(t *testing.T) {
	db, prepares := cachedDB(t)
	if _, err := db.Exec(`INSERT INTO t (id, name) VALUES (1, 'a')`); err != nil {
		t.Fatal(err)
	}
	// More distinct texts than the cache holds, each still answering right; then the first
	// again, which was evicted and is prepared anew.
	for i := range stmtCacheSize + 50 {
		var got int
		if err := db.QueryRow(fmt.Sprintf(`SELECT id + %d FROM t WHERE name = ?`, i), "a").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != 1+i {
			t.Fatalf("query %d: %d", i, got)
		}
	}
	before := prepares.Load()
	var got int
	if err := db.QueryRow(`SELECT id + 0 FROM t WHERE name = ?`, "a").Scan(&got); err != nil || got != 1 {
		t.Fatalf("evicted statement again: %d, %v", got, err)
	}
	if prepares.Load() != before+1 {
		t.Fatalf("the oldest statement should have been evicted and prepared again")
	}
}
