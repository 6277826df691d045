package billing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/tenant"
)

var unlimited = apptest.Options{Env: map[string]string{
	// The ingest tests post hundreds of batches at once; the limiters must not refuse them.
	"SWITCHBOARD_RATE_PER_IP":     "1000000000",
	"SWITCHBOARD_RATE_PER_TENANT": "1000000000",
}}

func apiKey(t *testing.T, e *apptest.Env, owner string) string {
	t.Helper()
	return e.Login(owner).Do("POST", "/api/v1/api-keys", map[string]any{"name": "usage", "role": "tenant_admin"}).Want(201).JSON()["key"].(string)
}

// generate makes n distinct events over days days ending yesterday, across four meters of the
// three aggregations, with random quantities.
func generate(r *rand.Rand, prefix string, n, days int, now time.Time) []billing.Event {
	base := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -days)
	out := make([]billing.Event, n)
	for i := range out {
		at := base.Add(time.Duration(r.Int64N(int64(days) * int64(24*time.Hour))))
		ev := billing.Event{IdempotencyKey: fmt.Sprintf("%s-%06d", prefix, i), OccurredAt: at}
		switch i % 4 {
		case 0, 1:
			ev.Meter, ev.Quantity = "interactions", 1+r.Int64N(5)
			ev.Dimensions = map[string]string{"channel": []string{"email", "webchat", "whatsapp"}[i%3]}
		case 2:
			ev.Meter, ev.Quantity = "voice_minutes", r.Int64N(30)
		case 3:
			ev.Meter, ev.Quantity = "conversations", 1
			ev.Dimensions = map[string]string{"conversation_id": fmt.Sprintf("c%d", r.IntN(n/10+1))}
		}
		out[i] = ev
	}
	return out
}

// expected computes each meter's total over the distinct events by hand: sums, and distinct
// subjects for conversations.
func expected(evs []billing.Event) map[string]int64 {
	want := map[string]int64{}
	convs := map[string]bool{}
	for _, ev := range evs {
		if ev.Meter == "conversations" {
			convs[ev.Dimensions["conversation_id"]] = true
			continue
		}
		want[ev.Meter] += ev.Quantity
	}
	want["conversations"] = int64(len(convs))
	return want
}

