package app_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// fixture makes an object in Acme for a route that takes an id, and tells whether it is still
// as it was.
type fixture struct {
	create    func(e *apptest.Env, owner *apptest.Client) string
	body      any
	unchanged func(e *apptest.Env, owner *apptest.Client, id string) bool
}

// objectRoutes has a fixture for every path with an id parameter behind a permission. The
// walk below fails for a route that has none, so a new module must add its own.
var paramRE = regexp.MustCompile(`:[a-z_]+`)

// adminTenant probes the platform admin's tenant routes with Acme's id: tenant callers get 404
// (the routes are hidden), and Acme stays active, on no plan, with no credit.
var adminTenant = fixture{
	create: func(e *apptest.Env, _ *apptest.Client) string { return e.Acme.ID.String() },
	body:   map[string]any{"amount": 100000, "reason": "probe", "plan_code": "walk"},
	unchanged: func(e *apptest.Env, owner *apptest.Client, _ string) bool {
		acct := owner.Do("GET", "/api/v1/billing/payment-method", nil).Want(200).JSON()
		me := owner.Do("GET", "/api/v1/me", nil).Want(200).JSON()
		org, _ := me["current_org"].(map[string]any)
		return acct["credit_balance"] == float64(0) && org["status"] == "active"
	},
}

var objectRoutes = map[string]fixture{
	"/api/v1/admin/tenants/:id/suspend":     adminTenant,
	"/api/v1/admin/tenants/:id/reactivate":  adminTenant,
	"/api/v1/admin/tenants/:id/credits":     adminTenant,
	"/api/v1/admin/tenants/:id/plan":        adminTenant,
	"/api/v1/admin/tenants/:id/impersonate": adminTenant,
	"/api/v1/admin/tenants/:id/terms":       adminTenant,
	"/api/v1/admin/vendors/:id/rate": {
		create: func(e *apptest.Env, _ *apptest.Client) string { return e.Northwind.ID.String() },
		body:   map[string]any{"currency": "CNY", "cost_per_seat_hour": 1, "hours_per_seat_day": 8},
		unchanged: func(e *apptest.Env, _ *apptest.Client, _ string) bool {
			var n int64
			ctx := e.App.DB.AsPlatform(e.Ctx, "test: vendor rates")
			err := e.App.DB.Run(ctx, func(tx *gorm.DB) error { return tx.Table("vendor_rates").Count(&n).Error })
			return err == nil && n == 0
		},
	},
	"/api/v1/billing/invoices/:id": {
		create: func(e *apptest.Env, owner *apptest.Client) string {
			ctx := tenant.WithOrg(e.Ctx, e.Acme)
			if _, err := e.App.Plans.Save(e.Ctx, billing.PlanInput{Code: "walk", Name: "Walk", Currency: "USD", BaseFee: 1000}); err != nil {
				e.T.Fatal(err)
			}
			start := time.Now().UTC().AddDate(0, -2, 0)
			if _, err := e.App.Plans.Subscribe(ctx, "walk", 0, start); err != nil {
				e.T.Fatal(err)
			}
			p, err := e.App.Invoicer.PeriodAt(ctx, start)
			if err != nil {
				e.T.Fatal(err)
			}
			inv, _, err := e.App.Invoicer.Finalize(ctx, p, time.Now())
			if err != nil {
				e.T.Fatal(err)
			}
			return inv.ID.String()
		},
		unchanged: func(e *apptest.Env, owner *apptest.Client, id string) bool {
			inv := owner.Do("GET", "/api/v1/billing/invoices/"+id, nil).Want(200).JSON()
			return inv["total"] == float64(1000) && inv["status"] == "open"
		},
	},
	"/api/v1/members/:user_id": {
		create: func(e *apptest.Env, _ *apptest.Client) string {
			id, err := e.App.UserID(e.Ctx, "agent1@acme.test")
			if err != nil {
				e.T.Fatal(err)
			}
			return id.String()
		},
		body: map[string]any{"role": "supervisor"},
		unchanged: func(e *apptest.Env, owner *apptest.Client, id string) bool {
			for _, m := range owner.Do("GET", "/api/v1/members", nil).Want(200).Items() {
				if m["user_id"] == id {
					return m["role"] == "agent" && m["status"] == "active"
				}
			}
			return false
		},
	},
	"/api/v1/invitations/:id": {
		create: func(e *apptest.Env, owner *apptest.Client) string {
			return owner.Do("POST", "/api/v1/invitations", map[string]any{"email": "walk@example.com", "role": "agent"}).Want(201).JSON()["id"].(string)
		},
		unchanged: func(e *apptest.Env, owner *apptest.Client, id string) bool {
			for _, i := range owner.Do("GET", "/api/v1/invitations", nil).Want(200).Items() {
				if i["id"] == id {
					return i["status"] == "pending"
				}
			}
			return false
		},
	},
	"/api/v1/api-keys/:id": {
		create: func(e *apptest.Env, owner *apptest.Client) string {
			return owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "walk", "role": "agent"}).Want(201).JSON()["id"].(string)
		},
		unchanged: func(e *apptest.Env, owner *apptest.Client, id string) bool {
			k := owner.Do("GET", "/api/v1/api-keys/"+id, nil).Want(200).JSON()
			return k["revoked_at"] == nil && k["name"] == "walk"
		},
	},
	"/api/v1/roles/:name": {
		create: func(e *apptest.Env, owner *apptest.Client) string {
			owner.Do("POST", "/api/v1/roles", map[string]any{"name": "walker", "permissions": []string{"members:read"}}).Want(201)
			return "walker"
		},
		body: map[string]any{"description": "changed", "permissions": []string{"api_keys:read"}},
		unchanged: func(e *apptest.Env, owner *apptest.Client, id string) bool {
			for _, r := range owner.Do("GET", "/api/v1/roles", nil).Want(200).Items() {
				if r["name"] == id {
					p := r["permissions"].([]any)
					return r["description"] == "" && len(p) == 1 && p[0] == "members:read"
				}
			}
			return false
		},
	},
}

