package tenant_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/modules/channels/voice"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// rlsTables are the tenant tables of the foundation migration; the test also finds every table
// with a tenant_id column in the catalogue and checks those.
var rlsTables = []string{"api_keys", "invitations", "roles", "audit_events", "usage_events", "usage_dirty_days", "usage_rollups", "billing_accounts",
	"subscription_changes", "invoices", "billed_usage", "usage_alerts",
	"contacts", "contact_identities", "contact_tags", "contact_fields", "channels", "conversations", "conversation_tags",
	"messages", "attachments", "calls", "canned_responses", "realtime_events"}

// TestRowLevelSecurity is the PostgreSQL acceptance test of the second wall (DESIGN rule 1):
// connected as the application's role with raw SQL, outside the gorm callbacks, a transaction
// sees and changes only the rows of the tenant named by SET LOCAL app.tenant_id, and none
// without one.
func TestRowLevelSecurity(t *testing.T) {
	e := apptest.New(t, tenant.Postgres) // skips without TEST_DATABASE_URL
	ctx := context.Background()
	acme, globex := e.Acme.ID.String(), e.Globex.ID.String()

	// Rows in every tenant table for both tenants, through the API: an API key, an invitation
	// and a custom role each (and the audit events those write).
	for _, owner := range []string{"owner@acme.test", "owner@globex.test"} {
		c := e.Login(owner)
		c.Do("POST", "/api/v1/api-keys", map[string]any{"name": "rls", "role": "agent"}).Want(201)
		c.Do("POST", "/api/v1/invitations", map[string]any{"email": "rls-" + strings.Split(owner, "@")[1] + "@example.com", "role": "agent"}).Want(201)
		c.Do("POST", "/api/v1/roles", map[string]any{"name": "rls_role", "permissions": []string{"members:read"}}).Want(201)
		c.Do("GET", "/api/v1/billing/payment-method", nil).Want(200) // creates the billing account
		c.Do("POST", "/api/v1/usage-events", map[string]any{"events": []any{map[string]any{"meter": "interactions", "quantity": 1, "idempotency_key": "rls-1", "occurred_at": time.Now().Add(-48 * time.Hour)}}}).Want(200)
	}
	// The inbox: a channel with an inbound message (contact, identity, conversation, message,
	// realtime events), a call on a voice channel, tags, a custom field, a canned response and
	// an upload.
	for _, owner := range []string{"owner@acme.test", "owner@globex.test"} {
		c := e.Login(owner)
		for _, f := range []provider.Fixture{apichannel.Fixture(), voice.Fixture()} {
			cfg := f.Config("http://127.0.0.1:9")
			j := c.Do("POST", "/api/v1/channels", map[string]any{"type": f.Type, "name": "rls", "config": cfg}).Want(201).JSON()
			pub := j["public_id"].(string)
			ch := provider.Channel{Type: f.Type, PublicID: pub, Config: cfg, WebhookURL: "http://switchboard.test/hooks/" + f.Type + "/" + pub}
			e.Deliver(f.Inbound(ch, "rls-1", "8613800138000", "你好")).Want(200)
		}
		conv := c.Do("GET", "/api/v1/conversations", nil).Want(200).Items()[0]
		c.Do("PATCH", "/api/v1/conversations/"+conv["id"].(string), map[string]any{"tags": []string{"rls"}}).Want(200)
		c.Do("PATCH", "/api/v1/contacts/"+conv["contact_id"].(string), map[string]any{"tags": []string{"rls"}}).Want(200)
		c.Do("POST", "/api/v1/contact-fields", map[string]any{"key": "tier", "label": "Tier", "type": "text"}).Want(201)
		c.Do("POST", "/api/v1/canned-responses", map[string]any{"shortcut": "rls", "title": "RLS", "content": "hi"}).Want(201)
		c.Do("POST", "/api/v1/attachments", "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n",
			"Content-Type", "multipart/form-data; boundary=b").Want(201)
	}
	// Rollups of those events, then an event on another day so a day is marked again.
	if _, err := e.App.Ledger.RollupDirty(ctx, 0); err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{"owner@acme.test", "owner@globex.test"} {
		e.Login(owner).Do("POST", "/api/v1/usage-events", map[string]any{"events": []any{map[string]any{"meter": "interactions", "quantity": 1, "idempotency_key": "rls-2", "occurred_at": time.Now()}}}).Want(200)
	}
	// Both tenants on a plan since two months ago (plan changes), the first period finalised
	// (an invoice and its billed usage), and an allowance alert (1 of 1 interaction included).
	if _, err := e.App.Plans.Save(ctx, billing.PlanInput{Code: "rls", Name: "RLS", Currency: "USD", BaseFee: 100,
		Prices: []billing.Price{{Meter: "interactions", Model: "per_unit", UnitAmount: 1, Included: 1}}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().AddDate(0, -2, 0).Truncate(24 * time.Hour)
	for _, org := range []tenant.Org{e.Acme, e.Globex} {
		tctx := tenant.WithOrg(ctx, org)
		if _, err := e.App.Plans.Subscribe(tctx, "rls", 0, start); err != nil {
			t.Fatal(err)
		}
		p, err := e.App.Invoicer.PeriodAt(tctx, start)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.App.Invoicer.Finalize(tctx, p, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.App.Invoicer.NotifyAlerts(ctx, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}

	// The ground truth, read by the owner (the test's superuser, which RLS does not bind).
	owner := openPG(t, e.App.Cfg.MigrateDatabaseURL)
	truth := map[string]map[string]int{} // table → tenant → rows
	for _, table := range rlsTables {
		truth[table] = map[string]int{}
		rows, err := owner.QueryContext(ctx, `SELECT tenant_id::text, count(*) FROM `+table+` GROUP BY 1`)
		must(t, err)
		for rows.Next() {
			var tid string
			var n int
			must(t, rows.Scan(&tid, &n))
			truth[table][tid] = n
		}
		must(t, rows.Err())
		rows.Close()
		if truth[table][acme] == 0 || truth[table][globex] == 0 {
			t.Fatalf("%s: fixture rows acme=%d globex=%d; want both > 0", table, truth[table][acme], truth[table][globex])
		}
	}

	if e.App.Cfg.DatabaseURL == e.App.Cfg.MigrateDatabaseURL {
		t.Fatal("the app connects with the owner's URL")
	}
	appDB := openPG(t, e.App.Cfg.DatabaseURL)

	t.Run("no tenant set sees no rows", func(t *testing.T) {
		conn, err := appDB.Conn(ctx) // a fresh session: app.tenant_id was never set in it
		must(t, err)
		defer conn.Close()
		check := func(when string) {
			inTx(t, conn, "", func(tx *sql.Tx) {
				for _, table := range rlsTables {
					if n := count(t, tx, `SELECT count(*) FROM `+table); n != 0 {
						t.Errorf("%s: SELECT from %s returns %d rows with no tenant set", when, table, n)
					}
				}
			})
		}
		check("fresh session")
		// After a transaction that set a tenant, the setting is gone (SET LOCAL), not kept.
		inTx(t, conn, acme, func(tx *sql.Tx) {
			if n := count(t, tx, `SELECT count(*) FROM api_keys`); n == 0 {
				t.Error("Acme's transaction sees no keys")
			}
		})
		check("after a tenant transaction")
		// An empty setting is no tenant either.
		inTx(t, conn, "", func(tx *sql.Tx) {
			mustExec(t, tx, `SET LOCAL app.tenant_id = ''`)
			if n := count(t, tx, `SELECT count(*) FROM api_keys`); n != 0 {
				t.Errorf("empty app.tenant_id sees %d keys", n)
			}
		})
	})

	t.Run("tenant set sees exactly its rows", func(t *testing.T) {
		for _, tid := range []string{acme, globex} {
			inTx(t, appDB, tid, func(tx *sql.Tx) {
				for _, table := range rlsTables {
					n := count(t, tx, `SELECT count(*) FROM `+table)
					foreign := count(t, tx, `SELECT count(*) FROM `+table+` WHERE tenant_id <> $1`, tid)
					if n == 0 || n != truth[table][tid] || foreign != 0 {
						t.Errorf("%s as %s: %d rows (%d of other tenants); want exactly its %d", table, tid, n, foreign, truth[table][tid])
					}
				}
			})
		}
	})

	inserts := map[string]string{
		"api_keys":             `INSERT INTO api_keys (tenant_id, id, name, role, prefix, key_hash, created_at) VALUES ($1, gen_random_uuid(), 'planted', 'tenant_admin', 'sbk_x', gen_random_uuid()::text, now())`,
		"invitations":          `INSERT INTO invitations (tenant_id, id, email, role, token_hash, expires_at, created_at) VALUES ($1, gen_random_uuid(), 'planted@example.com', 'tenant_owner', gen_random_uuid()::text, now() + interval '1 day', now())`,
		"roles":                `INSERT INTO roles (tenant_id, name, permissions, created_at, updated_at) VALUES ($1, 'planted', '["members:write"]', now(), now())`,
		"audit_events":         `INSERT INTO audit_events (tenant_id, id, actor_kind, action, created_at) VALUES ($1, gen_random_uuid(), 'system', 'planted', now())`,
		"usage_events":         `INSERT INTO usage_events (tenant_id, id, meter, quantity, occurred_at, recorded_at, idempotency_key) VALUES ($1, gen_random_uuid(), 'interactions', 1, now(), now(), gen_random_uuid()::text)`,
		"usage_dirty_days":     `INSERT INTO usage_dirty_days (tenant_id, day, version) VALUES ($1, '1999-01-01', 1)`,
		"subscription_changes": `INSERT INTO subscription_changes (tenant_id, id, plan_code, plan_version, effective_at, created_at) VALUES ($1, gen_random_uuid(), 'rls', 1, now(), now())`,
		"invoices":             `INSERT INTO invoices (tenant_id, id, number, period_start, period_end, currency, subtotal, discount, tax, credit_applied, total, lines, finalized_at) VALUES ($1, gen_random_uuid(), gen_random_uuid()::text, now(), now(), 'USD', 0, 0, 0, 0, 0, '[]', now())`,
		"billed_usage":         `INSERT INTO billed_usage (tenant_id, period_start, meter, quantity) VALUES ($1, now(), 'planted', 1)`,
		"usage_alerts":         `INSERT INTO usage_alerts (tenant_id, period_start, meter, threshold, quantity, included, sent_at) VALUES ($1, now(), 'planted', 80, 1, 1, now())`,
		"billing_accounts":     `INSERT INTO billing_accounts (tenant_id, created_at, updated_at) VALUES ($1, now(), now()) ON CONFLICT (tenant_id) DO UPDATE SET updated_at = now()`,
		"contacts":             `INSERT INTO contacts (tenant_id, id, created_at, updated_at) VALUES ($1, gen_random_uuid(), now(), now())`,
		"contact_identities":   `INSERT INTO contact_identities (tenant_id, id, contact_id, kind, value, created_at) VALUES ($1, gen_random_uuid(), (SELECT id FROM contacts WHERE tenant_id = $1 LIMIT 1), 'external', gen_random_uuid()::text, now())`,
		"contact_tags":         `INSERT INTO contact_tags (tenant_id, contact_id, tag) VALUES ($1, (SELECT id FROM contacts WHERE tenant_id = $1 LIMIT 1), gen_random_uuid()::text)`,
		"contact_fields":       `INSERT INTO contact_fields (tenant_id, key, label, type, created_at) VALUES ($1, 'f' || substr(md5(random()::text), 1, 8), 'Planted', 'text', now())`,
		"channels":             `INSERT INTO channels (tenant_id, id, type, name, public_id, created_at, updated_at) VALUES ($1, gen_random_uuid(), 'api', 'planted', gen_random_uuid()::text, now(), now())`,
		"conversations":        `INSERT INTO conversations (tenant_id, id, channel_id, contact_id, last_message_at, created_at, updated_at) VALUES ($1, gen_random_uuid(), (SELECT id FROM channels WHERE tenant_id = $1 LIMIT 1), (SELECT id FROM contacts WHERE tenant_id = $1 LIMIT 1), now(), now(), now())`,
		"conversation_tags":    `INSERT INTO conversation_tags (tenant_id, conversation_id, tag) VALUES ($1, (SELECT id FROM conversations WHERE tenant_id = $1 LIMIT 1), gen_random_uuid()::text)`,
		"messages":             `INSERT INTO messages (tenant_id, id, conversation_id, channel_id, direction, author_kind, status, created_at, updated_at) SELECT $1, gen_random_uuid(), id, channel_id, 'in', 'contact', 'received', now(), now() FROM (SELECT $1::uuid AS t) x LEFT JOIN LATERAL (SELECT id, channel_id FROM conversations WHERE tenant_id = $1 LIMIT 1) c ON true`,
		"attachments":          `INSERT INTO attachments (tenant_id, id, created_at) VALUES ($1, gen_random_uuid(), now())`,
		"calls":                `INSERT INTO calls (tenant_id, id, conversation_id, channel_id, provider_call_id, status, started_at, updated_at) SELECT $1, gen_random_uuid(), id, channel_id, gen_random_uuid()::text, 'ringing', now(), now() FROM (SELECT $1::uuid AS t) x LEFT JOIN LATERAL (SELECT id, channel_id FROM conversations WHERE tenant_id = $1 LIMIT 1) c ON true`,
		"canned_responses":     `INSERT INTO canned_responses (tenant_id, id, shortcut, title, content, created_at, updated_at) VALUES ($1, gen_random_uuid(), gen_random_uuid()::text, 't', 'c', now(), now())`,
		"realtime_events":      `INSERT INTO realtime_events (tenant_id, id, kind, payload, created_at) VALUES ($1, gen_random_uuid(), 'planted', '{}', now())`,
		"usage_rollups":        `INSERT INTO usage_rollups (tenant_id, meter, granularity, bucket_start, quantity, events, computed_at) VALUES ($1, 'planted', 'day', '1999-01-01', 1, 1, now())`,
	}

	t.Run("insert for another tenant is refused", func(t *testing.T) {
		for _, table := range rlsTables {
			inTx(t, appDB, acme, func(tx *sql.Tx) {
				// The same statement for the tenant that is set works: the refusal below is RLS.
				if _, err := tx.ExecContext(ctx, inserts[table], acme); err != nil {
					t.Errorf("%s: Acme inserting its own row: %v", table, err)
				}
			})
			inTx(t, appDB, acme, func(tx *sql.Tx) {
				_, err := tx.ExecContext(ctx, inserts[table], globex)
				if !isPG(err, "42501", "row-level security") {
					t.Errorf("%s: inserting a Globex row with Acme set: err = %v; want a row-level security violation", table, err)
				}
			})
			inTx(t, appDB, "", func(tx *sql.Tx) {
				_, err := tx.ExecContext(ctx, inserts[table], globex)
				if !isPG(err, "42501", "row-level security") {
					t.Errorf("%s: inserting a row with no tenant set: err = %v; want a row-level security violation", table, err)
				}
			})
		}
	})

	t.Run("update and delete of another tenant's rows affect none", func(t *testing.T) {
		updates := map[string]string{
			"api_keys":    `UPDATE api_keys SET name = 'pwned', role = 'tenant_admin' WHERE tenant_id = $1`,
			"invitations": `UPDATE invitations SET status = 'revoked' WHERE tenant_id = $1`,
			"roles":       `UPDATE roles SET permissions = '["members:write"]' WHERE tenant_id = $1`,
		}
		for table, upd := range updates {
			inTx(t, appDB, acme, func(tx *sql.Tx) {
				if n := affected(t, tx, upd, globex); n != 0 {
					t.Errorf("%s: UPDATE of Globex rows with Acme set affected %d", table, n)
				}
				if n := affected(t, tx, `DELETE FROM `+table+` WHERE tenant_id = $1`, globex); n != 0 {
					t.Errorf("%s: DELETE of Globex rows with Acme set affected %d", table, n)
				}
				if n := affected(t, tx, `DELETE FROM `+table); n != int64(truth[table][acme]) {
					t.Errorf("%s: unconditioned DELETE with Acme set affected %d; want Acme's %d only", table, n, truth[table][acme])
				}
			})
			// Moving one's own row into another tenant is refused by WITH CHECK.
			inTx(t, appDB, acme, func(tx *sql.Tx) {
				_, err := tx.ExecContext(ctx, `UPDATE `+table+` SET tenant_id = $1`, globex)
				if !isPG(err, "42501", "row-level security") {
					t.Errorf("%s: moving Acme's rows to Globex: err = %v; want a row-level security violation", table, err)
				}
			})
		}
		// Everything above was rolled back; the owner still sees every row.
		for _, table := range rlsTables {
			if n := count(t, owner, `SELECT count(*) FROM `+table+` WHERE tenant_id = $1`, globex); n != truth[table][globex] {
				t.Errorf("%s: Globex has %d rows, had %d", table, n, truth[table][globex])
			}
		}
	})

	t.Run("audit log and usage ledger are append-only for the app role", func(t *testing.T) {
		for _, setting := range []string{acme, "platform"} {
			for _, q := range []string{
				`UPDATE audit_events SET action = 'forged' WHERE tenant_id = '` + acme + `'`,
				`DELETE FROM audit_events WHERE tenant_id = '` + acme + `'`,
				`UPDATE usage_events SET quantity = 0 WHERE tenant_id = '` + acme + `'`,
				`DELETE FROM usage_events WHERE tenant_id = '` + acme + `'`,
			} {
				inTx(t, appDB, setting, func(tx *sql.Tx) {
					_, err := tx.ExecContext(ctx, q)
					if !isPG(err, "42501", "permission denied") {
						t.Errorf("%s with %s set: err = %v; want permission denied", q, setting, err)
					}
				})
			}
		}
	})

	t.Run("app role owns nothing and cannot bypass RLS", func(t *testing.T) {
		var user string
		var super, bypass bool
		must(t, appDB.QueryRowContext(ctx, `SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&user, &super, &bypass))
		if super || bypass {
			t.Errorf("app role %s: superuser=%v bypassrls=%v; want neither", user, super, bypass)
		}
		rows, err := appDB.QueryContext(ctx, `SELECT tablename FROM pg_tables WHERE tableowner = current_user`)
		must(t, err)
		for rows.Next() {
			var name string
			must(t, rows.Scan(&name))
			t.Errorf("app role %s owns table %s", user, name)
		}
		must(t, rows.Err())
		rows.Close()
		if n := count(t, appDB, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`); n < 10 {
			t.Errorf("only %d tables in the schema; the owner check above looked at too little", n)
		}
	})

	t.Run("every tenant table forces row-level security", func(t *testing.T) {
		rows, err := appDB.QueryContext(ctx, `
			SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
			       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
			FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
			JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
			WHERE c.relkind IN ('r', 'p')
			ORDER BY 1`)
		must(t, err)
		var found []string
		for rows.Next() {
			var name string
			var rls, force bool
			var policies int
			must(t, rows.Scan(&name, &rls, &force, &policies))
			found = append(found, name)
			if !rls || !force || policies == 0 {
				t.Errorf("tenant table %s: relrowsecurity=%v relforcerowsecurity=%v policies=%d; want true, true, ≥1", name, rls, force, policies)
			}
		}
		must(t, rows.Err())
		rows.Close()
		for _, want := range rlsTables {
			if !slices.Contains(found, want) {
				t.Errorf("tenant tables in the catalogue %v lack %s", found, want)
			}
		}
		known := e.App.DB.TenantTables()
		sort.Strings(known)
		if !slices.Equal(found, known) {
			t.Errorf("the catalogue's tenant tables %v differ from the handle's %v", found, known)
		}
	})

	t.Run("platform setting crosses tenants on purpose", func(t *testing.T) {
		inTx(t, appDB, "platform", func(tx *sql.Tx) {
			for _, table := range rlsTables {
				if n := count(t, tx, `SELECT count(DISTINCT tenant_id) FROM `+table+` WHERE tenant_id IN ($1, $2)`, acme, globex); n != 2 {
					t.Errorf("%s with app.platform on sees %d of the two tenants", table, n)
				}
			}
		})
	})
}

func openPG(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	must(t, err)
	t.Cleanup(func() { db.Close() })
	must(t, db.Ping())
	return db
}

type beginner interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}

// inTx runs fn in a transaction that is always rolled back. setting is a tenant id for
// SET LOCAL app.tenant_id, "platform" for SET LOCAL app.platform = 'on', or empty for neither.
func inTx(t *testing.T, db beginner, setting string, fn func(tx *sql.Tx)) {
	t.Helper()
	tx, err := db.BeginTx(context.Background(), nil)
	must(t, err)
	defer func() { _ = tx.Rollback() }()
	switch setting {
	case "":
	case "platform":
		mustExec(t, tx, `SET LOCAL app.platform = 'on'`)
	default:
		// A uuid.String() is safe to put in the statement; SET takes no parameters.
		mustExec(t, tx, fmt.Sprintf(`SET LOCAL app.tenant_id = '%s'`, setting))
	}
	fn(tx)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func count(t *testing.T, q querier, query string, args ...any) int {
	t.Helper()
	var n int
	must(t, q.QueryRowContext(context.Background(), query, args...).Scan(&n))
	return n
}

func mustExec(t *testing.T, tx *sql.Tx, q string, args ...any) {
	t.Helper()
	if _, err := tx.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func affected(t *testing.T, tx *sql.Tx, q string, args ...any) int64 {
	t.Helper()
	res, err := tx.ExecContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	n, err := res.RowsAffected()
	must(t, err)
	return n
}

// isPG reports whether err is a PostgreSQL error with the SQLSTATE code whose message contains
// part.
func isPG(err error, code, part string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code && strings.Contains(pe.Message, part)
}
