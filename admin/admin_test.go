package admin_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-cloud/switchboard/app/apptest"
)

// Every /api/v1/admin route answers 404 to tenant roles (owner, admin API key, agent, analyst
// custom role) and to a vendor manager, and is reachable by the platform admin.
func TestAdminRoutesHiddenFromTenants(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			owner := e.Login("owner@acme.test")
			key := owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "probe", "role": "tenant_admin"}).Want(201).JSON()["key"].(string)
			tenantCallers := map[string]*apptest.Client{
				"acme owner":        owner,
				"acme admin key":    e.Key(key),
				"acme agent":        e.Login("agent1@acme.test"),
				"globex owner":      e.Login("owner@globex.test"),
				"vendor manager":    e.Login("manager@northwind.test"),
				"owner in platform": owner.InOrg(e.Platform.ID),
			}
			platform := e.Login("admin@switchboard.test").InOrg(e.Platform.ID)
			n := 0
			for _, r := range e.App.Registry.Routes() {
				if !strings.HasPrefix(r.Path, "/api/v1/admin") {
					continue
				}
				n++
				path := strings.ReplaceAll(r.Path, ":id", e.Acme.ID.String())
				for name, c := range tenantCallers {
					if res := c.Do(r.Method, path, map[string]any{}); res.Status != 404 {
						t.Errorf("%s: %s %s → %d, want 404", name, r.Method, path, res.Status)
					}
				}
				if !r.Hidden {
					t.Errorf("%s %s is not hidden", r.Method, r.Path)
				}
			}
			if n < 9 {
				t.Fatalf("only %d admin routes", n)
			}
			platform.Do("GET", "/api/v1/admin/tenants", nil).Want(200)
			platform.Do("GET", "/api/v1/admin/plans", nil).Want(200)
		})
	}
}