// TestCrossTenantObjectAccessIs404 walks every route that takes an object id: Globex's owner,
// who holds every permission in Globex, gets 404 on each of Acme's objects, and the object is
// unchanged. The same again with Acme named in X-Switchboard-Org (Globex's owner is not a
// member), and with a Globex API key.
func TestCrossTenantObjectAccessIs404(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.New(t, d)
			acme := e.Login("owner@acme.test")
			globexOwner := e.Login("owner@globex.test")
			globexKey := globexOwner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "probe", "role": "tenant_admin"}).Want(201).JSON()["key"].(string)
			callers := map[string]*apptest.Client{
				"globex owner":           globexOwner,
				"globex owner as acme":   globexOwner.InOrg(e.Acme.ID),
				"globex admin key":       e.Key(globexKey),
				"globex key naming acme": e.Key(globexKey).InOrg(e.Acme.ID),
			}
			walked := 0
			made := map[string]string{} // one object per path, probed by every method
			for _, r := range e.App.Registry.Routes() {
				if r.Level != access.LevelPermission || !strings.Contains(r.Path, ":") {
					continue
				}
				fx, ok := objectRoutes[r.Path]
				if !ok {
					t.Errorf("route %s %s takes an id but has no isolation fixture in objectRoutes", r.Method, r.Path)
					continue
				}
				walked++
				id, ok := made[r.Path]
				if !ok {
					id = fx.create(e, acme)
					made[r.Path] = id
				}
				path := paramRE.ReplaceAllString(r.Path, id)
				for name, c := range callers {
					var body any
					if r.Method == "PATCH" || r.Method == "POST" || r.Method == "PUT" {
						body = fx.body
					}
					res := c.Do(r.Method, path, body)
					if res.Status != 404 {
						t.Errorf("%s: %s %s → %d, want 404: %s", name, r.Method, path, res.Status, res.Body)
					}
				}
				if !fx.unchanged(e, acme, id) {
					t.Errorf("%s %s: Acme's object changed after Globex's probes", r.Method, path)
				}
			}
			if walked < 7 {
				t.Fatalf("walked only %d id routes", walked)
			}
		})
	}
}

