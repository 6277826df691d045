package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/identity"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// world is a running Switchboard on one dialect with one API key, one invitation and one
// audit event written for each of Acme and Globex through the tenant handle.
type world struct {
	e                          *apptest.Env
	db                         *tenant.DB
	none, acme, globex, plat   context.Context
	acmeKey, globexKey         identity.APIKey
	acmeInvite, globexInvite   identity.Invitation
	acmeKeyName, globexKeyName string
}

// eachDialect runs fn on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL, each with a
// fresh world.
func eachDialect(t *testing.T, fn func(t *testing.T, w *world)) {
	for _, d := range apptest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) { fn(t, newWorld(t, d)) })
	}
}

func newWorld(t *testing.T, d tenant.Dialect) *world {
	t.Helper()
	e := apptest.New(t, d)
	w := &world{e: e, db: e.App.DB, none: context.Background()}
	w.acme = tenant.WithOrg(w.none, e.Acme)
	w.globex = tenant.WithOrg(w.none, e.Globex)
	w.plat = e.App.DB.AsPlatform(w.none, "tenant tests: check across tenants")
	w.acmeKey, w.globexKey = newKey("acme key"), newKey("globex key")
	w.acmeInvite, w.globexInvite = newInvite("a@example.com"), newInvite("g@example.com")
	for _, c := range []struct {
		ctx    context.Context
		key    *identity.APIKey
		invite *identity.Invitation
	}{{w.acme, &w.acmeKey, &w.acmeInvite}, {w.globex, &w.globexKey, &w.globexInvite}} {
		must(t, w.db.Run(c.ctx, func(tx *gorm.DB) error {
			if err := tx.Create(c.key).Error; err != nil {
				return err
			}
			return tx.Create(c.invite).Error
		}))
		must(t, w.db.Record(c.ctx, tenant.Audit{Action: "test.fixture", ObjectType: "api_key", ObjectID: c.key.ID.String()}))
	}
	// Create with a zero TenantID is stamped with the context's tenant.
	if w.acmeKey.TenantID != e.Acme.ID || w.globexKey.TenantID != e.Globex.ID || w.acmeInvite.TenantID != e.Acme.ID {
		t.Fatalf("create did not stamp the context tenant: acme key %s, globex key %s, acme invitation %s",
			w.acmeKey.TenantID, w.globexKey.TenantID, w.acmeInvite.TenantID)
	}
	return w
}

func newKey(name string) identity.APIKey {
	id := ids.New()
	return identity.APIKey{ID: id, Name: name, Role: "agent", Prefix: "sbk_test", KeyHash: "hash-" + id.String(), CreatedAt: time.Now().UTC()}
}

func newInvite(email string) identity.Invitation {
	id := ids.New()
	now := time.Now().UTC()
	return identity.Invitation{ID: id, Email: email, Role: "agent", TokenHash: "tok-" + id.String(), Status: "pending",
		ExpiresAt: now.Add(time.Hour), CreatedAt: now}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// key reads one API key across tenants, by id.
func (w *world) key(t *testing.T, id uuid.UUID) (identity.APIKey, bool) {
	t.Helper()
	var k identity.APIKey
	err := w.db.Run(w.plat, func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&k).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return k, false
	}
	must(t, err)
	return k, true
}

// countAll counts a table's rows across tenants.
func (w *world) countAll(t *testing.T, table string) int64 {
	t.Helper()
	var n int64
	must(t, w.db.Run(w.plat, func(tx *gorm.DB) error { return tx.Table(table).Count(&n).Error }))
	return n
}

func TestTenantTablesAreKnown(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		got := w.db.TenantTables()
		for _, want := range []string{"roles", "api_keys", "invitations", "audit_events"} {
			if !slices.Contains(got, want) {
				t.Errorf("TenantTables() = %v, missing %s", got, want)
			}
		}
		for _, global := range []string{"orgs", "users", "memberships", "sessions", "user_tokens", "mails"} {
			if slices.Contains(got, global) {
				t.Errorf("TenantTables() = %v lists the global table %s", got, global)
			}
		}
	})
}

