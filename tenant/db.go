package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ErrNoTenant is what a tenant-owned query without a tenant in its context gets: an error,
// never "all rows".
var ErrNoTenant = errors.New("tenant: no tenant in context for a tenant-owned table")

// ErrCrossTenant is returned when a row is written with a tenant_id other than the context's.
var ErrCrossTenant = errors.New("tenant: row belongs to another tenant")

// Dialect names the SQL database behind the handle.
type Dialect string

// Dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is the only way the modules reach the database. Every statement on a table with a
// tenant_id column is scoped to the context's tenant (reads and writes filtered, inserts
// stamped); without one it fails. On PostgreSQL each unit of work also runs in a transaction
// with SET LOCAL app.tenant_id, so row-level security stands behind the filter.
type DB struct {
	gorm    *gorm.DB
	dialect Dialect
	log     *slog.Logger

	// writer admits one SQLite write transaction of this process at a time. SQLite has one
	// writer anyway; queueing here, for as long as the context allows, spares a burst of
	// writers the busy timeout (which they would otherwise all race against).
	writer chan struct{}

	// beginSets: the connection sets the row-level security settings with BEGIN itself
	// (internal/db's PostgreSQL connector), so Tx does not set them again.
	beginSets bool

	mu        sync.RWMutex
	tenants   map[string]bool // tables with a tenant_id column
	listeners []func(orgID uuid.UUID)
}

// OnOrgChange registers fn to be told, after commit, that an organisation changed (status):
// caches holding organisation state use it.
func (d *DB) OnOrgChange(fn func(orgID uuid.UUID)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.listeners = append(d.listeners, fn)
}

func (d *DB) orgChanged(ctx context.Context, id uuid.UUID) {
	d.mu.RLock()
	ls := slices.Clone(d.listeners)
	d.mu.RUnlock()
	AfterCommit(ctx, func(context.Context) {
		for _, f := range ls {
			f(id)
		}
	})
}

// New wraps an open gorm handle and installs the tenant scoping callbacks on it. Call Refresh
// after migrations so the handle knows the current tenant tables.
func New(g *gorm.DB, dialect Dialect, log *slog.Logger) (*DB, error) {
	d := &DB{gorm: g, dialect: dialect, log: log, tenants: map[string]bool{}}
	if dialect == SQLite {
		d.writer = make(chan struct{}, 1)
	}
	cb := g.Callback()
	for _, reg := range []struct {
		name string
		err  error
	}{
		{"query", cb.Query().Before("gorm:query").Register("tenant:scope_query", d.scope(kindRead))},
		{"update", cb.Update().Before("gorm:update").Register("tenant:scope_update", d.scope(kindUpdate))},
		{"delete", cb.Delete().Before("gorm:delete").Register("tenant:scope_delete", d.scope(kindDelete))},
		{"row", cb.Row().Before("gorm:row").Register("tenant:scope_row", d.scope(kindRead))},
		{"create", cb.Create().Before("gorm:create").Register("tenant:stamp_create", d.stamp)},
	} {
		if reg.err != nil {
			return nil, fmt.Errorf("tenant: register %s callback: %w", reg.name, reg.err)
		}
	}
	return d, d.Refresh(context.Background())
}

// BeginSetsSettings tells d that its PostgreSQL connections set app.tenant_id and app.platform
// in the same round trip as BEGIN, from the context the transaction is begun with, as
// internal/db.Open's connections do; Tx then saves a round trip.
func (d *DB) BeginSetsSettings() { d.beginSets = true }

// Dialect returns which SQL database this is.
func (d *DB) Dialect() Dialect { return d.dialect }

// Gorm returns the unscoped handle for plumbing that is not tenant data (health checks,
// migrations, tests). Module code uses Run and Tx.
func (d *DB) Gorm() *gorm.DB { return d.gorm }

