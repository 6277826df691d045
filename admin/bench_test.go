package admin_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// BenchmarkBillingRun rates one month for 1,000 tenants (target: under 60 s). Every tenant is on
// a plan with an allowance, graduated tiers and seat prices since 12 months ago, with 10 usage
// events a month over four meters.
//
//	preview    Invoicer.Run without storing: every tenant's draft rated from the ledger
//	finalize   Invoicer.Run storing the invoices; each iteration closes the next month, so run it
//	           with -benchtime up to 12x
func BenchmarkBillingRun(b *testing.B) {
	const tenants = 1000
	for _, d := range []tenant.Dialect{tenant.SQLite, tenant.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			if d == tenant.Postgres && os.Getenv("TEST_DATABASE_URL") == "" {
				b.Skip("TEST_DATABASE_URL not set: PostgreSQL benchmark skipped")
			}
			e := apptest.New(b, d, apptest.Options{NoDemo: true})
			ctx := context.Background()
			if _, err := e.App.Plans.Save(ctx, billing.PlanInput{Code: "bench", Name: "Bench", Currency: "USD", BaseFee: 49900, Prices: []billing.Price{
				{Meter: "interactions", Model: "per_unit", UnitAmount: 5, Included: 500},
				{Meter: "voice_minutes", Model: "graduated", Tiers: []billing.Tier{{UpTo: 100, UnitAmount: 20}, {UnitAmount: 10}}},
				{Meter: "seat_days_own", Model: "per_unit", UnitAmount: 300},
				{Meter: "seat_days_managed", Model: "volume", Tiers: []billing.Tier{{UpTo: 100, UnitAmount: 900}, {UnitAmount: 800}}},
			}}); err != nil {
				b.Fatal(err)
			}
			now := time.Now().UTC()
			start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -12, 0)
			orgs := make([]tenant.Org, tenants)
			for i := range orgs {
				orgs[i] = tenant.Org{ID: ids.New(), Kind: tenant.KindTenant, Name: fmt.Sprintf("Bench %04d", i), Slug: fmt.Sprintf("bench-%04d", i),
					Status: tenant.StatusActive, Locale: "en", StatusChangedAt: now, CreatedAt: now, UpdatedAt: now}
			}
			pctx := e.App.DB.AsPlatform(ctx, "benchmark tenants")
			if err := e.App.DB.Global(pctx, func(tx *gorm.DB) error { return tx.CreateInBatches(orgs, 200).Error }); err != nil {
				b.Fatal(err)
			}
			meters := []string{"interactions", "voice_minutes", "seat_days_own", "seat_days_managed"}
			for i, o := range orgs {
				tctx := tenant.WithOrg(ctx, o)
				if _, err := e.App.Plans.Subscribe(tctx, "bench", 0, start); err != nil {
					b.Fatal(err)
				}
				var evs []billing.Event
				for m := range 12 {
					for k := range 10 {
						evs = append(evs, billing.Event{Meter: meters[k%4], Quantity: int64(50 + (i+k)%90), IdempotencyKey: fmt.Sprintf("%d-%d", m, k),
							OccurredAt: start.AddDate(0, m, 0).Add(time.Duration(k+1) * 37 * time.Hour)})
					}
				}
				if _, err := e.App.Ledger.Record(tctx, "bench", evs); err != nil {
					b.Fatal(err)
				}
			}
			check := func(items []billing.RunItem, err error) {
				if err != nil {
					b.Fatal(err)
				}
				if len(items) != tenants {
					b.Fatalf("%d tenants billed, want %d", len(items), tenants)
				}
				for _, it := range items {
					if it.Error != "" {
						b.Fatal(it.Error)
					}
				}
			}
			b.Run("preview", func(b *testing.B) {
				for b.Loop() {
					check(e.App.Invoicer.Run(ctx, start.Format("2006-01"), false, now))
				}
			})
			b.Run("finalize", func(b *testing.B) {
				i := 0
				for b.Loop() {
					if i == 12 {
						b.Fatal("only 12 closed months: use -benchtime 12x or less")
					}
					check(e.App.Invoicer.Run(ctx, start.AddDate(0, i, 0).Format("2006-01"), true, now))
					i++
				}
			})
		})
	}
}