// TestNoTenantIsAnError: every kind of statement on a tenant table without a tenant in the
// context fails with ErrNoTenant, and changes nothing.
func TestNoTenantIsAnError(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		id := w.acmeKey.ID
		ops := map[string]func(tx *gorm.DB) error{
			"Find":           func(tx *gorm.DB) error { return tx.Find(&[]identity.APIKey{}).Error },
			"First":          func(tx *gorm.DB) error { return tx.First(&identity.APIKey{}).Error },
			"Take by id":     func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&identity.APIKey{}).Error },
			"Model.Count":    func(tx *gorm.DB) error { var n int64; return tx.Model(&identity.APIKey{}).Count(&n).Error },
			"Table.Count":    func(tx *gorm.DB) error { var n int64; return tx.Table("roles").Count(&n).Error },
			"Table.Find map": func(tx *gorm.DB) error { return tx.Table("api_keys").Find(&[]map[string]any{}).Error },
			"Pluck":          func(tx *gorm.DB) error { var s []string; return tx.Model(&identity.APIKey{}).Pluck("name", &s).Error },
			"Table.Scan": func(tx *gorm.DB) error {
				var s []struct{ Name string }
				return tx.Table("api_keys").Select("name").Scan(&s).Error
			},
			"Rows": func(tx *gorm.DB) error {
				rows, err := tx.Model(&identity.APIKey{}).Rows()
				if rows != nil {
					rows.Close()
				}
				return err
			},
			"Update": func(tx *gorm.DB) error {
				return tx.Model(&identity.APIKey{}).Where("id = ?", id).Update("name", "changed").Error
			},
			"Updates struct": func(tx *gorm.DB) error {
				return tx.Model(&identity.APIKey{}).Where("id = ?", id).Updates(identity.APIKey{Name: "changed"}).Error
			},
			"Updates map": func(tx *gorm.DB) error {
				return tx.Table("invitations").Where("id = ?", w.acmeInvite.ID).Updates(map[string]any{"status": "revoked"}).Error
			},
			"Delete":       func(tx *gorm.DB) error { return tx.Where("id = ?", id).Delete(&identity.APIKey{}).Error },
			"Delete by pk": func(tx *gorm.DB) error { k := w.acmeKey; return tx.Delete(&k).Error },
			"Create":       func(tx *gorm.DB) error { k := newKey("nobody's"); return tx.Create(&k).Error },
			"Create with TenantID": func(tx *gorm.DB) error {
				k := newKey("nobody's")
				k.TenantID = w.e.Acme.ID
				return tx.Create(&k).Error
			},
			"Create batch": func(tx *gorm.DB) error {
				ks := []identity.APIKey{newKey("b1"), newKey("b2")}
				return tx.Create(&ks).Error
			},
			"Create map": func(tx *gorm.DB) error {
				return tx.Table("roles").Create(map[string]any{"tenant_id": w.e.Acme.ID, "name": "x", "created_at": time.Now(), "updated_at": time.Now()}).Error
			},
			"Create invitation": func(tx *gorm.DB) error { i := newInvite("n@example.com"); return tx.Create(&i).Error },
			"Find audit":        func(tx *gorm.DB) error { return tx.Find(&[]tenant.AuditEvent{}).Error },
			"Create audit": func(tx *gorm.DB) error {
				return tx.Create(&tenant.AuditEvent{ID: ids.New(), ActorKind: tenant.ActorSystem, Action: "x", Data: "{}", CreatedAt: time.Now()}).Error
			},
		}
		before := map[string]int64{}
		for _, table := range []string{"api_keys", "invitations", "roles", "audit_events"} {
			before[table] = w.countAll(t, table)
		}
		for name, op := range ops {
			err := w.db.Run(w.none, op)
			if !errors.Is(err, tenant.ErrNoTenant) {
				t.Errorf("%s without a tenant: err = %v, want ErrNoTenant", name, err)
			}
		}
		// Tx without a tenant is no way around it either.
		err := w.db.Tx(w.none, func(ctx context.Context) error {
			return w.db.Run(ctx, func(tx *gorm.DB) error { return tx.Find(&[]identity.APIKey{}).Error })
		})
		if !errors.Is(err, tenant.ErrNoTenant) {
			t.Errorf("Find in a Tx without a tenant: err = %v, want ErrNoTenant", err)
		}
		if err := w.db.Record(w.none, tenant.Audit{Action: "x"}); !errors.Is(err, tenant.ErrNoTenant) {
			t.Errorf("Record without a tenant: err = %v, want ErrNoTenant", err)
		}
		for table, n := range before {
			if got := w.countAll(t, table); got != n {
				t.Errorf("%s: %d rows after the refused statements, %d before", table, got, n)
			}
		}
		if k, ok := w.key(t, w.acmeKey.ID); !ok || k.Name != w.acmeKey.Name {
			t.Errorf("Acme's key changed by refused statements: %+v (found %v)", k, ok)
		}
	})
}