// Refresh reloads the set of tables that carry a tenant_id column.
func (d *DB) Refresh(ctx context.Context) error {
	var q string
	switch d.dialect {
	case Postgres:
		q = `SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() AND column_name = 'tenant_id'`
	default:
		q = `SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND p.name = 'tenant_id'`
	}
	var names []string
	if err := d.gorm.WithContext(ctx).Raw(q).Scan(&names).Error; err != nil {
		return fmt.Errorf("tenant: list tenant tables: %w", err)
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	d.mu.Lock()
	d.tenants = set
	d.mu.Unlock()
	return nil
}

// TenantTables returns the tables scoped by tenant.
func (d *DB) TenantTables() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]string, 0, len(d.tenants))
	for t := range d.tenants {
		out = append(out, t)
	}
	return out
}

func (d *DB) isTenantTable(name string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.tenants[name]
}

// table returns the statement's table and the name to qualify its columns with. gorm keeps
// the alias of Table("api_keys k") in Statement.Table and the real name only in TableExpr.
func (d *DB) table(stmt *gorm.Statement) (name, qualifier string) {
	if stmt.TableExpr != nil {
		if f := strings.Fields(stmt.TableExpr.SQL); len(f) > 0 {
			name = bareName(f[0])
			qualifier = name
			if len(f) > 1 && stmt.Table != "" {
				qualifier = stmt.Table
			}
			return name, qualifier
		}
	}
	if stmt.Schema != nil {
		return stmt.Schema.Table, stmt.Schema.Table
	}
	name = bareName(stmt.Table)
	return name, name
}

var unquote = strings.NewReplacer("`", "", `"`, "")

// bareName strips quotes and a schema from a table reference: `"public"."api_keys"` → api_keys.
func bareName(ref string) string {
	ref = unquote.Replace(ref)
	return ref[strings.LastIndexByte(ref, '.')+1:]
}

type stmtKind int

const (
	kindRead stmtKind = iota
	kindUpdate
	kindDelete
)

// scope adds "tenant_id = ?" to statements on tenant tables, or fails them. Updates may not
// move a row to another tenant, and an update or delete must still say which rows it means:
// the tenant filter alone does not turn "every row" into an acceptable target.
func (d *DB) scope(kind stmtKind) func(*gorm.DB) {
	return func(db *gorm.DB) { d.scopeStmt(db, kind) }
}

func (d *DB) scopeStmt(db *gorm.DB, kind stmtKind) {
	stmt := db.Statement
	table, qualifier := d.table(stmt)
	if table == "" || !d.isTenantTable(table) {
		return
	}
	ctx := stmt.Context
	if _, ok := isPlatform(ctx); ok {
		return
	}
	id, ok := ID(ctx)
	if !ok {
		_ = db.AddError(fmt.Errorf("%w (%s)", ErrNoTenant, table))
		return
	}
	if kind != kindRead && !hasTarget(stmt) && !stmt.AllowGlobalUpdate {
		_ = db.AddError(gorm.ErrMissingWhereClause)
		return
	}
	if kind == kindUpdate {
		if moved, ok := destTenant(stmt); ok && moved != id {
			_ = db.AddError(fmt.Errorf("%w (%s)", ErrCrossTenant, table))
			return
		}
	}
	stmt.AddClause(clause.Where{Exprs: []clause.Expression{
		clause.Eq{Column: clause.Column{Table: qualifier, Name: "tenant_id"}, Value: id},
	}})
}

// hasTarget reports whether an update or delete names its rows: a WHERE clause, or a model
// value whose primary key gorm will turn into one.
func hasTarget(stmt *gorm.Statement) bool {
	if w, ok := stmt.Clauses["WHERE"]; ok {
		if where, ok := w.Expression.(clause.Where); ok && len(where.Exprs) > 0 {
			return true
		}
	}
	if stmt.Schema == nil || !stmt.ReflectValue.IsValid() {
		return false
	}
	rv := reflect.Indirect(stmt.ReflectValue)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		return rv.Len() > 0
	case reflect.Struct:
		for _, f := range stmt.Schema.PrimaryFields {
			if f.Name == "TenantID" {
				continue
			}
			if _, zero := f.ValueOf(stmt.Context, rv); !zero {
				return true
			}
		}
	}
	return false
}

