package billing_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Allowance alerts: in-app on GET /billing/usage at 80 % and 100 % of an allowance, and one mail
// to the owners per period, meter and threshold, however often the task runs.
func TestAllowanceAlerts(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			ctx := context.Background()
			if _, err := e.App.Plans.Save(ctx, billing.PlanInput{Code: "small", Name: "Small", Currency: "USD", BaseFee: 1000,
				Prices: []billing.Price{{Meter: "interactions", Model: "per_unit", UnitAmount: 2, Included: 100}}}); err != nil {
				t.Fatal(err)
			}
			acme := tenant.WithOrg(ctx, e.Acme)
			start := time.Now().UTC().Truncate(24 * time.Hour)
			if _, err := e.App.Plans.Subscribe(acme, "small", 0, start); err != nil {
				t.Fatal(err)
			}
			owner := e.Login("owner@acme.test")
			post := func(n int, key string) {
				owner.Do("POST", "/api/v1/usage-events", map[string]any{"events": []any{map[string]any{
					"meter": "interactions", "quantity": n, "idempotency_key": key, "occurred_at": time.Now().UTC().Add(-time.Second)}}}).Want(200)
			}
			alerts := func() string {
				out := ""
				for _, a := range owner.Do("GET", "/api/v1/billing/usage", nil).Want(200).JSON()["alerts"].([]any) {
					am := a.(map[string]any)
					out += fmt.Sprintf("%s:%v ", am["meter"], am["threshold"])
				}
				return out
			}
			notify := func() int {
				n, err := e.App.Invoicer.NotifyAlerts(ctx, time.Now().UTC())
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			post(79, "a")
			if a := alerts(); a != "" {
				t.Fatalf("79 of 100: alerts %q", a)
			}
			if n := notify(); n != 0 {
				t.Fatalf("79 of 100: %d mails", n)
			}
			post(1, "b")
			if a := alerts(); a != "interactions:80 " {
				t.Fatalf("80 of 100: alerts %q", a)
			}
			if n := notify(); n != 1 {
				t.Fatalf("80 of 100: %d mails", n)
			}
			if n := notify(); n != 0 {
				t.Fatalf("again: %d mails", n)
			}
			post(20, "c")
			if a := alerts(); a != "interactions:100 " {
				t.Fatalf("100 of 100: alerts %q", a)
			}
			if n := notify(); n != 1 {
				t.Fatalf("100 of 100: %d mails", n)
			}
			if a := e.Login("owner@globex.test").Do("GET", "/api/v1/billing/usage", nil).Want(200).JSON()["alerts"].([]any); len(a) != 0 {
				t.Fatalf("Globex alerts: %v", a)
			}
		})
	}
}