// TestTenantSeesOnlyItsRows: reads in a tenant's context return that tenant's rows only.
func TestTenantSeesOnlyItsRows(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		for _, c := range []struct {
			name        string
			ctx         context.Context
			org         tenant.Org
			own, other  uuid.UUID
			ownInvite   uuid.UUID
			otherInvite uuid.UUID
		}{
			{"acme", w.acme, w.e.Acme, w.acmeKey.ID, w.globexKey.ID, w.acmeInvite.ID, w.globexInvite.ID},
			{"globex", w.globex, w.e.Globex, w.globexKey.ID, w.acmeKey.ID, w.globexInvite.ID, w.acmeInvite.ID},
		} {
			t.Run(c.name, func(t *testing.T) {
				var keys []identity.APIKey
				var invites []identity.Invitation
				var events []tenant.AuditEvent
				var maps []map[string]any
				var n int64
				var other identity.APIKey
				var otherErr error
				must(t, w.db.Run(c.ctx, func(tx *gorm.DB) error {
					if err := tx.Find(&keys).Error; err != nil {
						return err
					}
					if err := tx.Find(&invites).Error; err != nil {
						return err
					}
					if err := tx.Find(&events).Error; err != nil {
						return err
					}
					if err := tx.Table("api_keys").Find(&maps).Error; err != nil {
						return err
					}
					if err := tx.Model(&identity.APIKey{}).Where("id IN ?", []uuid.UUID{c.own, c.other}).Count(&n).Error; err != nil {
						return err
					}
					otherErr = tx.Where("id = ?", c.other).Take(&other).Error
					return nil
				}))
				if len(keys) == 0 || len(invites) == 0 || len(events) == 0 {
					t.Fatalf("%s sees %d keys, %d invitations, %d audit events; want its own (>0)", c.name, len(keys), len(invites), len(events))
				}
				sawOwn := false
				for _, k := range keys {
					if k.TenantID != c.org.ID {
						t.Errorf("%s sees key %s of tenant %s", c.name, k.ID, k.TenantID)
					}
					sawOwn = sawOwn || k.ID == c.own
				}
				if !sawOwn {
					t.Errorf("%s does not see its own key %s", c.name, c.own)
				}
				for _, i := range invites {
					if i.TenantID != c.org.ID || i.ID == c.otherInvite {
						t.Errorf("%s sees invitation %s of tenant %s", c.name, i.ID, i.TenantID)
					}
				}
				if !slices.ContainsFunc(invites, func(i identity.Invitation) bool { return i.ID == c.ownInvite }) {
					t.Errorf("%s does not see its own invitation", c.name)
				}
				for _, ev := range events {
					if ev.TenantID != c.org.ID {
						t.Errorf("%s sees audit event %s of tenant %s", c.name, ev.ID, ev.TenantID)
					}
				}
				if len(maps) != len(keys) {
					t.Errorf("%s: Table(api_keys) finds %d rows, the model %d", c.name, len(maps), len(keys))
				}
				if n != 1 {
					t.Errorf("%s: count of its own and the other tenant's key = %d, want 1", c.name, n)
				}
				if !errors.Is(otherErr, gorm.ErrRecordNotFound) {
					t.Errorf("%s: Take of the other tenant's key by id: err = %v (%+v), want ErrRecordNotFound", c.name, otherErr, other)
				}
			})
		}
	})
}

// TestCreateStampsAndRefusesOtherTenants: a zero TenantID is stamped with the context's tenant
// (see newWorld) and a row naming another tenant is refused, alone or in a batch.
func TestCreateStampsAndRefusesOtherTenants(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		before := w.countAll(t, "api_keys")
		intruder := newKey("intruder")
		intruder.TenantID = w.e.Globex.ID
		err := w.db.Run(w.acme, func(tx *gorm.DB) error { return tx.Create(&intruder).Error })
		if !errors.Is(err, tenant.ErrCrossTenant) {
			t.Errorf("create of a Globex row in Acme's context: err = %v, want ErrCrossTenant", err)
		}
		batch := []identity.APIKey{newKey("ok"), intruder}
		batch[1].ID, batch[1].KeyHash = ids.New(), "hash-batch"
		err = w.db.Run(w.acme, func(tx *gorm.DB) error { return tx.Create(&batch).Error })
		if !errors.Is(err, tenant.ErrCrossTenant) {
			t.Errorf("batch create with one Globex row in Acme's context: err = %v, want ErrCrossTenant", err)
		}
		inv := newInvite("x@example.com")
		inv.TenantID = w.e.Globex.ID
		err = w.db.Run(w.acme, func(tx *gorm.DB) error { return tx.Create(&inv).Error })
		if !errors.Is(err, tenant.ErrCrossTenant) {
			t.Errorf("create of a Globex invitation in Acme's context: err = %v, want ErrCrossTenant", err)
		}
		// Save of another tenant's row (an update that finds nothing, then an upsert) is refused.
		stolen := w.globexKey
		stolen.Name = "stolen"
		err = w.db.Run(w.acme, func(tx *gorm.DB) error { return tx.Save(&stolen).Error })
		if !errors.Is(err, tenant.ErrCrossTenant) {
			t.Errorf("Save of Globex's key in Acme's context: err = %v, want ErrCrossTenant", err)
		}
		if got := w.countAll(t, "api_keys"); got != before {
			t.Errorf("api_keys: %d rows after refused creates, %d before", got, before)
		}
		if k, _ := w.key(t, w.globexKey.ID); k.Name != w.globexKey.Name || k.TenantID != w.e.Globex.ID {
			t.Errorf("Globex's key changed: %+v", k)
		}
		// The context's own tenant, named explicitly, is fine.
		own := newKey("explicit")
		own.TenantID = w.e.Acme.ID
		must(t, w.db.Run(w.acme, func(tx *gorm.DB) error { return tx.Create(&own).Error }))
		if k, ok := w.key(t, own.ID); !ok || k.TenantID != w.e.Acme.ID {
			t.Errorf("explicit Acme row: %+v (found %v)", k, ok)
		}
	})
}