// destTenant returns the tenant_id an update would write, if it writes one.
func destTenant(stmt *gorm.Statement) (uuid.UUID, bool) {
	return tenantIn(stmt.Dest)
}

// tenantIn finds a tenant_id in a map or struct value about to be written.
func tenantIn(v any) (uuid.UUID, bool) {
	switch m := v.(type) {
	case map[string]any:
		for k, val := range m {
			if k == "tenant_id" || k == "TenantID" {
				return toUUID(val)
			}
		}
		return uuid.Nil, false
	}
	if v == nil {
		return uuid.Nil, false
	}
	// Any struct with a TenantID field, not only the model: Updates(patch{TenantID: other})
	// would move the row just the same.
	rv := reflect.Indirect(reflect.ValueOf(v))
	if rv.Kind() != reflect.Struct {
		return uuid.Nil, false
	}
	if f := rv.FieldByName("TenantID"); f.IsValid() && !f.IsZero() {
		return toUUID(f.Interface())
	}
	return uuid.Nil, false
}

func toUUID(v any) (uuid.UUID, bool) {
	switch x := v.(type) {
	case uuid.UUID:
		return x, true
	case *uuid.UUID:
		if x != nil {
			return *x, true
		}
	case string:
		if u, err := uuid.Parse(x); err == nil {
			return u, true
		}
		return uuid.Max, true // unparseable: certainly not this tenant
	case fmt.Stringer:
		return toUUID(x.String())
	}
	return uuid.Max, true
}

// stamp fills TenantID on inserted rows from the context and refuses rows of another tenant.
func (d *DB) stamp(db *gorm.DB) {
	stmt := db.Statement
	table, _ := d.table(stmt)
	if table == "" || !d.isTenantTable(table) {
		return
	}
	_, platform := isPlatform(stmt.Context)
	id, ok := ID(stmt.Context)
	if !ok && !platform {
		_ = db.AddError(fmt.Errorf("%w (%s)", ErrNoTenant, table))
		return
	}
	if rows, isMaps := mapRows(stmt.Dest); isMaps {
		// A map insert is not stamped: it must name its tenant, and only the context's.
		for _, r := range rows {
			t, named := tenantIn(r)
			if !platform && (!named || t != id) {
				_ = db.AddError(fmt.Errorf("%w (%s)", ErrCrossTenant, table))
				return
			}
		}
		return
	}
	if stmt.Schema == nil {
		return
	}
	field := stmt.Schema.LookUpField("TenantID")
	if field == nil {
		_ = db.AddError(fmt.Errorf("tenant: model for %s has no TenantID field", table))
		return
	}
	check := func(rv reflect.Value) {
		v, zero := field.ValueOf(stmt.Context, rv)
		if zero {
			if !ok {
				_ = db.AddError(fmt.Errorf("%w (%s)", ErrNoTenant, table))
				return
			}
			if err := field.Set(stmt.Context, rv, id); err != nil {
				_ = db.AddError(err)
			}
			return
		}
		if ok && !platform && v.(uuid.UUID) != id {
			_ = db.AddError(fmt.Errorf("%w (%s)", ErrCrossTenant, table))
		}
	}
	switch rv := stmt.ReflectValue; rv.Kind() {
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			check(reflect.Indirect(rv.Index(i)))
		}
	case reflect.Struct:
		check(rv)
	}
}

func mapRows(dest any) ([]map[string]any, bool) {
	switch m := dest.(type) {
	case map[string]any:
		return []map[string]any{m}, true
	case []map[string]any:
		return m, true
	case *[]map[string]any:
		return *m, true
	}
	return nil, false
}

// txKeyValue is the transaction riding a context, with the work to do just before and once it
// has committed, and the values units of work in it share.
type txKeyValue struct {
	tx    *gorm.DB
	state *txState
}