// TestVendorAgentOnlyInAllocatedTenant: Northwind's vagent1 holds the agent role in Acme's
// domain (the demo allocation) and nothing in Globex's.
func TestVendorAgentOnlyInAllocatedTenant(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.New(t, d)
			va := e.Login("vagent1@northwind.test")
			me := va.InOrg(e.Acme.ID).Do("GET", "/api/v1/me", nil).Want(200).JSON()
			if me["role"] != "agent" {
				t.Fatalf("role in Acme: %v", me["role"])
			}
			va.InOrg(e.Globex.ID).Do("GET", "/api/v1/me", nil).Want(404)
			va.InOrg(e.Globex.ID).Do("GET", "/api/v1/members", nil).Want(404)
			uid, _ := e.App.UserID(e.Ctx, "vagent1@northwind.test")
			enf := e.App.Access.Enforcer()
			// agents may not read members anywhere; check a permission agents could hold in
			// a custom role of Globex instead: Globex grants it to its own "helper" role.
			globex := e.Login("owner@globex.test")
			globex.Do("POST", "/api/v1/roles", map[string]any{"name": "helper", "permissions": []string{"members:read"}}).Want(201)
			acme := e.Login("owner@acme.test")
			acme.Do("POST", "/api/v1/roles", map[string]any{"name": "helper", "permissions": []string{"members:read"}}).Want(201)
			if enf.Enforce(uid.String(), e.Globex.ID.String(), "members", "read") {
				t.Fatal("vendor agent allowed in Globex")
			}
			// Give the vendor agent Acme's helper role: allowed in Acme, still not in Globex.
			acme.Do("PATCH", "/api/v1/members/"+uid.String(), map[string]any{"role": "helper"}).Want(200)
			if !enf.Enforce(uid.String(), e.Acme.ID.String(), "members", "read") {
				t.Fatal("vendor agent with Acme's helper role refused in Acme")
			}
			if enf.Enforce(uid.String(), e.Globex.ID.String(), "members", "read") {
				t.Fatal("Acme's grant leaked into Globex's domain")
			}
			va.InOrg(e.Acme.ID).Do("GET", "/api/v1/members", nil).Want(200)
			va.InOrg(e.Globex.ID).Do("GET", "/api/v1/members", nil).Want(404)
		})
	}
}

// TestSuspendedTenantIsReadOnly: a suspended tenant reads but does not write; reactivation
// restores writes; both moves are audited.
func TestSuspendedTenantIsReadOnly(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.New(t, d)
			owner := e.Login("owner@acme.test")
			if _, err := e.App.DB.Transition(e.Ctx, e.Acme.ID, tenant.StatusSuspended, "test: payment failed"); err != nil {
				t.Fatal(err)
			}
			owner.Do("GET", "/api/v1/members", nil).Want(200)
			res := owner.Do("POST", "/api/v1/invitations", map[string]any{"email": "x@example.com", "role": "agent"}).Want(403)
			if !strings.Contains(res.JSON()["type"].(string), "read-only") {
				t.Fatalf("problem type: %s", res.Body)
			}
			if _, err := e.App.DB.Transition(e.Ctx, e.Acme.ID, tenant.StatusTrial, "not allowed"); err == nil {
				t.Fatal("suspended → trial allowed")
			}
			if _, err := e.App.DB.Transition(e.Ctx, e.Acme.ID, tenant.StatusActive, "test: paid"); err != nil {
				t.Fatal(err)
			}
			owner.Do("POST", "/api/v1/invitations", map[string]any{"email": "x@example.com", "role": "agent"}).Want(201)
			events := owner.Do("GET", "/api/v1/audit-events?action=tenant.status_changed", nil).Want(200).Items()
			if len(events) != 2 {
				t.Fatalf("want 2 status changes audited, got %d", len(events))
			}
			// Globex is untouched.
			e.Login("owner@globex.test").Do("POST", "/api/v1/invitations", map[string]any{"email": "y@example.com", "role": "agent"}).Want(201)
		})
	}
}