// TestCrossTenantWritesAffectNothing: updates and deletes by id of another tenant's row match
// no row.
func TestCrossTenantWritesAffectNothing(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		gid := w.globexKey.ID
		for name, op := range map[string]func(tx *gorm.DB) *gorm.DB{
			"Update": func(tx *gorm.DB) *gorm.DB {
				return tx.Model(&identity.APIKey{}).Where("id = ?", gid).Update("name", "pwned")
			},
			"Updates map": func(tx *gorm.DB) *gorm.DB {
				return tx.Table("api_keys").Where("id = ?", gid).Updates(map[string]any{"name": "pwned"})
			},
			"Updates by pk": func(tx *gorm.DB) *gorm.DB {
				k := w.globexKey
				return tx.Model(&k).Updates(identity.APIKey{Name: "pwned"})
			},
			"Delete":       func(tx *gorm.DB) *gorm.DB { return tx.Where("id = ?", gid).Delete(&identity.APIKey{}) },
			"Delete by pk": func(tx *gorm.DB) *gorm.DB { k := w.globexKey; return tx.Delete(&k) },
			"Delete invite": func(tx *gorm.DB) *gorm.DB {
				return tx.Where("id = ?", w.globexInvite.ID).Delete(&identity.Invitation{})
			},
			"Update invite": func(tx *gorm.DB) *gorm.DB {
				return tx.Model(&identity.Invitation{}).Where("id = ?", w.globexInvite.ID).Update("status", "revoked")
			},
			"Update all ids": func(tx *gorm.DB) *gorm.DB {
				return tx.Model(&identity.APIKey{}).Where("id IN ?", []uuid.UUID{gid}).Update("role", "tenant_owner")
			},
		} {
			var res *gorm.DB
			err := w.db.Run(w.acme, func(tx *gorm.DB) error { res = op(tx); return res.Error })
			if err != nil {
				t.Errorf("%s of Globex's row from Acme: %v", name, err)
				continue
			}
			if res.RowsAffected != 0 {
				t.Errorf("%s of Globex's row from Acme affected %d rows, want 0", name, res.RowsAffected)
			}
		}
		k, ok := w.key(t, gid)
		if !ok || k.Name != w.globexKey.Name || k.Role != w.globexKey.Role {
			t.Errorf("Globex's key after Acme's writes: %+v (found %v)", k, ok)
		}
		var inv identity.Invitation
		must(t, w.db.Run(w.globex, func(tx *gorm.DB) error { return tx.Where("id = ?", w.globexInvite.ID).Take(&inv).Error }))
		if inv.Status != "pending" {
			t.Errorf("Globex's invitation after Acme's writes: status %s", inv.Status)
		}
		// The same statements in Globex's own context do match its row.
		var res *gorm.DB
		must(t, w.db.Run(w.globex, func(tx *gorm.DB) error {
			res = tx.Model(&identity.APIKey{}).Where("id = ?", gid).Update("name", "renamed")
			return res.Error
		}))
		if res.RowsAffected != 1 {
			t.Errorf("Globex renaming its own key affected %d rows, want 1", res.RowsAffected)
		}
	})
}