// TestBillingFlow: the platform admin creates a plan, moves Acme onto it, runs billing (preview,
// then finalise), and Acme's owner sees the same invoice and its usage; a late event becomes an
// adjustment on the next invoice; Globex sees none of it; a second run bills nothing twice.
func TestBillingFlow(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			admin := e.Login("admin@switchboard.test").InOrg(e.Platform.ID)
			owner, globex := e.Login("owner@acme.test"), e.Login("owner@globex.test")

			plan := admin.Do("POST", "/api/v1/admin/plans", map[string]any{
				"code": "growth", "name": "Growth", "currency": "CNY", "base_fee": 99900,
				"prices": []any{
					map[string]any{"meter": "interactions", "model": "per_unit", "unit_amount": 5, "included": 1000},
					map[string]any{"meter": "voice_minutes", "model": "graduated", "tiers": []any{
						map[string]any{"up_to": 100, "unit_amount": 20}, map[string]any{"up_to": 0, "unit_amount": 10}}},
				},
			}).Want(201).JSON()
			if plan["version"] != float64(1) {
				t.Fatalf("plan: %v", plan)
			}
			admin.Do("POST", "/api/v1/admin/plans", map[string]any{"code": "bad", "name": "Bad", "currency": "CNY",
				"prices": []any{map[string]any{"meter": "teleports", "model": "per_unit", "unit_amount": 1}}}).Want(422)

			// Acme on Growth from the start of a day two months ago: two closed periods.
			start := time.Now().UTC().AddDate(0, -2, -1).Truncate(24 * time.Hour)
			if start.Day() > 28 {
				start = start.AddDate(0, 0, -3) // keep the anchor a day every month has
			}
			admin.Do("PUT", "/api/v1/admin/tenants/"+e.Acme.ID.String()+"/plan", map[string]any{"plan_code": "growth", "effective_at": start}).Want(200)
			p1End := start.AddDate(0, 1, 0)

			// Usage in the first period: 1,250 interactions, 130 voice minutes.
			events := []any{}
			for i := range 25 {
				events = append(events, map[string]any{"meter": "interactions", "quantity": 50, "idempotency_key": fmt.Sprint("i", i), "occurred_at": start.Add(time.Duration(i+1) * time.Hour)})
			}
			events = append(events, map[string]any{"meter": "voice_minutes", "quantity": 130, "idempotency_key": "v1", "occurred_at": start.Add(30 * time.Hour)})
			owner.Do("POST", "/api/v1/usage-events", map[string]any{"events": events}).Want(200)

			// 99,900 base + (1,250 − 1,000) × 5 = 1,250 + 100 × 20 + 30 × 10 = 2,300 → 103,450.
			const want = 99900 + 1250 + 2300
			month := start.Format("2006-01")
			preview := admin.Do("POST", "/api/v1/admin/billing-runs", map[string]any{"period": month}).Want(200).JSON()
			items := preview["items"].([]any)
			if len(items) != 1 {
				t.Fatalf("preview items: %v", items)
			}
			if tot := items[0].(map[string]any)["invoice"].(map[string]any)["total"]; tot != float64(want) {
				t.Fatalf("preview total %v, want %d", tot, want)
			}
			if got := owner.Do("GET", "/api/v1/billing/invoices", nil).Want(200).Items(); len(got) != 0 {
				t.Fatalf("a preview stored invoices: %v", got)
			}
			run := admin.Do("POST", "/api/v1/admin/billing-runs", map[string]any{"period": month, "finalize": true}).Want(200).JSON()
			inv := run["items"].([]any)[0].(map[string]any)["invoice"].(map[string]any)
			number, id := inv["number"].(string), inv["id"].(string)
			if inv["total"] != float64(want) || !strings.HasPrefix(number, "ACME-") || inv["push_status"] != "pending" {
				t.Fatalf("finalised: %v", inv)
			}
			// Again: the same invoice, nothing new.
			again := admin.Do("POST", "/api/v1/admin/billing-runs", map[string]any{"period": month, "finalize": true}).Want(200).JSON()
			if it := again["items"].([]any)[0].(map[string]any); it["created"] != false || it["invoice"].(map[string]any)["id"] != id {
				t.Fatalf("second run: %v", it)
			}

			// The owner sees the same invoice, printable in both languages.
			list := owner.Do("GET", "/api/v1/billing/invoices", nil).Want(200).Items()
			if len(list) != 1 || list[0]["number"] != number || list[0]["total"] != float64(want) {
				t.Fatalf("owner's invoices: %v", list)
			}
			html := string(owner.Do("GET", "/api/v1/billing/invoices/"+id+"?format=html&lang=zh-CN", nil).Want(200).Body)
			if !strings.Contains(html, "发票") || !strings.Contains(html, number) || !strings.Contains(html, "1034.50 CNY") {
				t.Fatalf("zh-CN invoice: %s", html)
			}
			if en := string(owner.Do("GET", "/api/v1/billing/invoices/"+id+"?format=html&lang=en", nil).Want(200).Body); !strings.Contains(en, "Total due") {
				t.Fatalf("en invoice: %s", en)
			}
			// Tenants see the latest version of each plan, and may move onto one themselves.
			admin.Do("POST", "/api/v1/admin/plans", map[string]any{"code": "growth", "name": "Growth v2", "currency": "CNY", "base_fee": 129900}).Want(201)
			plans := owner.Do("GET", "/api/v1/billing/plans", nil).Want(200).Items()
			if len(plans) != 1 || plans[0]["version"] != float64(2) {
				t.Fatalf("plans for tenants: %v", plans)
			}
			// Globex sees nothing of Acme's billing.
			if got := globex.Do("GET", "/api/v1/billing/invoices", nil).Want(200).Items(); len(got) != 0 {
				t.Fatalf("Globex sees invoices: %v", got)
			}
			globex.Do("GET", "/api/v1/billing/invoices/"+id, nil).Want(404)

			// A late event for the closed first period: the second period's invoice carries it as
			// an adjustment (200 × 5 = 1,000), after its own base fee.
			owner.Do("POST", "/api/v1/usage-events", map[string]any{"events": []any{
				map[string]any{"meter": "interactions", "quantity": 200, "idempotency_key": "late-1", "occurred_at": start.Add(48 * time.Hour)}}}).Want(200)
			run2 := admin.Do("POST", "/api/v1/admin/billing-runs", map[string]any{"period": p1End.Format("2006-01"), "finalize": true}).Want(200).JSON()
			inv2 := run2["items"].([]any)[0].(map[string]any)["invoice"].(map[string]any)
			if inv2["total"] != float64(99900+1000) {
				t.Fatalf("second invoice total %v, want 100900: %v", inv2["total"], inv2["lines"])
			}
			adj := false
			for _, l := range inv2["lines"].([]any) {
				if lm := l.(map[string]any); lm["kind"] == "adjustment" && lm["amount"] == float64(1000) {
					adj = true
				}
			}
			if !adj {
				t.Fatalf("no adjustment line: %v", inv2["lines"])
			}
			// The live draft of the open period shows the base fee already.
			cur := owner.Do("GET", "/api/v1/billing/invoices/current", nil).Want(200).JSON()
			if cur["draft"] != true || cur["subtotal"].(float64) < 99900 {
				t.Fatalf("current draft: %v", cur)
			}
			globex.Do("GET", "/api/v1/billing/invoices/current", nil).Want(404)

			// Tenants list for the platform admin.
			rows := admin.Do("GET", "/api/v1/admin/tenants", nil).Want(200).Items()
			found := false
			for _, r := range rows {
				if r["slug"] == "acme" && r["plan"] == "growth@1" {
					found = true
				}
			}
			if !found {
				t.Fatalf("tenants: %v", rows)
			}
			// Credit granted by the admin is used by the next invoice.
			admin.Do("POST", "/api/v1/admin/tenants/"+e.Acme.ID.String()+"/credits", map[string]any{"amount": 500, "reason": "goodwill"}).Want(200)
			if a := owner.Do("GET", "/api/v1/billing/payment-method", nil).Want(200).JSON(); a["credit_balance"] != float64(500) {
				t.Fatalf("credit: %v", a)
			}
			admin.Do("POST", "/api/v1/admin/tenants/"+e.Acme.ID.String()+"/suspend", nil).Want(200)
			owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "x", "role": "agent"}).Want(403)
			admin.Do("POST", "/api/v1/admin/tenants/"+e.Acme.ID.String()+"/reactivate", nil).Want(200)
			owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "x", "role": "agent"}).Want(201)

			// Terms: 6 % tax and a 10 % coupon. The open period's draft: 99,900 base; discount
			// 9,990; tax (99,900 − 9,990) × 6 % = 5,394.6 → 5,395; the 500 credit; total 94,805.
			res := admin.Do("PUT", "/api/v1/admin/tenants/"+e.Acme.ID.String()+"/terms", map[string]any{"tax_rate_bp": 600,
				"coupons": []any{map[string]any{"code": "BOTH", "percent_off_bp": 1000, "amount_off": 5}}}).Want(422)
			if !strings.Contains(string(res.Body), `"field":"coupons[0]"`) {
				t.Fatalf("bad coupon: %s", res.Body)
			}
			admin.Do("PUT", "/api/v1/admin/tenants/"+e.Acme.ID.String()+"/terms", map[string]any{"tax_rate_bp": 600,
				"coupons": []any{map[string]any{"code": "WELCOME", "percent_off_bp": 1000}}}).Want(200)
			draft := owner.Do("GET", "/api/v1/billing/invoices/current", nil).Want(200).JSON()
			if draft["subtotal"] != float64(99900) || draft["discount"] != float64(9990) || draft["tax"] != float64(5395) ||
				draft["credit_applied"] != float64(500) || draft["total"] != float64(94805) {
				t.Fatalf("draft with terms: subtotal %v discount %v tax %v credit %v total %v", draft["subtotal"], draft["discount"], draft["tax"], draft["credit_applied"], draft["total"])
			}
		})
	}
}

