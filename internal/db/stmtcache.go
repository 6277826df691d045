package db

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"reflect"
)

// stmtCacheSize is how many prepared statements each SQLite connection keeps. The statements an
// application sends are a few hundred distinct strings; IN lists of varying length add more,
// which the least recently used order drops first.
const stmtCacheSize = 512

// The embedded SQLite parses and plans a statement in Go, which costs as much as running a
// small one. gorm's own statement cache does not help inside transactions: a statement first
// seen in a transaction is prepared on that transaction, and database/sql prepares such a
// statement again on every later use. cachingConnector keeps the prepared statements on each
// physical connection instead, keyed by their text, so every Exec and Query — in a transaction
// or not — parses its statement once per connection.
type cachingConnector struct {
	inner driver.Connector
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newCachingConn(dc)
}

func (c cachingConnector) Driver() driver.Driver { return c.inner.Driver() }

// innerConn is what the wrapped SQLite connection must offer.
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
}

func newCachingConn(dc driver.Conn) (*cachingConn, error) {
	ic, ok := dc.(innerConn)
	if !ok {
		_ = dc.Close()
		return nil, errors.New("db: the SQLite driver's connection lacks context-aware exec, query, prepare or begin")
	}
	return &cachingConn{inner: ic, byQuery: map[string]*list.Element{}, lru: list.New()}, nil
}

// cachingConn is one SQLite connection with its prepared statements. database/sql never uses a
// connection from two goroutines at once, so it needs no lock.
type cachingConn struct {
	inner   innerConn
	byQuery map[string]*list.Element // of *cachedStmt
	lru     *list.List               // front: most recently used
}

type cachedStmt struct {
	query string
	stmt  driver.Stmt
	// busy is set while rows read from the statement are open: the same text run again before
	// they are closed (a query inside a loop over its own results) gets a statement of its own.
	busy bool
}

// stmt returns the cached statement for query, preparing it the first time; nil when the
// cached one is busy.
func (c *cachingConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if el, ok := c.byQuery[query]; ok {
		cs := el.Value.(*cachedStmt)
		if cs.busy {
			return nil, nil
		}
		c.lru.MoveToFront(el)
		return cs, nil
	}
	st, err := c.inner.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	cs := &cachedStmt{query: query, stmt: st}
	c.byQuery[query] = c.lru.PushFront(cs)
	for c.lru.Len() > stmtCacheSize {
		// The oldest statement that is not in use goes; one in use is skipped over.
		el := c.lru.Back()
		for el != nil && el.Value.(*cachedStmt).busy {
			el = el.Prev()
		}
		if el == nil {
			break
		}
		old := el.Value.(*cachedStmt)
		c.lru.Remove(el)
		delete(c.byQuery, old.query)
		_ = old.stmt.Close()
	}
	return cs, nil
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.inner.ExecContext(ctx, query, args)
	}
	return cs.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.inner.QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: rows, cs: cs}, nil
}

// The rest passes through: statements prepared explicitly are the caller's to close.

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) { return c.inner.Prepare(query) }
func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.inner.PrepareContext(ctx, query)
}
func (c *cachingConn) Begin() (driver.Tx, error) { //nolint:staticcheck // database/sql's older entry
	return c.inner.BeginTx(context.Background(), driver.TxOptions{})
}
func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.inner.BeginTx(ctx, opts)
}

func (c *cachingConn) Close() error {
	for el := c.lru.Front(); el != nil; el = el.Next() {
		_ = el.Value.(*cachedStmt).stmt.Close()
	}
	c.byQuery, c.lru = nil, list.New()
	return c.inner.Close()
}

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// Unwrap gives the driver's own connection to code that needs its extensions.
func (c *cachingConn) Unwrap() driver.Conn { return c.inner }

// cachedRows frees its statement for the next use when closed.
type cachedRows struct {
	driver.Rows
	cs *cachedStmt
}

func (r *cachedRows) Close() error {
	r.cs.busy = false
	return r.Rows.Close()
}

// The column-type interfaces of the driver's rows are passed on, so a scan sees the same types
// as without the cache.

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