// TestPlatformSeesEveryTenant: AsPlatform crosses tenants on purpose.
func TestPlatformSeesEveryTenant(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		var keys []identity.APIKey
		var events []tenant.AuditEvent
		must(t, w.db.Run(w.plat, func(tx *gorm.DB) error {
			if err := tx.Find(&keys).Error; err != nil {
				return err
			}
			return tx.Where("action = ?", "test.fixture").Find(&events).Error
		}))
		seen := map[uuid.UUID]bool{}
		for _, k := range keys {
			seen[k.ID] = true
		}
		if !seen[w.acmeKey.ID] || !seen[w.globexKey.ID] {
			t.Errorf("platform sees %d keys, not both tenants' (acme %v, globex %v)", len(keys), seen[w.acmeKey.ID], seen[w.globexKey.ID])
		}
		orgs := map[uuid.UUID]bool{}
		for _, ev := range events {
			orgs[ev.TenantID] = true
		}
		if !orgs[w.e.Acme.ID] || !orgs[w.e.Globex.ID] {
			t.Errorf("platform sees audit events of %v, want Acme and Globex", orgs)
		}
		// A platform job may write a row for a named tenant; the row keeps that tenant.
		k := newKey("by platform")
		k.TenantID = w.e.Globex.ID
		must(t, w.db.Run(w.plat, func(tx *gorm.DB) error { return tx.Create(&k).Error }))
		if got, ok := w.key(t, k.ID); !ok || got.TenantID != w.e.Globex.ID {
			t.Errorf("platform-written row: %+v (found %v)", got, ok)
		}
		// ... but it must name one: there is no context tenant to stamp.
		z := newKey("tenantless")
		err := w.db.Run(w.plat, func(tx *gorm.DB) error { return tx.Create(&z).Error })
		if !errors.Is(err, tenant.ErrNoTenant) {
			t.Errorf("platform create with a zero TenantID: err = %v, want ErrNoTenant", err)
		}
	})
}

// TestAfterCommit: work registered in a transaction runs once it has committed (and sees the
// committed row from another connection), never after a rollback, and at once outside one.
func TestAfterCommit(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		k := newKey("after commit")
		ran, visible, ranInside := 0, false, false
		must(t, w.db.Tx(w.acme, func(ctx context.Context) error {
			if err := w.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&k).Error }); err != nil {
				return err
			}
			tenant.AfterCommit(ctx, func(actx context.Context) {
				ran++
				// Outside the transaction (no tx in this context): a committed row is visible.
				_, visible = w.key(t, k.ID)
				// fn gets the context the transaction was opened with: Acme's, and usable
				// for new work (it must not carry the finished transaction).
				if id, ok := tenant.ID(actx); !ok || id != w.e.Acme.ID {
					t.Errorf("AfterCommit's context names tenant %v (%v), want Acme", id, ok)
				}
				var own identity.APIKey
				if err := w.db.Run(actx, func(tx *gorm.DB) error { return tx.Where("id = ?", k.ID).Take(&own).Error }); err != nil {
					t.Errorf("work in AfterCommit's context: %v", err)
				}
			})
			ranInside = ran > 0
			return nil
		}))
		if ranInside {
			t.Error("AfterCommit ran before the transaction committed")
		}
		if ran != 1 || !visible {
			t.Errorf("after commit: ran %d times (want 1), row visible to another connection: %v", ran, visible)
		}

		rolledBack := newKey("rolled back")
		ran = 0
		boom := errors.New("boom")
		err := w.db.Tx(w.acme, func(ctx context.Context) error {
			if err := w.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&rolledBack).Error }); err != nil {
				return err
			}
			tenant.AfterCommit(ctx, func(context.Context) { ran++ })
			return boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("Tx returned %v, want the callback's error", err)
		}
		if ran != 0 {
			t.Errorf("AfterCommit ran %d times after a rollback", ran)
		}
		if _, ok := w.key(t, rolledBack.ID); ok {
			t.Error("a row created in a rolled-back transaction exists")
		}

		// A failing statement (not just a returned error) rolls back too.
		ran = 0
		_ = w.db.Tx(w.acme, func(ctx context.Context) error {
			tenant.AfterCommit(ctx, func(context.Context) { ran++ })
			return w.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&k).Error }) // duplicate key
		})
		if ran != 0 {
			t.Errorf("AfterCommit ran %d times after a failed statement", ran)
		}

		ran = 0
		tenant.AfterCommit(w.acme, func(context.Context) { ran++ })
		if ran != 1 {
			t.Errorf("AfterCommit outside a transaction ran %d times, want 1 at once", ran)
		}
	})
}