// TestRevenueAndMargin: Acme pays 300.00 CNY per managed seat-day; Northwind's agents cost
// 25.00 CNY an hour, 8 hours a seat-day. vagent1 works 10 seat-days and vagent2 5 in Acme's first
// period: billed 15 × 30,000 = 450,000; cost 15 × 8 × 2,500 = 300,000; margin 150,000, split by
// agent 300,000/200,000/100,000 and 150,000/100,000/50,000.
func TestRevenueAndMargin(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			admin := e.Login("admin@switchboard.test").InOrg(e.Platform.ID)
			owner := e.Login("owner@acme.test")
			admin.Do("POST", "/api/v1/admin/plans", map[string]any{"code": "managed", "name": "Managed", "currency": "CNY", "base_fee": 100000,
				"prices": []any{map[string]any{"meter": "seat_days_managed", "model": "per_unit", "unit_amount": 30000}}}).Want(201)
			start := time.Now().UTC().AddDate(0, -2, -1).Truncate(24 * time.Hour)
			if start.Day() > 28 {
				start = start.AddDate(0, 0, -3)
			}
			admin.Do("PUT", "/api/v1/admin/tenants/"+e.Acme.ID.String()+"/plan", map[string]any{"plan_code": "managed", "effective_at": start}).Want(200)
			admin.Do("PUT", "/api/v1/admin/vendors/"+e.Northwind.ID.String()+"/rate", map[string]any{"currency": "CNY", "cost_per_seat_hour": 2500, "hours_per_seat_day": 8}).Want(200)
			admin.Do("PUT", "/api/v1/admin/vendors/"+e.Acme.ID.String()+"/rate", map[string]any{"currency": "CNY", "cost_per_seat_hour": 1, "hours_per_seat_day": 8}).Want(404)
			admin.Do("PUT", "/api/v1/admin/vendors/"+e.Northwind.ID.String()+"/rate", map[string]any{"currency": "cny", "cost_per_seat_hour": -1, "hours_per_seat_day": 30}).Want(422)
			var events []any
			for i := range 15 {
				agent := "vagent1"
				if i >= 10 {
					agent = "vagent2"
				}
				events = append(events, map[string]any{"meter": "seat_days_managed", "quantity": 1, "idempotency_key": fmt.Sprint("seat-", i),
					"occurred_at": start.Add(time.Duration(i+1) * 24 * time.Hour),
					"dimensions":  map[string]string{"seat_kind": "managed", "vendor_id": e.Northwind.ID.String(), "agent_id": agent}})
			}
			owner.Do("POST", "/api/v1/usage-events", map[string]any{"events": events}).Want(200)
			admin.Do("POST", "/api/v1/admin/billing-runs", map[string]any{"period": start.Format("2006-01"), "finalize": true}).Want(200)

			rev := admin.Do("GET", "/api/v1/admin/revenue?period="+start.Format("2006-01"), nil).Want(200).JSON()
			if rev["mrr"].(map[string]any)["CNY"] != float64(100000) || rev["invoiced"].(map[string]any)["CNY"] != float64(100000+450000) {
				t.Fatalf("mrr/invoiced: %v %v", rev["mrr"], rev["invoiced"])
			}
			check := func(key string, want [][4]float64) {
				rows := rev[key].([]any)
				if len(rows) != len(want) {
					t.Fatalf("%s: %v", key, rows)
				}
				for i, w := range want {
					r := rows[i].(map[string]any)
					if r["seat_days"] != w[0] || r["billed"] != w[1] || r["cost"] != w[2] || r["margin"] != w[3] {
						t.Errorf("%s[%d] = %v, want %v", key, i, r, w)
					}
				}
			}
			check("margin_by_tenant", [][4]float64{{15, 450000, 300000, 150000}})
			check("margin_by_vendor", [][4]float64{{15, 450000, 300000, 150000}})
			check("margin_by_agent", [][4]float64{{10, 300000, 200000, 100000}, {5, 150000, 100000, 50000}})
			seatDays := 0.0
			for _, u := range rev["usage"].([]any) {
				if um := u.(map[string]any); um["meter"] == "seat_days_managed" {
					seatDays = um["quantity"].(float64)
				}
			}
			if seatDays == 0 {
				t.Errorf("usage by meter: %v", rev["usage"])
			}
			admin.Do("GET", "/api/v1/admin/revenue?period=last-month", nil).Want(422)
			owner.Do("GET", "/api/v1/admin/revenue", nil).Want(404)
		})
	}
}