func totals(t *testing.T, l *billing.Ledger, ctx context.Context, from, to time.Time) map[string]int64 {
	t.Helper()
	ts, err := l.Totals(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, m := range ts {
		if m.Quantity != 0 {
			out[m.Meter] = m.Quantity
		}
	}
	return out
}

// checkRollups compares the daily rollups, the hourly rollups and a recount from the ledger with
// the hand-computed totals.
func checkRollups(t *testing.T, e *apptest.Env, ctx context.Context, want map[string]int64, from, to time.Time) {
	t.Helper()
	l := e.App.Ledger
	roll, err := l.RollupTotals(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"interactions", "voice_minutes"} {
		if roll[m] != want[m] {
			t.Errorf("daily rollups of %s = %d, want %d", m, roll[m], want[m])
		}
	}
	hours, err := l.Series(ctx, "hour", from, to)
	if err != nil {
		t.Fatal(err)
	}
	hourly := map[string]int64{}
	for _, h := range hours {
		hourly[h.Meter] += h.Quantity
	}
	for _, m := range []string{"interactions", "voice_minutes"} {
		if hourly[m] != want[m] {
			t.Errorf("hourly rollups of %s = %d, want %d", m, hourly[m], want[m])
		}
	}
	recount := totals(t, l, ctx, from, to)
	for m, w := range want {
		if recount[m] != w {
			t.Errorf("recount of %s from the ledger = %d, want %d", m, recount[m], w)
		}
	}
}

// TestConcurrentIngestWithRepeats is the ledger's acceptance test: 100,000 events posted
// concurrently through the API by two tenants, 10 % of them repeats of earlier keys; the rollups
// equal the totals of the distinct events and a recount from the ledger agrees, also after the
// rollup is stopped halfway (between days and in the middle of one) and run again, and with a
// rollup running while events still arrive.
func TestConcurrentIngestWithRepeats(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d, unlimited)
			now := time.Now().UTC()
			r := rand.New(rand.NewPCG(1, 2))
			const days = 10
			type side struct {
				org      tenant.Org
				key      string
				distinct []billing.Event
			}
			sides := []*side{
				{org: e.Acme, key: apiKey(t, e, "owner@acme.test")},
				{org: e.Globex, key: apiKey(t, e, "owner@globex.test")},
			}
			// 45,000 distinct events per tenant and 5,000 repeats of them: 100,000 posted.
			type batch struct {
				key    string
				events []billing.Event
			}
			var batches []batch
			for i, s := range sides {
				s.distinct = generate(r, fmt.Sprintf("t%d", i), 45_000, days, now)
				posted := append([]billing.Event{}, s.distinct...)
				for range 5_000 {
					posted = append(posted, s.distinct[r.IntN(len(s.distinct))])
				}
				r.Shuffle(len(posted), func(a, b int) { posted[a], posted[b] = posted[b], posted[a] })
				for start := 0; start < len(posted); start += billing.MaxBatch {
					batches = append(batches, batch{key: s.key, events: posted[start:min(start+billing.MaxBatch, len(posted))]})
				}
			}
			r.Shuffle(len(batches), func(a, b int) { batches[a], batches[b] = batches[b], batches[a] })

			// Post from 8 clients at once while a rollup runs alongside.
			var wg sync.WaitGroup
			var mu sync.Mutex
			accepted, dups := 0, 0
			next := make(chan batch)
			for range 8 {
				wg.Go(func() {
					for b := range next {
						// No client timeout: under the race detector on two busy cores a batch may
						// queue behind the others for a while; it must still land.
						body, _ := json.Marshal(map[string]any{"events": b.events})
						req := httptest.NewRequest("POST", "/api/v1/usage-events", bytes.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+b.key)
						res, err := e.App.HTTP.Test(req, -1)
						if err != nil {
							t.Errorf("batch: %v", err)
							continue
						}
						rb, _ := io.ReadAll(res.Body)
						res.Body.Close()
						if res.StatusCode != 200 {
							t.Errorf("batch: %d %s", res.StatusCode, rb)
							continue
						}
						var j map[string]any
						if err := json.Unmarshal(rb, &j); err != nil {
							t.Errorf("batch answer: %v", err)
							continue
						}
						mu.Lock()
						accepted += int(j["accepted"].(float64))
						dups += int(j["duplicates"].(float64))
						mu.Unlock()
					}
				})
			}
			// Two rollup runs at once (two workers), while the events land: the day is counted
			// outside the write, so one run may count it after the other; neither may leave
			// rollups staler than the events with no mark to correct them.
			rollupDone := make(chan error, 2)
			for range 2 {
				go func() {
					_, err := e.App.Ledger.RollupDirty(context.Background(), 0)
					rollupDone <- err
				}()
			}
			for _, b := range batches {
				next <- b
			}
			close(next)
			wg.Wait()
			for range 2 {
				if err := <-rollupDone; err != nil {
					t.Fatal(err)
				}
			}
			if accepted != 90_000 || dups != 10_000 {
				t.Fatalf("accepted %d, duplicates %d; want 90000 and 10000", accepted, dups)
			}

			from := now.Truncate(24*time.Hour).AddDate(0, 0, -days)
			to := now.Truncate(24 * time.Hour)

			// Stopped between days: 5 of the 20 tenant-days, then the rest.
			n, err := e.App.Ledger.RollupDirty(context.Background(), 5)
			if err != nil || n != 5 {
				t.Fatalf("partial rollup: %d days, %v", n, err)
			}
			// Stopped in the middle of a day: the context ends while a day's transaction runs.
			ctx, cancel := context.WithCancel(context.Background())
			go func() { time.Sleep(time.Duration(r.IntN(20)) * time.Millisecond); cancel() }()
			if _, err := e.App.Ledger.RollupDirty(ctx, 0); err != nil && !errors.Is(err, context.Canceled) {
				t.Logf("stopped rollup: %v", err)
			}
			// Run again to the end, then once more: nothing is left to do and nothing moves.
			if _, err := e.App.Ledger.RollupDirty(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			if n, err := e.App.Ledger.RollupDirty(context.Background(), 0); err != nil || n != 0 {
				t.Fatalf("second full run: %d days, %v", n, err)
			}
			for _, s := range sides {
				ctx := tenant.WithOrg(context.Background(), s.org)
				checkRollups(t, e, ctx, expected(s.distinct), from, to)
			}
		})
	}
}
