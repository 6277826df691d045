package tenant_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// globalTables is the allowlist of tables that are NOT tenant-owned. Every other table must
// carry tenant_id and be shaped for distribution by it (DESIGN rule 2). On Citus these become
// reference tables (copied to every node), so they must stay small and must not reference a
// tenant table. Adding a name here is a design decision: give the reason next to it.
var globalTables = map[string]string{
	"orgs":             "the list of organisations (tenants, vendors, the platform) itself",
	"users":            "one global identity per person, across organisations",
	"memberships":      "a user's roles across organisations; every query names the org",
	"sessions":         "console logins belong to a user, not to an organisation",
	"user_tokens":      "email verification and password reset belong to a user",
	"mails":            "the outbox of system mail (sign-up, resets) sent before any tenant exists",
	"goose_db_version": "the migration tool's bookkeeping",
	"plans":            "the platform's price list, shared by every tenant (a reference table on Citus)",
	"stripe_events":    "Stripe webhook event ids already processed; an event arrives before its tenant is known",
	"channel_routes":   "where an inbound webhook or e-mail goes: the tenant is what it finds, so it cannot be keyed by it",
}

// tableShape is what the Citus rules look at in one table.
type tableShape struct {
	name    string
	columns []string
	pk      []string   // primary key columns, empty when there is none
	uniques []keyShape // unique constraints and indexes other than the primary key
	fks     []fkShape
}

type keyShape struct {
	name    string
	columns []string // "" for an expression
}

type fkShape struct {
	name     string
	refTable string
	from, to []string
}

// citusProblems applies the rules to a schema and names each violation.
func citusProblems(tables []tableShape, allow map[string]string) []string {
	var out []string
	isTenant := map[string]bool{}
	for _, t := range tables {
		isTenant[t.name] = slices.Contains(t.columns, "tenant_id")
	}
	for _, t := range tables {
		_, global := allow[t.name]
		switch {
		case !isTenant[t.name] && !global:
			out = append(out, fmt.Sprintf("%s: has no tenant_id column and is not on the global allowlist", t.name))
			continue
		case global:
			for _, fk := range t.fks {
				if isTenant[fk.refTable] {
					out = append(out, fmt.Sprintf("%s: global table has foreign key %s to tenant table %s", t.name, fk.name, fk.refTable))
				}
			}
			continue
		}
		if len(t.pk) == 0 {
			out = append(out, fmt.Sprintf("%s: tenant table has no primary key", t.name))
		} else if !slices.Contains(t.pk, "tenant_id") {
			out = append(out, fmt.Sprintf("%s: primary key (%s) lacks tenant_id", t.name, strings.Join(t.pk, ", ")))
		}
		for _, u := range t.uniques {
			if !slices.Contains(u.columns, "tenant_id") {
				out = append(out, fmt.Sprintf("%s: unique key %s (%s) lacks tenant_id", t.name, u.name, strings.Join(u.columns, ", ")))
			}
		}
		for _, fk := range t.fks {
			if !isTenant[fk.refTable] {
				continue // to a global (reference) table: fine on Citus
			}
			joined := false
			for i := range fk.from {
				if fk.from[i] == "tenant_id" && i < len(fk.to) && fk.to[i] == "tenant_id" {
					joined = true
				}
			}
			if !joined {
				out = append(out, fmt.Sprintf("%s: foreign key %s (%s) → %s (%s) does not pair tenant_id with tenant_id",
					t.name, fk.name, strings.Join(fk.from, ", "), fk.refTable, strings.Join(fk.to, ", ")))
			}
		}
	}
	sort.Strings(out)
	return out
}

// schemaOf reads the shape of every table on either dialect.
func schemaOf(t *testing.T, db *sql.DB, d tenant.Dialect) []tableShape {
	t.Helper()
	var tables []tableShape
	var err error
	if d == tenant.Postgres {
		tables, err = postgresSchema(db)
	} else {
		tables, err = sqliteSchema(db)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < len(globalTables) {
		t.Fatalf("found only %d tables: %+v", len(tables), tables)
	}
	return tables
}

func queryStrings(db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(context.Background(), q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s.String)
	}
	return out, rows.Err()
}