// Read-only impersonation: the platform admin reads Acme's console with the header, writes are
// refused, the start is in Acme's audit log, /me says so; nobody else can use the header.
func TestImpersonation(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			admin := e.Login("admin@switchboard.test").InOrg(e.Platform.ID)
			owner := e.Login("owner@acme.test")
			acme := e.Acme.ID.String()
			admin.Do("POST", "/api/v1/admin/tenants/"+acme+"/impersonate", nil).Want(200)
			if ev := owner.Do("GET", "/api/v1/audit-events?action=admin.impersonation_started", nil).Want(200).Items(); len(ev) != 1 || ev[0]["actor_email"] != "admin@switchboard.test" {
				t.Fatalf("audit: %v", ev)
			}
			h := []string{"X-Switchboard-Impersonate", acme}
			me := admin.Do("GET", "/api/v1/me", nil, h...).Want(200).JSON()
			if me["impersonating"] != true || me["current_org"].(map[string]any)["id"] != acme {
				t.Fatalf("me: %v", me)
			}
			perms := fmt.Sprint(me["permissions"])
			if !strings.Contains(perms, "members:read") || !strings.Contains(perms, "billing:read") || strings.Contains(perms, "members:write") || strings.Contains(perms, "tenants:") {
				t.Fatalf("permissions while impersonating: %s", perms)
			}
			members := admin.Do("GET", "/api/v1/members", nil, h...).Want(200).Items()
			if len(members) < 3 {
				t.Fatalf("members: %v", members)
			}
			admin.Do("POST", "/api/v1/api-keys", map[string]any{"name": "x", "role": "agent"}, h...).Want(403)
			admin.Do("DELETE", "/api/v1/members/"+members[0]["user_id"].(string), nil, h...).Want(403)
			admin.Do("GET", "/api/v1/admin/tenants", nil, h...).Want(404)
			// Tenants cannot impersonate, not even their own organisation.
			owner.Do("GET", "/api/v1/members", nil, "X-Switchboard-Impersonate", e.Globex.ID.String()).Want(404)
			owner.Do("GET", "/api/v1/members", nil, "X-Switchboard-Impersonate", acme).Want(404)
			e.Login("owner@globex.test").Do("GET", "/api/v1/members", nil, h...).Want(404)
			admin.Do("GET", "/api/v1/members", nil, "X-Switchboard-Impersonate", e.Northwind.ID.String()).Want(404)
			admin.Do("GET", "/api/v1/members", nil, "X-Switchboard-Impersonate", "not-a-uuid").Want(404)
		})
	}
}

