package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/switchboard-cloud/switchboard/tenant"
)

// The row-level security policies read app.tenant_id and app.platform, which must be set for
// the transaction a statement runs in. Sent the plain way that is BEGIN, set_config, the
// statement and COMMIT: four round trips for one read. scopedConnector wraps pgx's
// database/sql connector so that a statement made outside a transaction, for a context that
// names a tenant or platform access, goes out as one pipeline — set_config then the statement,
// then a single Sync. PostgreSQL runs the messages before a Sync as one implicit transaction,
// so the setting (local to that transaction) holds for the statement and is gone when it ends:
// one round trip, and nothing is left on the connection for the next user. Statements inside
// an explicit transaction (tenant.DB.Tx sets the settings once at its start) and statements
// for an unscoped context pass through untouched.
type scopedConnector struct {
	inner driver.Connector
}

func (c scopedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := dc.(*stdlib.Conn)
	if !ok {
		_ = dc.Close()
		return nil, fmt.Errorf("db: pgx connector returned %T", dc)
	}
	return &scopedConn{Conn: sc}, nil
}

func (c scopedConnector) Driver() driver.Driver { return c.inner.Driver() }

// scopedConn is a pgx connection that knows whether it is inside a transaction.
type scopedConn struct {
	*stdlib.Conn
	inTx bool
}

func (c *scopedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if opts.Isolation == driver.IsolationLevel(sql.LevelDefault) && !opts.ReadOnly && tenant.Scoped(ctx) {
		return c.beginScoped(ctx)
	}
	tx, err := c.Conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	c.inTx = true
	return &scopedTx{Tx: tx, conn: c}, nil
}

func (c *scopedConn) Begin() (driver.Tx, error) { //nolint:staticcheck // database/sql's older entry
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *scopedConn) pipelined(ctx context.Context) bool {
	return !c.inTx && tenant.Scoped(ctx)
}

func (c *scopedConn) ExecContext(ctx context.Context, query string, argsV []driver.NamedValue) (driver.Result, error) {
	if !c.pipelined(ctx) {
		return c.Conn.ExecContext(ctx, query, argsV)
	}
	br, err := c.send(ctx, query, argsV)
	if err != nil {
		return nil, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

func (c *scopedConn) QueryContext(ctx context.Context, query string, argsV []driver.NamedValue) (driver.Rows, error) {
	if !c.pipelined(ctx) {
		return c.Conn.QueryContext(ctx, query, argsV)
	}
	br, err := c.send(ctx, query, argsV)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	// Read the first row now: database/sql asks for the columns before the first Next, and
	// an error in the statement belongs to this call.
	more := rows.Next()
	if err := rows.Err(); err != nil {
		rows.Close()
		_ = br.Close()
		return nil, err
	}
	return &scopedRows{rows: rows, batch: br, typeMap: c.Conn.Conn().TypeMap(), pending: true, more: more}, nil
}

// send queues the settings and the statement and reads the settings' result; the caller reads
// the statement's and closes the batch.
func (c *scopedConn) send(ctx context.Context, query string, argsV []driver.NamedValue) (pgx.BatchResults, error) {
	pc := c.Conn.Conn()
	if pc.IsClosed() {
		return nil, driver.ErrBadConn
	}
	tid, platform := tenant.Settings(ctx)
	args := make([]any, len(argsV))
	for i, v := range argsV {
		args[i] = v.Value
	}
	b := &pgx.Batch{}
	b.Queue(tenant.SetConfigSQL, tid, platform)
	b.Queue(query, args...)
	br := pc.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		if pgconn.SafeToRetry(err) {
			return nil, driver.ErrBadConn
		}
		return nil, fmt.Errorf("db: set tenant: %w", err)
	}
	return br, nil
}

// beginScoped opens a transaction for a context that names a tenant or platform access and
// sets the row-level security settings for it in the same round trip: BEGIN and set_config go
// out as one pipeline. A BEGIN in a pipeline opens a transaction block that outlives the
// pipeline's Sync, so the settings (local to the transaction) hold until its end. tenant.DB
// is told (BeginSetsSettings) and does not set them again.
func (c *scopedConn) beginScoped(ctx context.Context) (driver.Tx, error) {
	pc := c.Conn.Conn()
	if pc.IsClosed() {
		return nil, driver.ErrBadConn
	}
	tid, platform := tenant.Settings(ctx)
	b := &pgx.Batch{}
	b.Queue("begin")
	b.Queue(tenant.SetConfigSQL, tid, platform)
	br := pc.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if pc.PgConn().TxStatus() != 'I' {
			_ = pc.Close(ctx) // a half-open transaction must not go back to the pool
			return nil, fmt.Errorf("db: begin: %w", err)
		}
		if pgconn.SafeToRetry(err) {
			return nil, driver.ErrBadConn
		}
		return nil, fmt.Errorf("db: begin: %w", err)
	}
	c.inTx = true
	return &pipelinedTx{conn: c, ctx: ctx}, nil
}

