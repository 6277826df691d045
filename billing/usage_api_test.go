package billing_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/tenant"
)

func ledgerCount(t *testing.T, e *apptest.Env, org tenant.Org) int {
	t.Helper()
	var n int64
	ctx := tenant.WithOrg(context.Background(), org)
	if err := e.App.DB.Run(ctx, func(tx *gorm.DB) error { return tx.Model(&billing.UsageEvent{}).Count(&n).Error }); err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// A bad event refuses the whole batch with 422 naming it; nothing is written.
func TestUsageEventsBadInput(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			c := e.Login("owner@acme.test")
			now := time.Now().UTC()
			good := map[string]any{"meter": "interactions", "quantity": 1, "idempotency_key": "ok-1", "occurred_at": now.Add(-time.Minute)}
			with := func(k string, v any) map[string]any {
				m := map[string]any{}
				for kk, vv := range good {
					m[kk] = vv
				}
				m["idempotency_key"] = "bad-" + k
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
				return m
			}
			many := make([]map[string]any, billing.MaxBatch+1)
			for i := range many {
				many[i] = map[string]any{"meter": "interactions", "quantity": 1, "idempotency_key": fmt.Sprint("k", i), "occurred_at": now}
			}
			for _, tc := range []struct {
				name   string
				body   any
				status int
				field  string
			}{
				{"unknown meter", map[string]any{"events": []any{good, with("meter", "teleportations")}}, 422, "events[1].meter"},
				{"missing meter", map[string]any{"events": []any{good, with("meter", nil)}}, 422, "events[1].meter"},
				{"negative quantity", map[string]any{"events": []any{with("quantity", -1), good}}, 422, "events[0].quantity"},
				{"fractional quantity", map[string]any{"events": []any{good, with("quantity", 1.5)}}, 422, "events[1].quantity"},
				{"missing key", map[string]any{"events": []any{good, with("idempotency_key", "")}}, 422, "events[1].idempotency_key"},
				{"key too long", map[string]any{"events": []any{good, with("idempotency_key", strings.Repeat("k", 256))}}, 422, "events[1].idempotency_key"},
				{"no time", map[string]any{"events": []any{good, with("occurred_at", nil)}}, 422, "events[1].occurred_at"},
				{"future", map[string]any{"events": []any{good, with("occurred_at", now.Add(time.Hour))}}, 422, "events[1].occurred_at"},
				{"bad time", map[string]any{"events": []any{good, with("occurred_at", "yesterday")}}, 422, "events[1]"},
				{"distinct meter without its subject", map[string]any{"events": []any{good, with("meter", "conversations")}}, 422, "events[1].dimensions.conversation_id"},
				{"bad seat kind", map[string]any{"events": []any{good, with("dimensions", map[string]string{"seat_kind": "borrowed"})}}, 422, "events[1].dimensions.seat_kind"},
				{"empty batch", map[string]any{"events": []any{}}, 422, "events"},
				{"no events", map[string]any{}, 422, "events"},
				{"too many", map[string]any{"events": many}, 422, "events"},
				{"unknown field", map[string]any{"events": []any{good}, "extra": 1}, 400, "extra"},
				{"unknown event field", map[string]any{"events": []any{with("price", 3)}}, 422, "events[0].price"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					before := ledgerCount(t, e, e.Acme)
					res := c.Do("POST", "/api/v1/usage-events", tc.body).Want(tc.status)
					if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
						t.Errorf("content type %q", ct)
					}
					if !strings.Contains(string(res.Body), `"field":"`+tc.field) {
						t.Errorf("problem does not name %s: %s", tc.field, res.Body)
					}
					if after := ledgerCount(t, e, e.Acme); after != before {
						t.Errorf("ledger went from %d to %d events", before, after)
					}
				})
			}
		})
	}
}