type txState struct {
	after  []func(context.Context)
	before []func(context.Context) error
	locals map[any]any
}

// Retryable reports whether err is PostgreSQL's deadlock or serialization failure: the
// transaction was rolled back as the victim, and running it again is the remedy.
func Retryable(err error) bool {
	var pe interface{ SQLState() string }
	if errors.As(err, &pe) {
		switch pe.SQLState() {
		case "40P01", "40001":
			return true
		}
	}
	return false
}

// TxRetrying runs fn in a transaction as Tx does, and again, up to three runs in all, when
// PostgreSQL rolls that transaction back as a deadlock's or a serialization failure's victim
// (Retryable): for work that contends for the same rows as its neighbours, such as storing a
// tenant's inbound messages, whose caller would otherwise answer 500 for a conflict that running
// again resolves. Inside a caller's transaction fn runs once and the failure is the caller's,
// whose transaction is the one to run again.
func (d *DB) TxRetrying(ctx context.Context, fn func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := d.Tx(ctx, fn)
		if !Retryable(err) || InTx(ctx) || attempt == 3 {
			return err
		}
	}
}

// InTx reports whether ctx carries a transaction.
func InTx(ctx context.Context) bool {
	_, ok := ctx.Value(txKey).(txKeyValue)
	return ok
}

// BeforeCommit runs fn inside the transaction in ctx once the transaction's own work has
// succeeded, just before it commits; an error from fn rolls everything back. Writes that every
// unit of work in a transaction would repeat on the same row (the usage day to roll up again)
// are made once here, at the end, so the row's lock is held only for the commit. Without a
// transaction in ctx fn runs at once.
func BeforeCommit(ctx context.Context, fn func(ctx context.Context) error) error {
	if t, ok := ctx.Value(txKey).(txKeyValue); ok {
		t.state.before = append(t.state.before, fn)
		return nil
	}
	return fn(ctx)
}

// TxLocal returns the value stored under key in the transaction in ctx, made by mk the first
// time (fresh is then true), so the units of work of one transaction can gather what a
// BeforeCommit function writes. The value dies with the transaction, committed or not. Without a
// transaction every call makes a fresh value.
func TxLocal[T any](ctx context.Context, key any, mk func() T) (v T, fresh bool) {
	t, ok := ctx.Value(txKey).(txKeyValue)
	if !ok {
		return mk(), true
	}
	if got, ok := t.state.locals[key]; ok {
		return got.(T), false
	}
	v = mk()
	if t.state.locals == nil {
		t.state.locals = map[any]any{}
	}
	t.state.locals[key] = v
	return v, true
}

// AfterCommit runs fn once the transaction in ctx has committed (not at all if it rolls back),
// or at once when ctx carries no transaction. Enqueueing a task or telling other nodes about a
// change goes here, so nobody acts on a row that was never committed. fn gets the context the
// transaction was opened with: the transaction itself is over and must not be used.
func AfterCommit(ctx context.Context, fn func(ctx context.Context)) {
	if t, ok := ctx.Value(txKey).(txKeyValue); ok {
		t.state.after = append(t.state.after, fn)
		return
	}
	fn(ctx)
}

// Run calls fn with a handle for ctx: the transaction already in ctx, if any, and otherwise the
// plain handle, each statement its own transaction as on SQLite (work that must commit or fail
// as a whole belongs in Tx). On PostgreSQL each statement made for a context that names a
// tenant or platform access carries that setting for row-level security in the same round trip
// (see internal/db's scoped connector); without either, tenant tables fail in the callbacks, and
// RLS shows none of their rows.
func (d *DB) Run(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if t, ok := ctx.Value(txKey).(txKeyValue); ok {
		return fn(t.tx.WithContext(ctx))
	}
	return fn(d.gorm.WithContext(ctx))
}

