package db_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/internal/db"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// scopedFixture is a table under the same row-level security policy as the tenant tables, owned
// by the owner role and read through db.Open as the non-owner app role, on one connection so
// every statement reuses the connection the previous one left behind.
func scopedFixture(t *testing.T) (g *gorm.DB, a, b uuid.UUID) {
	t.Helper()
	ownerURL, appURL := apptest.PostgresURLs(t) // skips without TEST_DATABASE_URL
	owner, err := sql.Open("pgx", ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	a, b = uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	appRole := db.UserOf(appURL)
	for _, q := range []string{
		`CREATE TABLE things (tenant_id uuid NOT NULL, id int NOT NULL, name text NOT NULL,
			at timestamptz, data jsonb, amount numeric(20,0), flag bool, blob bytea, tags text[],
			PRIMARY KEY (tenant_id, id))`,
		`ALTER TABLE things ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE things FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY tenant_isolation ON things
			USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid OR current_setting('app.platform', true) = 'on')
			WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid OR current_setting('app.platform', true) = 'on')`,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON things TO ` + appRole,
	} {
		if _, err := owner.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := owner.Exec(`INSERT INTO things VALUES
		($1, 1, 'a1', '2026-11-23T10:00:00Z', '{"k": [1, "二"]}', 12345678901234567890, true, '\x00ff', '{x,y}'),
		($1, 2, 'a2', NULL, NULL, NULL, NULL, NULL, NULL),
		($2, 1, 'b1', NULL, NULL, NULL, false, NULL, NULL)`, a, b); err != nil {
		t.Fatal(err)
	}
	g, _, err = db.Open(db.Options{URL: appURL, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := g.DB(); err == nil {
			s.Close()
		}
	})
	return g, a, b
}

func inTenant(id uuid.UUID) context.Context {
	return tenant.WithOrg(context.Background(), tenant.Org{ID: id, Kind: tenant.KindTenant})
}

func names(t *testing.T, g *gorm.DB) []string {
	t.Helper()
	var out []string
	if err := g.Raw(`SELECT name FROM things ORDER BY tenant_id, id`).Scan(&out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

func setting(t *testing.T, g *gorm.DB) string {
	t.Helper()
	var s string
	if err := g.Raw(`SELECT coalesce(current_setting('app.tenant_id', true), '')`).Scan(&s).Error; err != nil {
		t.Fatal(err)
	}
	return s
}

// A statement outside a transaction carries its context's tenant in the same round trip, sees
// only that tenant's rows, and leaves nothing set on the connection afterwards.
func TestScopedStatementsCarryTheirTenant(t *testing.T) {
	g, a, b := scopedFixture(t)
	bg := context.Background()

	if got := names(t, g.WithContext(bg)); len(got) != 0 {
		t.Fatalf("no tenant: %v, want no rows", got)
	}
	if got := names(t, g.WithContext(inTenant(a))); len(got) != 2 || got[0] != "a1" || got[1] != "a2" {
		t.Fatalf("tenant A: %v", got)
	}
	// Same single connection, no tenant: the setting ended with the statement's transaction.
	if s := setting(t, g.WithContext(bg)); s != "" {
		t.Fatalf("app.tenant_id left on the connection: %q", s)
	}
	if got := names(t, g.WithContext(inTenant(b))); len(got) != 1 || got[0] != "b1" {
		t.Fatalf("tenant B: %v", got)
	}
	tdb, err := tenant.New(g, tenant.Postgres, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	platform := tdb.AsPlatform(bg, "test")
	if got := names(t, g.WithContext(platform)); len(got) != 3 {
		t.Fatalf("platform: %v", got)
	}

	// Writes: an insert for B while A is set is refused and nothing is written; A's own works.
	err = g.WithContext(inTenant(a)).Exec(`INSERT INTO things (tenant_id, id, name) VALUES (?, 9, 'x')`, b).Error
	if err == nil {
		t.Fatal("insert for tenant B under tenant A succeeded")
	}
	res := g.WithContext(inTenant(a)).Exec(`UPDATE things SET name = name || '!'`)
	if res.Error != nil || res.RowsAffected != 2 {
		t.Fatalf("update in A: %v, %d rows", res.Error, res.RowsAffected)
	}
	if got := names(t, g.WithContext(inTenant(b))); got[0] != "b1" {
		t.Fatalf("B changed by A's update: %v", got)
	}

	// An error in the statement comes back, and the connection is fine for the next one.
	if err := g.WithContext(inTenant(a)).Exec(`SELECT nope FROM things`).Error; err == nil {
		t.Fatal("bad statement: no error")
	}
	if got := names(t, g.WithContext(inTenant(a))); len(got) != 2 {
		t.Fatalf("after an error: %v", got)
	}

	// A transaction begun for a tenant has its setting from BEGIN on (one round trip); the
	// statements inside pass through, so the transaction's own setting applies.
	err = g.WithContext(inTenant(a)).Transaction(func(tx *gorm.DB) error {
		if s := setting(t, tx); s != a.String() {
			t.Errorf("a transaction begun for A sees %q", s)
		}
		if err := tx.Exec(`SELECT set_config('app.tenant_id', ?, true)`, b.String()).Error; err != nil {
			return err
		}
		if got := names(t, tx); len(got) != 1 || got[0] != "b1" {
			t.Errorf("in a transaction set to B: %v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := setting(t, g.WithContext(bg)); s != "" {
		t.Fatalf("after the transaction: %q", s)
	}
	// Begun without a tenant, a transaction has no setting; a failed one leaves none behind.
	err = g.WithContext(bg).Transaction(func(tx *gorm.DB) error {
		if s := setting(t, tx); s != "" {
			t.Errorf("a transaction begun without a tenant sees %q", s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = g.WithContext(inTenant(a)).Transaction(func(tx *gorm.DB) error {
		_ = tx.Exec(`SELECT nope FROM things`).Error
		return errors.New("roll back")
	})
	if s := setting(t, g.WithContext(bg)); s != "" {
		t.Fatalf("after a failed transaction: %q", s)
	}
	if got := names(t, g.WithContext(inTenant(a))); len(got) != 2 {
		t.Fatalf("after a failed transaction, A reads %v", got)
	}
}

// Values read through the pipelined path are the ones the plain path reads.
func TestScopedRowsScanLikePlainRows(t *testing.T) {
	g, a, _ := scopedFixture(t)
	type row struct {
		TenantID uuid.UUID
		ID       int
		Name     string
		At       *time.Time
		Data     json.RawMessage
		Amount   *string
		Flag     *bool
		Blob     []byte
		Tags     *string
	}
	read := func(ctx context.Context, platform bool) []row {
		var rows []row
		err := g.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if platform {
				// The plain path: a transaction with the setting made the long way.
				if err := tx.Exec(`SELECT set_config('app.tenant_id', ?, true)`, a.String()).Error; err != nil {
					return err
				}
			}
			return tx.Raw(`SELECT tenant_id, id, name, at, data, amount::text AS amount, flag, blob, tags::text AS tags FROM things ORDER BY id`).Scan(&rows).Error
		})
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	plain := read(context.Background(), true)
	var piped []row
	if err := g.WithContext(inTenant(a)).Raw(`SELECT tenant_id, id, name, at, data, amount::text AS amount, flag, blob, tags::text AS tags FROM things ORDER BY id`).Scan(&piped).Error; err != nil {
		t.Fatal(err)
	}
	pj, _ := json.Marshal(piped)
	lj, _ := json.Marshal(plain)
	if len(plain) != 2 || string(pj) != string(lj) {
		t.Fatalf("pipelined %s\nplain     %s", pj, lj)
	}
	r := piped[0]
	if r.TenantID != a || r.At == nil || !r.At.Equal(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)) ||
		*r.Amount != "12345678901234567890" || !*r.Flag || string(r.Blob) != "\x00\xff" || *r.Tags != "{x,y}" {
		t.Fatalf("values: %+v", r)
	}
	var data map[string]any
	if err := json.Unmarshal(r.Data, &data); err != nil || data["k"].([]any)[1] != "二" {
		t.Fatalf("jsonb: %s %v", r.Data, err)
	}
}