// sqliteSchema reads the schema through SQLite's pragma table functions.
func sqliteSchema(db *sql.DB) ([]tableShape, error) {
	names, err := queryStrings(db, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var out []tableShape
	pks := map[string][]string{}
	for _, name := range names {
		ts := tableShape{name: name}
		if ts.columns, err = queryStrings(db, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, name); err != nil {
			return nil, err
		}
		if ts.pk, err = queryStrings(db, `SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`, name); err != nil {
			return nil, err
		}
		pks[name] = ts.pk
		// Unique indexes other than the primary key's: UNIQUE (origin u) and CREATE UNIQUE INDEX (c).
		idx, err := queryStrings(db, `SELECT name FROM pragma_index_list(?) WHERE "unique" = 1 AND origin <> 'pk' ORDER BY name`, name)
		if err != nil {
			return nil, err
		}
		for _, in := range idx {
			cols, err := queryStrings(db, `SELECT name FROM pragma_index_info(?) ORDER BY seqno`, in)
			if err != nil {
				return nil, err
			}
			ts.uniques = append(ts.uniques, keyShape{name: in, columns: cols})
		}
		rows, err := db.Query(`SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq`, name)
		if err != nil {
			return nil, err
		}
		byID := map[int]*fkShape{}
		var order []int
		for rows.Next() {
			var id int
			var ref, from string
			var to sql.NullString
			if err := rows.Scan(&id, &ref, &from, &to); err != nil {
				rows.Close()
				return nil, err
			}
			fk, ok := byID[id]
			if !ok {
				fk = &fkShape{name: fmt.Sprintf("%s_fk%d", name, id), refTable: ref}
				byID[id] = fk
				order = append(order, id)
			}
			fk.from = append(fk.from, from)
			fk.to = append(fk.to, to.String) // empty: the referenced table's primary key, resolved below
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return nil, err
		}
		rows.Close()
		for _, id := range order {
			ts.fks = append(ts.fks, *byID[id])
		}
		out = append(out, ts)
	}
	for i := range out {
		for j := range out[i].fks {
			fk := &out[i].fks[j]
			if slices.Contains(fk.to, "") && len(pks[fk.refTable]) == len(fk.to) {
				fk.to = slices.Clone(pks[fk.refTable])
			}
		}
	}
	return out, nil
}

// postgresSchema reads the schema from information_schema, pg_index and pg_constraint.
func postgresSchema(db *sql.DB) ([]tableShape, error) {
	names, err := queryStrings(db, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		return nil, err
	}
	const cols = `(SELECT string_agg(a.attname, ',' ORDER BY k.ord)
		FROM unnest(%s::int2[]) WITH ORDINALITY k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = %s AND a.attnum = k.attnum %s)`
	var out []tableShape
	for _, name := range names {
		ts := tableShape{name: name}
		if ts.columns, err = queryStrings(db, `SELECT column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, name); err != nil {
			return nil, err
		}
		rows, err := db.Query(`SELECT ci.relname, i.indisprimary, coalesce(`+fmt.Sprintf(cols, "i.indkey", "i.indrelid", "WHERE k.ord <= i.indnkeyatts")+`, '')
			FROM pg_index i
			JOIN pg_class ci ON ci.oid = i.indexrelid
			JOIN pg_class c ON c.oid = i.indrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relname = $1 AND i.indisunique
			ORDER BY 1`, name)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var idx, list string
			var primary bool
			if err := rows.Scan(&idx, &primary, &list); err != nil {
				rows.Close()
				return nil, err
			}
			key := keyShape{name: idx, columns: strings.Split(list, ",")}
			if primary {
				ts.pk = key.columns
			} else {
				ts.uniques = append(ts.uniques, key)
			}
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return nil, err
		}
		rows.Close()
		rows, err = db.Query(`SELECT con.conname, cf.relname, `+fmt.Sprintf(cols, "con.conkey", "con.conrelid", "")+`, `+fmt.Sprintf(cols, "con.confkey", "con.confrelid", "")+`
			FROM pg_constraint con
			JOIN pg_class c ON c.oid = con.conrelid
			JOIN pg_class cf ON cf.oid = con.confrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE con.contype = 'f' AND n.nspname = current_schema() AND c.relname = $1
			ORDER BY 1`, name)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var fk fkShape
			var from, to string
			if err := rows.Scan(&fk.name, &fk.refTable, &from, &to); err != nil {
				rows.Close()
				return nil, err
			}
			fk.from, fk.to = strings.Split(from, ","), strings.Split(to, ",")
			ts.fks = append(ts.fks, fk)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return nil, err
		}
		rows.Close()
		out = append(out, ts)
	}
	return out, nil
}

// schemaDB returns a connection that sees the whole schema: SQLite's file, or PostgreSQL as
// the tables' owner (information_schema shows a role only the tables it has rights on).
func schemaDB(t *testing.T, e *apptest.Env, d tenant.Dialect) *sql.DB {
	t.Helper()
	if d == tenant.Postgres {
		return openPG(t, e.App.Cfg.MigrateDatabaseURL)
	}
	db, err := e.App.DB.Gorm().DB()
	must(t, err)
	return db
}

// TestSchemaIsReadyForCitus checks the migrated schema against DESIGN rule 2: every table is
// either on the global allowlist or a tenant table whose primary key, unique keys and foreign
// keys to other tenant tables all include tenant_id.
func TestSchemaIsReadyForCitus(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.New(t, d, apptest.Options{NoDemo: true})
			tables := schemaOf(t, schemaDB(t, e, d), d)
			for _, p := range citusProblems(tables, globalTables) {
				t.Error(p)
			}
			var names []string
			tenantTables := 0
			for _, ts := range tables {
				names = append(names, ts.name)
				if slices.Contains(ts.columns, "tenant_id") {
					tenantTables++
					t.Logf("tenant table %s: pk (%s), %d other unique keys, %d foreign keys", ts.name, strings.Join(ts.pk, ", "), len(ts.uniques), len(ts.fks))
				}
			}
			for g := range globalTables {
				if !slices.Contains(names, g) {
					t.Errorf("allowlisted table %s does not exist; drop it from globalTables", g)
				}
			}
			if tenantTables < 4 {
				t.Errorf("found %d tenant tables in %v; want at least roles, api_keys, invitations, audit_events", tenantTables, names)
			}
		})
	}
}

// TestSchemaCheckCatchesViolations proves the check above can fail: tables made to break each
// rule are each named.
func TestSchemaCheckCatchesViolations(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.New(t, d, apptest.Options{NoDemo: true})
			db := schemaDB(t, e, d)
			id := "TEXT"
			if d == tenant.Postgres {
				id = "uuid"
			}
			for _, q := range []string{
				`CREATE TABLE stray_widgets (id ` + id + ` PRIMARY KEY, name TEXT NOT NULL)`,
				`CREATE TABLE bad_tickets (tenant_id ` + id + ` NOT NULL REFERENCES orgs (id), id ` + id + ` NOT NULL, code TEXT NOT NULL,
					PRIMARY KEY (id), UNIQUE (code))`,
				`CREATE TABLE bad_notes (tenant_id ` + id + ` NOT NULL, id ` + id + ` NOT NULL, ticket_code TEXT REFERENCES bad_tickets (code),
					PRIMARY KEY (tenant_id, id))`,
				`CREATE UNIQUE INDEX bad_notes_id_idx ON bad_notes (id)`,
				`CREATE TABLE good_notes (tenant_id ` + id + ` NOT NULL, id ` + id + ` NOT NULL, key_id ` + id + ` NOT NULL,
					PRIMARY KEY (tenant_id, id), FOREIGN KEY (tenant_id, key_id) REFERENCES api_keys (tenant_id, id))`,
				`CREATE TABLE global_links (id ` + id + ` PRIMARY KEY, key_tenant ` + id + ` NOT NULL, key_id ` + id + ` NOT NULL,
					FOREIGN KEY (key_tenant, key_id) REFERENCES api_keys (tenant_id, id))`,
			} {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			allow := map[string]string{"global_links": "test: an allowlisted table that references a tenant table"}
			for k, v := range globalTables {
				allow[k] = v
			}
			problems := citusProblems(schemaOf(t, db, d), allow)
			t.Logf("problems found:\n%s", strings.Join(problems, "\n"))
			want := []string{
				"stray_widgets: has no tenant_id column and is not on the global allowlist",
				"bad_tickets: primary key (id) lacks tenant_id",
				"bad_tickets: unique key",         // UNIQUE (code)
				"bad_notes: unique key",           // bad_notes_id_idx
				"bad_notes: foreign key",          // (ticket_code) → bad_tickets (code)
				"global_links: global table has ", // → api_keys
			}
			for _, w := range want {
				if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, w) }) {
					t.Errorf("no problem reported starting %q; got:\n%s", w, strings.Join(problems, "\n"))
				}
			}
			for _, p := range problems {
				if strings.HasPrefix(p, "good_notes") {
					t.Errorf("a well-shaped tenant table was reported: %s", p)
				}
			}
			if len(problems) != len(want) {
				t.Errorf("%d problems, want %d:\n%s", len(problems), len(want), strings.Join(problems, "\n"))
			}
		})
	}
}
