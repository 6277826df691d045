package db

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteAheadLogIsCheckpointedInTheBackground(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ckpt.db")
	g, _, err := Open(Options{SQLitePath: path})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := g.DB()
	t.Cleanup(func() { _ = sqlDB.Close() })
	if _, err := sqlDB.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	// Far fewer pages than wal_autocheckpoint's mark: only the background loop copies them.
	tx, err := sqlDB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, err := tx.Exec(`INSERT INTO t (id, body) VALUES (?, ?)`, i, strings.Repeat("x", 2000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if size() != before {
		t.Fatalf("the database file changed at commit (%d → %d bytes): the commit checkpointed", before, size())
	}
	deadline := time.Now().Add(5 * time.Second)
	for size() <= before+200*2000 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := size(); got <= before+200*2000 {
		t.Fatalf("after 5 s the database file is %d bytes (was %d): the log was not checkpointed", got, before)
	}
}