// TestCustomRoleTakesEffect: a custom role's permissions apply at once, and its edits too.
func TestCustomRoleTakesEffect(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.New(t, d)
			owner := e.Login("owner@acme.test")
			owner.Do("POST", "/api/v1/roles", map[string]any{"name": "builtin_clash", "permissions": []string{"nope:read"}}).Want(422)
			owner.Do("POST", "/api/v1/roles", map[string]any{"name": "agent", "permissions": []string{"members:read"}}).Want(422)
			owner.Do("POST", "/api/v1/roles", map[string]any{"name": "auditor", "permissions": []string{"audit:read_all"}}).Want(422)
			owner.Do("POST", "/api/v1/roles", map[string]any{"name": "auditor", "description": "reads the log", "permissions": []string{"audit:read"}}).Want(201)
			owner.Do("POST", "/api/v1/roles", map[string]any{"name": "auditor", "permissions": []string{"audit:read"}}).Want(422)
			uid, _ := e.App.UserID(e.Ctx, "agent2@acme.test")
			agent := e.Login("agent2@acme.test")
			agent.Do("GET", "/api/v1/audit-events", nil).Want(403)
			owner.Do("PATCH", "/api/v1/members/"+uid.String(), map[string]any{"role": "auditor"}).Want(200)
			agent.Do("GET", "/api/v1/audit-events", nil).Want(200)
			owner.Do("DELETE", "/api/v1/roles/auditor", nil).Want(409) // held by agent2
			owner.Do("PATCH", "/api/v1/roles/auditor", map[string]any{"permissions": []string{"members:read"}}).Want(200)
			agent.Do("GET", "/api/v1/audit-events", nil).Want(403)
			agent.Do("GET", "/api/v1/members", nil).Want(200)
			// Globex has no such role.
			e.Login("owner@globex.test").Do("PATCH", "/api/v1/roles/auditor", map[string]any{"description": "x"}).Want(404)
		})
	}
}

// TestUserWithoutOrganisation: someone removed from their only organisation can still log in
// and read /me (with no current organisation), and every organisation route answers 404.
func TestUserWithoutOrganisation(t *testing.T) {
	e := apptest.New(t, tenant.SQLite)
	uid, _ := e.App.UserID(e.Ctx, "agent2@acme.test")
	e.Login("owner@acme.test").Do("DELETE", "/api/v1/members/"+uid.String(), nil).Want(204)
	c := e.Login("agent2@acme.test")
	me := c.Do("GET", "/api/v1/me", nil).Want(200).JSON()
	if me["current_org"] != nil || len(me["memberships"].([]any)) != 0 || len(me["permissions"].([]any)) != 0 {
		t.Fatalf("/me of a user without organisation: %v", me)
	}
	c.Do("GET", "/api/v1/members", nil).Want(404)
	c.InOrg(e.Acme.ID).Do("GET", "/api/v1/members", nil).Want(404)
}

// TestCreatePlatformAdmin: the CLI's path to a first administrator gives a working platform
// admin who reads every tenant's audit log, and the creation is itself audited.
func TestCreatePlatformAdmin(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.New(t, d)
			if err := e.App.CreatePlatformAdmin(e.Ctx, "ops@example.com", "Ops", "short"); err == nil {
				t.Fatal("short password accepted")
			}
			if err := e.App.CreatePlatformAdmin(e.Ctx, "Ops@Example.com", "Ops", "a-long-enough-password"); err != nil {
				t.Fatal(err)
			}
			ops := e.LoginWith("ops@example.com", "a-long-enough-password")
			me := ops.Do("GET", "/api/v1/me", nil).Want(200).JSON()
			if me["role"] != "platform_admin" {
				t.Fatalf("role: %v", me["role"])
			}
			events := ops.Do("GET", "/api/v1/audit-events?action=platform_admin.created", nil).Want(200).Items()
			if len(events) != 1 {
				t.Fatalf("creation audited %d times", len(events))
			}
			ops.Do("GET", "/api/v1/audit-events?tenant_id="+e.Acme.ID.String(), nil).Want(200)
		})
	}
}