// TestNestedTxJoinsOuter: an inner Tx is part of the outer transaction: the outer rollback
// undoes the inner's rows and drops its after-commit work; an outer commit keeps both.
func TestNestedTxJoinsOuter(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		outer, inner := newKey("outer"), newKey("inner")
		ran := 0
		boom := errors.New("boom")
		err := w.db.Tx(w.acme, func(ctx context.Context) error {
			if err := w.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&outer).Error }); err != nil {
				return err
			}
			if err := w.db.Tx(ctx, func(ctx context.Context) error {
				tenant.AfterCommit(ctx, func(context.Context) { ran++ })
				return w.db.Run(ctx, func(tx *gorm.DB) error {
					// The inner transaction sees the outer's uncommitted row: it is the same one.
					var n int64
					if err := tx.Model(&identity.APIKey{}).Where("id = ?", outer.ID).Count(&n).Error; err != nil {
						return err
					}
					if n != 1 {
						return fmt.Errorf("inner Tx does not see the outer's row (count %d)", n)
					}
					return tx.Create(&inner).Error
				})
			}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("outer Tx: %v", err)
		}
		for _, k := range []identity.APIKey{outer, inner} {
			if _, ok := w.key(t, k.ID); ok {
				t.Errorf("key %q survived the outer rollback", k.Name)
			}
		}
		if ran != 0 {
			t.Errorf("inner AfterCommit ran %d times after the outer rollback", ran)
		}

		outer, inner = newKey("outer2"), newKey("inner2")
		must(t, w.db.Tx(w.acme, func(ctx context.Context) error {
			if err := w.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&outer).Error }); err != nil {
				return err
			}
			err := w.db.Tx(ctx, func(ctx context.Context) error {
				tenant.AfterCommit(ctx, func(context.Context) { ran++ })
				return w.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&inner).Error })
			})
			if ran != 0 {
				t.Error("inner AfterCommit ran when the inner Tx returned, before the outer commit")
			}
			return err
		}))
		for _, k := range []identity.APIKey{outer, inner} {
			if _, ok := w.key(t, k.ID); !ok {
				t.Errorf("key %q missing after the outer commit", k.Name)
			}
		}
		if ran != 1 {
			t.Errorf("inner AfterCommit ran %d times after the outer commit, want 1", ran)
		}
	})
}

// TestLifecycle checks every pair of statuses against the lifecycle
// trial → active → past_due → suspended → cancelled, and what each status allows.
func TestLifecycle(t *testing.T) {
	const (
		tr = tenant.StatusTrial
		ac = tenant.StatusActive
		pd = tenant.StatusPastDue
		su = tenant.StatusSuspended
		ca = tenant.StatusCancelled
	)
	all := []tenant.Status{tr, ac, pd, su, ca}
	allowed := map[tenant.Status][]tenant.Status{
		tr: {ac, pd, su, ca}, // a trial converts, lapses unpaid, is suspended or cancelled
		ac: {pd, su, ca},     // a paying tenant misses a payment, is suspended or cancels
		pd: {ac, su, ca},     // dunning: pays up, or is suspended, or cancelled
		su: {ac, ca},         // reinstated or cancelled; never back to trial or dunning
		ca: {},               // cancelled is final
	}
	for _, from := range all {
		for _, to := range all {
			want := slices.Contains(allowed[from], to)
			if got := tenant.CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
			err := tenant.CheckTransition(from, to)
			if (err == nil) != want {
				t.Errorf("CheckTransition(%s, %s) = %v, want allowed=%v", from, to, err, want)
			}
		}
	}
	for _, s := range all {
		if tenant.CanTransition(s, s) {
			t.Errorf("%s → %s is allowed; a transition must change the status", s, s)
		}
		if tenant.CanTransition(s, "bogus") || tenant.CanTransition("bogus", s) {
			t.Errorf("a transition between %s and an unknown status is allowed", s)
		}
	}
	if err := tenant.CheckTransition(ac, "bogus"); err == nil {
		t.Error("CheckTransition to an unknown status succeeded")
	}
	type can struct{ read, write bool }
	for s, want := range map[tenant.Status]can{
		tr: {true, true}, ac: {true, true}, pd: {true, true},
		su: {true, false}, // read-only console
		ca: {false, false},
	} {
		if got := (can{s.CanRead(), s.CanWrite()}); got != want {
			t.Errorf("%s: CanRead, CanWrite = %v, %v; want %v, %v", s, got.read, got.write, want.read, want.write)
		}
		if s.CanSendOutbound() != want.write {
			t.Errorf("%s: CanSendOutbound = %v, want %v", s, s.CanSendOutbound(), want.write)
		}
	}
}

// TestTransitionIsAuditedAndChecked drives Transition on the database: a legal move changes the
// status and writes an audit event in the tenant's log; an illegal one changes nothing.
func TestTransitionIsAuditedAndChecked(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		org, err := w.db.Transition(w.none, w.e.Globex.ID, tenant.StatusSuspended, "test")
		must(t, err)
		if org.Status != tenant.StatusSuspended {
			t.Fatalf("status after transition: %s", org.Status)
		}
		if _, err := w.db.Transition(w.none, w.e.Globex.ID, tenant.StatusPastDue, "test"); err == nil {
			t.Error("suspended → past_due succeeded")
		}
		if _, err := w.db.Transition(w.none, w.e.Northwind.ID, tenant.StatusSuspended, "test"); err == nil {
			t.Error("a vendor was given a lifecycle transition")
		}
		var events []tenant.AuditEvent
		must(t, w.db.Run(w.globex, func(tx *gorm.DB) error {
			return tx.Where("action = ?", "tenant.status_changed").Find(&events).Error
		}))
		if len(events) != 1 {
			t.Fatalf("Globex's log has %d status changes, want 1", len(events))
		}
		var after tenant.Org
		must(t, w.db.Run(w.none, func(tx *gorm.DB) error { return tx.Where("id = ?", w.e.Globex.ID).Take(&after).Error }))
		if after.Status != tenant.StatusSuspended {
			t.Errorf("Globex's stored status: %s", after.Status)
		}
	})
}