// Add-ons: a plan offers them, the admin gives one to Acme, and the draft carries its prorated
// fee and the usage it prices: 10,000 base + 3,000 add-on + 10 voice minutes × 50 = 13,500.
func TestAddOns(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			admin := e.Login("admin@switchboard.test").InOrg(e.Platform.ID)
			owner := e.Login("owner@acme.test")
			acme := "/api/v1/admin/tenants/" + e.Acme.ID.String()
			admin.Do("POST", "/api/v1/admin/plans", map[string]any{"code": "dup", "name": "Dup", "currency": "CNY",
				"prices":  []any{map[string]any{"meter": "voice_minutes", "model": "per_unit", "unit_amount": 1}},
				"add_ons": []any{map[string]any{"code": "voice", "name": "Voice", "fee": 1, "prices": []any{map[string]any{"meter": "voice_minutes", "model": "per_unit", "unit_amount": 2}}}},
			}).Want(422)
			plan := admin.Do("POST", "/api/v1/admin/plans", map[string]any{"code": "base", "name": "Base", "currency": "CNY", "base_fee": 10000,
				"add_ons": []any{map[string]any{"code": "voice", "name": "Voice", "fee": 3000,
					"prices": []any{map[string]any{"meter": "voice_minutes", "model": "per_unit", "unit_amount": 50}}}},
			}).Want(201).JSON()
			if len(plan["add_ons"].([]any)) != 1 {
				t.Fatalf("plan: %v", plan)
			}
			admin.Do("PUT", acme+"/terms", map[string]any{"add_ons": []string{"voice"}}).Want(422) // no plan yet
			start := time.Now().UTC().Truncate(24 * time.Hour)
			admin.Do("PUT", acme+"/plan", map[string]any{"plan_code": "base", "effective_at": start}).Want(200)
			admin.Do("PUT", acme+"/terms", map[string]any{"add_ons": []string{"fax"}}).Want(422)
			admin.Do("PUT", acme+"/terms", map[string]any{"add_ons": []string{"voice"}}).Want(200)
			owner.Do("POST", "/api/v1/usage-events", map[string]any{"events": []any{map[string]any{
				"meter": "voice_minutes", "quantity": 10, "idempotency_key": "v", "occurred_at": time.Now().UTC().Add(-time.Second)}}}).Want(200)
			draft := owner.Do("GET", "/api/v1/billing/invoices/current", nil).Want(200).JSON()
			kinds := ""
			for _, l := range draft["lines"].([]any) {
				kinds += fmt.Sprint(l.(map[string]any)["kind"], "=", l.(map[string]any)["amount"], " ")
			}
			if draft["total"] != float64(13500) || !strings.Contains(kinds, "addon=3000") || !strings.Contains(kinds, "usage=500") {
				t.Fatalf("draft with the add-on: total %v, lines %s", draft["total"], kinds)
			}
		})
	}
}
