package billing_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"encoding/json"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// BenchmarkIngest measures usage ingest in batches of 1,000 new events (each with its own
// idempotency key, so every one is checked against the unique index and written), from
// GOMAXPROCS goroutines at once. One op is one batch; events/s is the figure the targets name
// (≥ 20,000/s on PostgreSQL, ≥ 5,000/s on SQLite).
//
//	ledger  billing.Ledger.Record, as modules call it
//	api     POST /api/v1/usage-events with an API key: JSON, validation and the HTTP stack too
func BenchmarkIngest(b *testing.B) {
	for _, d := range []tenant.Dialect{tenant.SQLite, tenant.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			if d == tenant.Postgres && os.Getenv("TEST_DATABASE_URL") == "" {
				b.Skip("TEST_DATABASE_URL not set: PostgreSQL benchmark skipped")
			}
			e := apptest.New(b, d, unlimited)
			key := e.Login("owner@acme.test").Do("POST", "/api/v1/api-keys", map[string]any{"name": "bench", "role": "tenant_admin"}).Want(201).JSON()["key"].(string)
			var seq atomic.Int64
			batch := func() []billing.Event {
				n := seq.Add(1)
				at := time.Now().UTC().Add(-time.Hour)
				evs := make([]billing.Event, billing.MaxBatch)
				for i := range evs {
					evs[i] = billing.Event{Meter: "interactions", Quantity: 1, IdempotencyKey: fmt.Sprintf("b%d-%d", n, i), OccurredAt: at,
						Dimensions: map[string]string{"channel": "webchat"}}
				}
				return evs
			}
			b.Run("ledger", func(b *testing.B) {
				ctx := tenant.WithOrg(context.Background(), e.Acme)
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := e.App.Ledger.Record(ctx, "bench", batch()); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N*billing.MaxBatch)/time.Since(start).Seconds(), "events/s")
			})
			b.Run("api", func(b *testing.B) {
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						body, _ := json.Marshal(map[string]any{"events": batch()})
						req := httptest.NewRequest("POST", "/api/v1/usage-events", strings.NewReader(string(body)))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+key)
						res, err := e.App.HTTP.Test(req, -1)
						if err != nil || res.StatusCode != 200 {
							b.Errorf("post: %v %v", err, res)
							return
						}
						res.Body.Close()
					}
				})
				b.ReportMetric(float64(b.N*billing.MaxBatch)/time.Since(start).Seconds(), "events/s")
			})
		})
	}
}