// Global calls fn for statements on global tables only (orgs, users, memberships, sessions):
// it joins the transaction in ctx if there is one, and otherwise uses the plain handle even when
// ctx names a tenant, saving PostgreSQL the transaction and tenant setting that RLS would
// need. A tenant table touched by mistake is still filtered by the callbacks, and on
// PostgreSQL shows no rows, since no tenant is set.
func (d *DB) Global(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if t, ok := ctx.Value(txKey).(txKeyValue); ok {
		return fn(t.tx.WithContext(ctx))
	}
	return fn(d.gorm.WithContext(context.WithValue(ctx, globalKey, true)))
}

// Tx runs fn inside one transaction carried by the context it is given, so that the business
// change, its audit record and its usage events commit or roll back together. A nested Tx joins
// the outer transaction.
func (d *DB) Tx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(txKey).(txKeyValue); ok {
		return fn(ctx)
	}
	release := func() {}
	if d.writer != nil {
		select {
		case d.writer <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("tenant: wait to write: %w", ctx.Err())
		}
		var once sync.Once
		release = func() { once.Do(func() { <-d.writer }) }
		defer release() // also when fn panics
	}
	st := &txState{}
	err := d.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if d.dialect == Postgres && !d.beginSets {
			if err := setLocal(tx, ctx); err != nil {
				return err
			}
		}
		tctx := context.WithValue(ctx, txKey, txKeyValue{tx: tx, state: st})
		if err := fn(tctx); err != nil {
			return err
		}
		// A BeforeCommit function may register another (its write touching a table whose owner
		// defers too): run them until none is left.
		for i := 0; i < len(st.before); i++ {
			if err := st.before[i](tctx); err != nil {
				return err
			}
		}
		return nil
	})
	release() // before the after-commit work, which may write again
	if err != nil {
		return err
	}
	for _, f := range st.after {
		f(ctx)
	}
	return nil
}

// setLocal sets the per-transaction settings the RLS policies read.
func setLocal(tx *gorm.DB, ctx context.Context) error {
	tid, platform := Settings(ctx)
	if err := tx.Exec(`SELECT set_config('app.tenant_id', ?, true), set_config('app.platform', ?, true)`, tid, platform).Error; err != nil {
		return fmt.Errorf("tenant: set transaction tenant: %w", err)
	}
	return nil
}

// SetConfigSQL (in PostgreSQL's placeholder form) sets, for the current transaction only, the two settings the PostgreSQL
// row-level security policies read. Its arguments are what Settings returns.
const SetConfigSQL = `SELECT set_config('app.tenant_id', $1, true), set_config('app.platform', $2, true)`

// Settings returns the values of app.tenant_id ("" for none) and app.platform ("on" or "off")
// that a statement made for ctx must run under.
func Settings(ctx context.Context) (tenantID, platform string) {
	if id, ok := ID(ctx); ok {
		tenantID = id.String()
	}
	platform = "off"
	if _, ok := isPlatform(ctx); ok {
		platform = "on"
	}
	return tenantID, platform
}

// Scoped reports whether ctx names a tenant or platform access, i.e. whether statements for it
// need the settings of Settings.
func Scoped(ctx context.Context) bool {
	if g, _ := ctx.Value(globalKey).(bool); g {
		return false
	}
	_, hasTenant := ID(ctx)
	_, platform := isPlatform(ctx)
	return hasTenant || platform
}

// AsPlatform returns a context allowed to read and write across tenants. It exists for platform
// jobs (policy loading, billing runs, demo seeding) and says so in the log with its reason;
// platform-admin actions that use it are audited by their callers.
func (d *DB) AsPlatform(ctx context.Context, reason string) context.Context {
	if reason == "" {
		panic("tenant: AsPlatform needs a reason")
	}
	a := ActorFrom(ctx)
	d.log.InfoContext(ctx, "cross-tenant access", "reason", reason, "actor", a.Subject())
	return context.WithValue(ctx, platformKey, platformAccess{reason: reason})
}