// The tests below pin holes in the fail-closed handle found while writing this file. Each one
// fails on SQLite, where no row-level security stands behind the gorm callbacks.

// TestUpdateCannotMoveRowToAnotherTenant: an update in Acme's context that sets tenant_id to
// Globex writes a row "with a tenant_id other than the context's" and must be refused.
func TestUpdateCannotMoveRowToAnotherTenant(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		for name, op := range map[string]func(tx *gorm.DB, k identity.APIKey) error{
			"Update column": func(tx *gorm.DB, k identity.APIKey) error {
				return tx.Model(&identity.APIKey{}).Where("id = ?", k.ID).Update("tenant_id", w.e.Globex.ID).Error
			},
			"Updates struct": func(tx *gorm.DB, k identity.APIKey) error {
				return tx.Model(&identity.APIKey{}).Where("id = ?", k.ID).Updates(identity.APIKey{TenantID: w.e.Globex.ID}).Error
			},
			"Updates map": func(tx *gorm.DB, k identity.APIKey) error {
				return tx.Table("api_keys").Where("id = ?", k.ID).Updates(map[string]any{"tenant_id": w.e.Globex.ID}).Error
			},
			"Updates string": func(tx *gorm.DB, k identity.APIKey) error {
				return tx.Model(&identity.APIKey{}).Where("id = ?", k.ID).Update("tenant_id", w.e.Globex.ID.String()).Error
			},
			"Updates patch struct": func(tx *gorm.DB, k identity.APIKey) error {
				// A struct of another type than the model (gorm maps its fields by name).
				return tx.Model(&identity.APIKey{}).Where("id = ?", k.ID).Updates(keyPatch{TenantID: w.e.Globex.ID, Name: "moved"}).Error
			},
			"Save": func(tx *gorm.DB, k identity.APIKey) error {
				k.TenantID = w.e.Globex.ID
				return tx.Save(&k).Error
			},
		} {
			k := newKey("mover")
			must(t, w.db.Run(w.acme, func(tx *gorm.DB) error { return tx.Create(&k).Error }))
			err := w.db.Run(w.acme, func(tx *gorm.DB) error { return op(tx, k) })
			got, _ := w.key(t, k.ID)
			if got.TenantID != w.e.Acme.ID {
				t.Errorf("%s in Acme's context moved Acme's key to tenant %s (err %v); want ErrCrossTenant and no change", name, got.TenantID, err)
			} else if err == nil {
				t.Errorf("%s of tenant_id to Globex in Acme's context returned no error", name)
			}
		}
	})
}

// keyPatch is a partial update of an API key written as its own struct type.
type keyPatch struct {
	TenantID uuid.UUID
	Name     string
}

// TestMapCreateCannotTargetAnotherTenant: an insert from a map (no struct to stamp) naming
// another tenant is refused like a struct insert.
func TestMapCreateCannotTargetAnotherTenant(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		id := ids.New()
		now := time.Now().UTC()
		row := map[string]any{"tenant_id": w.e.Globex.ID, "id": id, "name": "planted", "role": "tenant_admin",
			"prefix": "sbk_x", "key_hash": "planted-" + id.String(), "created_at": now}
		err := w.db.Run(w.acme, func(tx *gorm.DB) error { return tx.Model(&identity.APIKey{}).Create(row).Error })
		if k, ok := w.key(t, id); ok {
			t.Errorf("a map insert in Acme's context planted a key in tenant %s (err %v); want ErrCrossTenant", k.TenantID, err)
		}
		role := map[string]any{"tenant_id": w.e.Globex.ID, "name": "planted", "description": "", "permissions": `["members:read"]`,
			"created_at": now, "updated_at": now}
		err = w.db.Run(w.acme, func(tx *gorm.DB) error { return tx.Table("roles").Create(role).Error })
		var n int64
		must(t, w.db.Run(w.globex, func(tx *gorm.DB) error { return tx.Table("roles").Where("name = ?", "planted").Count(&n).Error }))
		if n != 0 {
			t.Errorf("a map insert into roles in Acme's context planted a role in Globex (err %v); want ErrCrossTenant", err)
		}
	})
}