// Usage is the tenant's own: the same key counts once per tenant and in each, Globex never sees
// Acme's events or totals, roles without the permission are refused, and the current period's
// totals follow the ledger at once.
func TestUsageIsolationAndPermissions(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			acme, globex := e.Login("owner@acme.test"), e.Login("owner@globex.test")
			at := time.Now().UTC().Add(-time.Minute)
			ev := func(key string, q int) map[string]any {
				return map[string]any{"events": []any{
					map[string]any{"meter": "interactions", "quantity": q, "idempotency_key": key, "occurred_at": at, "dimensions": map[string]string{"channel": "email"}},
					map[string]any{"meter": "conversations", "quantity": 1, "idempotency_key": key + "-c", "occurred_at": at, "dimensions": map[string]string{"conversation_id": "c-1"}},
				}}
			}
			r := acme.Do("POST", "/api/v1/usage-events", ev("same-key", 3)).Want(200).JSON()
			if r["accepted"].(float64) != 2 || r["duplicates"].(float64) != 0 {
				t.Fatalf("first post: %v", r)
			}
			r = acme.Do("POST", "/api/v1/usage-events", ev("same-key", 3)).Want(200).JSON()
			if r["accepted"].(float64) != 0 || r["duplicates"].(float64) != 2 {
				t.Fatalf("repeat: %v", r)
			}
			globex.Do("POST", "/api/v1/usage-events", ev("same-key", 5)).Want(200)

			quantity := func(c *apptest.Client, meter string) float64 {
				for _, m := range c.Do("GET", "/api/v1/billing/usage", nil).Want(200).JSON()["meters"].([]any) {
					if mm := m.(map[string]any); mm["meter"] == meter {
						return mm["quantity"].(float64)
					}
				}
				t.Fatalf("meter %s missing", meter)
				return 0
			}
			if q := quantity(acme, "interactions"); q != 3 {
				t.Errorf("Acme interactions %v, want 3", q)
			}
			if q := quantity(globex, "interactions"); q != 5 {
				t.Errorf("Globex interactions %v, want 5", q)
			}
			if q := quantity(acme, "conversations"); q != 1 {
				t.Errorf("Acme conversations %v, want 1", q)
			}
			items := globex.Do("GET", "/api/v1/usage-events", nil).Want(200).Items()
			if len(items) != 2 {
				t.Fatalf("Globex sees %d events, want its 2", len(items))
			}
			for _, it := range items {
				if it["quantity"].(float64) == 3 {
					t.Errorf("Globex sees Acme's event %v", it)
				}
			}
			// Rollups are per tenant too.
			if _, err := e.App.Ledger.RollupDirty(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			series := globex.Do("GET", "/api/v1/billing/usage?granularity=day", nil).Want(200).Items()
			for _, s := range series {
				if s["meter"] == "interactions" && s["quantity"].(float64) != 5 {
					t.Errorf("Globex daily rollup %v", s)
				}
			}
			globex.Do("GET", "/api/v1/billing/usage?granularity=week", nil).Want(422)
			globex.Do("GET", "/api/v1/billing/usage?granularity=hour&from=2020-01-01T00:00:00Z", nil).Want(422)
			globex.Do("GET", "/api/v1/usage-events?meter=nope", nil).Want(422)

			// An agent may neither post nor read usage.
			agent := e.Login("agent1@acme.test")
			agent.Do("POST", "/api/v1/usage-events", ev("agent", 1)).Want(403)
			agent.Do("GET", "/api/v1/billing/usage", nil).Want(403)
			e.Anon().Do("POST", "/api/v1/usage-events", ev("anon", 1)).Want(401)
		})
	}
}

// Record joins the caller's transaction: when the business change rolls back, so does its usage.
func TestRecordJoinsTheCallersTransaction(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			ctx := tenant.WithOrg(context.Background(), e.Acme)
			before := ledgerCount(t, e, e.Acme)
			boom := fmt.Errorf("business change failed")
			err := e.App.DB.Tx(ctx, func(ctx context.Context) error {
				if _, err := e.App.Ledger.Record(ctx, "test", []billing.Event{{Meter: "interactions", Quantity: 1, IdempotencyKey: "tx-1", OccurredAt: time.Now()}}); err != nil {
					return err
				}
				return boom
			})
			if err != boom {
				t.Fatalf("err = %v", err)
			}
			if after := ledgerCount(t, e, e.Acme); after != before {
				t.Fatalf("usage survived the rollback: %d → %d", before, after)
			}
			if _, err := e.App.Ledger.Record(context.Background(), "test", []billing.Event{{Meter: "interactions", Quantity: 1, IdempotencyKey: "x", OccurredAt: time.Now()}}); err == nil {
				t.Fatal("Record without a tenant succeeded")
			}
		})
	}
}