// pipelinedTx ends a transaction beginScoped opened, as pgx's own transaction does.
type pipelinedTx struct {
	conn *scopedConn
	ctx  context.Context
}

func (t *pipelinedTx) Commit() error {
	t.conn.inTx = false
	pc := t.conn.Conn.Conn()
	tag, err := pc.Exec(t.ctx, "commit")
	if err != nil {
		if pc.PgConn().TxStatus() != 'I' {
			_ = pc.Close(t.ctx)
		}
		return err
	}
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback // the transaction had failed: COMMIT rolled it back
	}
	return nil
}

func (t *pipelinedTx) Rollback() error {
	t.conn.inTx = false
	pc := t.conn.Conn.Conn()
	if _, err := pc.Exec(t.ctx, "rollback"); err != nil {
		_ = pc.Close(t.ctx)
		return err
	}
	return nil
}

type scopedTx struct {
	driver.Tx
	conn *scopedConn
}

func (t *scopedTx) Commit() error {
	t.conn.inTx = false
	return t.Tx.Commit()
}

func (t *scopedTx) Rollback() error {
	t.conn.inTx = false
	return t.Tx.Rollback()
}

// scopedRows gives database/sql the rows of a pipelined statement, in the representation pgx's
// own database/sql driver uses (each type's DecodeDatabaseSQLValue).
type scopedRows struct {
	rows    pgx.Rows
	batch   pgx.BatchResults
	typeMap *pgtype.Map
	columns []string
	pending bool // the first row was read by QueryContext
	more    bool
}

func (r *scopedRows) Columns() []string {
	if r.columns == nil {
		fds := r.rows.FieldDescriptions()
		r.columns = make([]string, len(fds))
		for i, fd := range fds {
			r.columns[i] = fd.Name
		}
	}
	return r.columns
}

func (r *scopedRows) Close() error {
	r.rows.Close()
	err := r.rows.Err()
	if cerr := r.batch.Close(); err == nil {
		err = cerr
	}
	return err
}

func (r *scopedRows) Next(dest []driver.Value) error {
	more := r.more
	if r.pending {
		r.pending = false
	} else {
		more = r.rows.Next()
	}
	if !more {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	fds := r.rows.FieldDescriptions()
	for i, raw := range r.rows.RawValues() {
		if raw == nil {
			dest[i] = nil
			continue
		}
		fd := fds[i]
		t, ok := r.typeMap.TypeForOID(fd.DataTypeOID)
		if !ok {
			// Types pgx does not know come as text.
			dest[i] = string(raw)
			continue
		}
		v, err := t.Codec.DecodeDatabaseSQLValue(r.typeMap, fd.DataTypeOID, fd.Format, raw)
		if err != nil {
			return fmt.Errorf("db: column %s: %w", fd.Name, err)
		}
		dest[i] = v
	}
	return nil
}