// TestAliasedTenantTableIsScoped: every way of naming a tenant table through Table() is the
// same table and is scoped like Table("api_keys"): under an alias (the codebase writes
// Table("memberships m") for global tables) or schema-qualified.
func TestAliasedTenantTableIsScoped(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		schema := "main"
		if w.db.Dialect() == tenant.Postgres {
			schema = "public"
		}
		for _, c := range []struct{ table, tenantCol string }{
			{"api_keys", "tenant_id"},
			{"api_keys k", "k.tenant_id"},
			{"api_keys AS k", "k.tenant_id"},
			{schema + ".api_keys", "tenant_id"},
			{schema + ".api_keys AS k", "k.tenant_id"},
		} {
			var rows []map[string]any
			err := w.db.Run(w.none, func(tx *gorm.DB) error { return tx.Table(c.table).Find(&rows).Error })
			if !errors.Is(err, tenant.ErrNoTenant) {
				t.Errorf("Table(%q) without a tenant: %d rows, err = %v; want ErrNoTenant", c.table, len(rows), err)
			}
			var n int64
			err = w.db.Run(w.none, func(tx *gorm.DB) error { return tx.Table(c.table).Count(&n).Error })
			if !errors.Is(err, tenant.ErrNoTenant) {
				t.Errorf("Table(%q).Count without a tenant: %d, err = %v; want ErrNoTenant", c.table, n, err)
			}
			rows = nil
			err = w.db.Run(w.acme, func(tx *gorm.DB) error {
				return tx.Table(c.table).Select(c.tenantCol + " AS tenant_id").Find(&rows).Error
			})
			if err != nil {
				t.Errorf("Table(%q) in Acme's context: %v", c.table, err)
				continue
			}
			if len(rows) == 0 {
				t.Errorf("Table(%q) in Acme's context finds none of Acme's keys", c.table)
			}
			for _, r := range rows {
				if fmt.Sprint(r["tenant_id"]) != w.e.Acme.ID.String() {
					t.Errorf("Table(%q) in Acme's context returns a row of tenant %v", c.table, r["tenant_id"])
				}
			}
		}
	})
}

// TestWherelessWriteIsRefused: gorm refuses an UPDATE or DELETE without conditions
// (ErrMissingWhereClause); the tenant filter must not count as the condition that lets a
// forgotten Where rewrite or wipe a whole tenant's table.
func TestWherelessWriteIsRefused(t *testing.T) {
	eachDialect(t, func(t *testing.T, w *world) {
		before := w.countAll(t, "api_keys")
		var upd, del *gorm.DB
		_ = w.db.Run(w.acme, func(tx *gorm.DB) error {
			upd = tx.Model(&identity.APIKey{}).Update("name", "all renamed")
			return nil
		})
		_ = w.db.Run(w.acme, func(tx *gorm.DB) error {
			del = tx.Delete(&identity.APIKey{})
			return nil
		})
		if !errors.Is(upd.Error, gorm.ErrMissingWhereClause) {
			t.Errorf("Update without Where in Acme's context: err = %v, %d rows renamed; want ErrMissingWhereClause", upd.Error, upd.RowsAffected)
		}
		if !errors.Is(del.Error, gorm.ErrMissingWhereClause) {
			t.Errorf("Delete without Where in Acme's context: err = %v, %d rows deleted (of %d keys in all tenants); want ErrMissingWhereClause",
				del.Error, del.RowsAffected, before)
		}
	})
}

// BenchmarkRun measures what the tenant handle adds to one small read: on PostgreSQL, Run with a
// tenant in the context wraps the statement in BEGIN, set_config(app.tenant_id), COMMIT (three
// extra round trips); without one it is the bare statement. The statement reads a global table
// (orgs by id) so the two differ only in that wrapping; "tenant table" reads Acme's API keys.
func BenchmarkRun(b *testing.B) {
	for _, d := range []tenant.Dialect{tenant.SQLite, tenant.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			if d == tenant.Postgres && os.Getenv("TEST_DATABASE_URL") == "" {
				b.Skip("TEST_DATABASE_URL not set: PostgreSQL benchmark skipped")
			}
			e := apptest.New(b, d)
			db := e.App.DB
			acme := tenant.WithOrg(context.Background(), e.Acme)
			k := newKey("bench")
			if err := db.Run(acme, func(tx *gorm.DB) error { return tx.Create(&k).Error }); err != nil {
				b.Fatal(err)
			}
			for _, c := range []struct {
				name string
				ctx  context.Context
				fn   func(tx *gorm.DB) error
			}{
				{"global table, no tenant", context.Background(), func(tx *gorm.DB) error {
					var o tenant.Org
					return tx.Where("id = ?", e.Acme.ID).Take(&o).Error
				}},
				{"global table, tenant in context", acme, func(tx *gorm.DB) error {
					var o tenant.Org
					return tx.Where("id = ?", e.Acme.ID).Take(&o).Error
				}},
				{"tenant table", acme, func(tx *gorm.DB) error {
					var keys []identity.APIKey
					return tx.Find(&keys).Error
				}},
			} {
				b.Run(c.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if err := db.Run(c.ctx, c.fn); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
