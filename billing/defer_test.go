package billing_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// deferWorld is an app and Acme's context, with readers of the ledger that never join a
// transaction (each read is its own connection's view).
type deferWorld struct {
	e   *apptest.Env
	ctx context.Context
	l   *billing.Ledger
}

// keys maps the ledger's keys starting with prefix to their quantities.
func (w deferWorld) keys(t *testing.T, prefix string) map[string]int64 {
	t.Helper()
	var rows []billing.UsageEvent
	if err := w.e.App.DB.Run(w.ctx, func(tx *gorm.DB) error {
		return tx.Where("idempotency_key LIKE ?", prefix+"%").Find(&rows).Error
	}); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		if _, dup := out[r.IdempotencyKey]; dup {
			t.Fatalf("key %s is in the ledger twice", r.IdempotencyKey)
		}
		out[r.IdempotencyKey] = r.Quantity
	}
	return out
}

// version returns the usage_dirty_days version of Acme's day (0 when it is not marked).
func (w deferWorld) version(t *testing.T, day time.Time) int64 {
	t.Helper()
	var vs []int64
	if err := w.e.App.DB.Run(w.ctx, func(tx *gorm.DB) error {
		return tx.Table("usage_dirty_days").Where("day = ?", day.Format("2006-01-02")).Pluck("version", &vs).Error
	}); err != nil {
		t.Fatal(err)
	}
	if len(vs) > 1 {
		t.Fatalf("%d usage_dirty_days rows for one day", len(vs))
	}
	if len(vs) == 0 {
		return 0
	}
	return vs[0]
}

// daysAgo is noon of the day n days back: each case has its own day, away from midnight.
func daysAgo(n int) time.Time {
	return time.Now().UTC().Truncate(24*time.Hour).Add(12*time.Hour).AddDate(0, 0, -n)
}

func interaction(key string, qty int64, at time.Time) billing.Event {
	return billing.Event{Meter: "interactions", Quantity: qty, IdempotencyKey: key, OccurredAt: at,
		Dimensions: map[string]string{"channel": "api"}}
}

func sameKeys(got map[string]int64, want ...string) bool {
	var ks []string
	for k := range got {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	slices.Sort(want)
	return slices.Equal(ks, want)
}

// TestDefer: Ledger.Defer writes a transaction's events in one go when it commits, each key
// once, nothing when it rolls back, and refuses invalid events at once; outside a transaction
// it writes at once.
func TestDefer(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			w := deferWorld{e: e, ctx: tenant.WithOrg(context.Background(), e.Acme), l: e.App.Ledger}
			db := e.App.DB
			boom := errors.New("boom")

			t.Run("written at commit, all calls together", func(t *testing.T) {
				day := daysAgo(1)
				v0 := w.version(t, day)
				must := func(err error) {
					t.Helper()
					if err != nil {
						t.Fatal(err)
					}
				}
				err := db.Tx(w.ctx, func(ctx context.Context) error {
					must(w.l.Defer(ctx, "test", []billing.Event{interaction("commit-a", 1, day)}))
					must(w.l.Defer(ctx, "test", []billing.Event{interaction("commit-b", 2, day), interaction("commit-c", 3, day)}))
					// Not even the transaction itself holds them yet.
					var n int64
					must(db.Run(ctx, func(tx *gorm.DB) error {
						return tx.Model(&billing.UsageEvent{}).Where("idempotency_key LIKE 'commit-%'").Count(&n).Error
					}))
					if n != 0 {
						t.Errorf("%d deferred events written before the transaction's end", n)
					}
					if got := w.keys(t, "commit-"); len(got) != 0 {
						t.Errorf("deferred events visible outside the transaction before commit: %v", got)
					}
					if v := w.version(t, day); v != v0 {
						t.Errorf("the day was marked before commit: version %d → %d", v0, v)
					}
					return nil
				})
				must(err)
				got := w.keys(t, "commit-")
				if !sameKeys(got, "commit-a", "commit-b", "commit-c") || got["commit-c"] != 3 {
					t.Fatalf("after commit the ledger holds %v, want commit-a..c", got)
				}
				if v := w.version(t, day); v != v0+1 {
					t.Errorf("day version %d → %d, want one bump", v0, v)
				}
			})

			t.Run("rolled back leaves nothing", func(t *testing.T) {
				day := daysAgo(2)
				err := db.Tx(w.ctx, func(ctx context.Context) error {
					if err := w.l.Defer(ctx, "test", []billing.Event{interaction("rollback-a", 1, day)}); err != nil {
						return err
					}
					return boom
				})
				if !errors.Is(err, boom) {
					t.Fatalf("Tx returned %v", err)
				}
				if got := w.keys(t, "rollback-"); len(got) != 0 {
					t.Errorf("a rolled-back transaction left %v", got)
				}
				if v := w.version(t, day); v != 0 {
					t.Errorf("a rolled-back transaction marked its day (version %d)", v)
				}
			})

			t.Run("a key deferred twice counts once", func(t *testing.T) {
				day := daysAgo(3)
				err := db.Tx(w.ctx, func(ctx context.Context) error {
					if err := w.l.Defer(ctx, "test", []billing.Event{interaction("twice-a", 5, day)}); err != nil {
						return err
					}
					// Again in a later call (the first wins), and twice in one call.
					return w.l.Defer(ctx, "test", []billing.Event{interaction("twice-a", 7, day), interaction("twice-b", 1, day), interaction("twice-b", 1, day)})
				})
				if err != nil {
					t.Fatal(err)
				}
				got := w.keys(t, "twice-")
				if !sameKeys(got, "twice-a", "twice-b") || got["twice-a"] != 5 {
					t.Fatalf("ledger holds %v, want twice-a (quantity 5) and twice-b once each", got)
				}
			})

			t.Run("a key already in the ledger is not counted again", func(t *testing.T) {
				day := daysAgo(4)
				if _, err := w.l.Record(w.ctx, "test", []billing.Event{interaction("known-a", 1, day)}); err != nil {
					t.Fatal(err)
				}
				err := db.Tx(w.ctx, func(ctx context.Context) error {
					return w.l.Defer(ctx, "test", []billing.Event{interaction("known-a", 9, day), interaction("known-b", 2, day)})
				})
				if err != nil {
					t.Fatal(err)
				}
				got := w.keys(t, "known-")
				if !sameKeys(got, "known-a", "known-b") || got["known-a"] != 1 {
					t.Fatalf("ledger holds %v, want known-a still with quantity 1 and known-b", got)
				}
			})

			t.Run("outside a transaction written at once", func(t *testing.T) {
				day := daysAgo(5)
				if err := w.l.Defer(w.ctx, "test", []billing.Event{interaction("notx-a", 1, day)}); err != nil {
					t.Fatal(err)
				}
				if got := w.keys(t, "notx-"); !sameKeys(got, "notx-a") {
					t.Fatalf("ledger holds %v right after Defer without a tx", got)
				}
				if v := w.version(t, day); v != 1 {
					t.Errorf("day version %d, want 1", v)
				}
			})

			t.Run("one day mark per transaction", func(t *testing.T) {
				day := daysAgo(6)
				for tx := 1; tx <= 2; tx++ {
					err := db.Tx(w.ctx, func(ctx context.Context) error {
						for i := range 3 {
							if _, err := w.l.Record(ctx, "test", []billing.Event{interaction(fmt.Sprintf("mark-%d-r%d", tx, i), 1, day)}); err != nil {
								return err
							}
							if err := w.l.Defer(ctx, "test", []billing.Event{interaction(fmt.Sprintf("mark-%d-d%d", tx, i), 1, day)}); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					if v := w.version(t, day); v != int64(tx) {
						t.Fatalf("after %d transactions of 6 events each the day's version is %d, want %d", tx, v, tx)
					}
				}
				if got := w.keys(t, "mark-"); len(got) != 12 {
					t.Errorf("%d events in the ledger, want 12", len(got))
				}
			})
		})
	}
}

// TestDeferRefusesInvalidEvents: an invalid event is refused at once, naming it, in a
// transaction or not, and nothing of its call is written.
func TestDeferRefusesInvalidEvents(t *testing.T) {
	day := daysAgo(7)
	ok := interaction("invalid-ok", 1, day)
	cases := []struct {
		name  string
		bad   billing.Event
		field string
	}{
		{"no meter", billing.Event{Quantity: 1, IdempotencyKey: "invalid-1", OccurredAt: day}, "events[1].meter"},
		{"unknown meter", billing.Event{Meter: "nope", Quantity: 1, IdempotencyKey: "invalid-2", OccurredAt: day}, "events[1].meter"},
		{"negative quantity", interaction("invalid-3", -1, day), "events[1].quantity"},
		{"no key", interaction("", 1, day), "events[1].idempotency_key"},
		{"no time", interaction("invalid-5", 1, time.Time{}), "events[1].occurred_at"},
		{"future", interaction("invalid-6", 1, time.Now().Add(time.Hour)), "events[1].occurred_at"},
		{"conversation without its id", billing.Event{Meter: "conversations", Quantity: 1, IdempotencyKey: "invalid-7", OccurredAt: day}, "events[1].dimensions.conversation_id"},
	}
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			w := deferWorld{e: e, ctx: tenant.WithOrg(context.Background(), e.Acme), l: e.App.Ledger}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					check := func(where string, err error) {
						t.Helper()
						var ve *apperr.ValidationError
						if !errors.As(err, &ve) || len(ve.Fields) == 0 || ve.Fields[0].Field != c.field {
							t.Errorf("%s: Defer returned %v, want a validation error on %s", where, err, c.field)
						}
					}
					var inTx error
					// The caller goes on and commits: the refused call must have left nothing.
					err := e.App.DB.Tx(w.ctx, func(ctx context.Context) error {
						inTx = w.l.Defer(ctx, "test", []billing.Event{ok, c.bad})
						return nil
					})
					if err != nil {
						t.Fatalf("the transaction failed at commit: %v", err)
					}
					check("in a tx", inTx)
					check("without a tx", w.l.Defer(w.ctx, "test", []billing.Event{ok, c.bad}))
					if got := w.keys(t, "invalid-"); len(got) != 0 {
						t.Errorf("a refused batch wrote %v", got)
					}
					if v := w.version(t, day); v != 0 {
						t.Errorf("a refused batch marked its day (version %d)", v)
					}
				})
			}
		})
	}
}

// TestDeferWithOtherWorkInTheTransaction: what other calls in the same transaction do must not
// lose or fail a Defer.
func TestDeferWithOtherWorkInTheTransaction(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := apptest.New(t, d)
			w := deferWorld{e: e, ctx: tenant.WithOrg(context.Background(), e.Acme), l: e.App.Ledger}
			db := e.App.DB

			t.Run("Record then Defer on another day marks both days", func(t *testing.T) {
				recorded, deferred := daysAgo(20), daysAgo(21)
				err := db.Tx(w.ctx, func(ctx context.Context) error {
					if _, err := w.l.Record(ctx, "test", []billing.Event{interaction("days-r", 1, recorded)}); err != nil {
						return err
					}
					return w.l.Defer(ctx, "test", []billing.Event{interaction("days-d", 1, deferred)})
				})
				if err != nil {
					t.Fatal(err)
				}
				if got := w.keys(t, "days-"); !sameKeys(got, "days-r", "days-d") {
					t.Fatalf("ledger holds %v", got)
				}
				if vr, vd := w.version(t, recorded), w.version(t, deferred); vr != 1 || vd != 1 {
					t.Errorf("day versions: recorded %d, deferred %d; want both marked once (the rollup skips an unmarked day)", vr, vd)
				}
			})

			t.Run("a refused Defer does not drop the later ones", func(t *testing.T) {
				day := daysAgo(22)
				var refused, accepted error
				err := db.Tx(w.ctx, func(ctx context.Context) error {
					refused = w.l.Defer(ctx, "test", []billing.Event{{Meter: "nope", Quantity: 1, IdempotencyKey: "after-bad", OccurredAt: day}})
					accepted = w.l.Defer(ctx, "test", []billing.Event{interaction("after-good", 1, day)})
					return nil
				})
				if err != nil || refused == nil || accepted != nil {
					t.Fatalf("Tx %v, refused call %v, accepted call %v", err, refused, accepted)
				}
				if got := w.keys(t, "after-"); !sameKeys(got, "after-good") {
					t.Errorf("ledger holds %v, want after-good: it was accepted and its transaction committed", got)
				}
			})

			t.Run("an empty Defer does not fail the commit", func(t *testing.T) {
				err := db.Tx(w.ctx, func(ctx context.Context) error {
					_ = w.l.Defer(ctx, "test", nil) // refused at once (as Record does) or a no-op: either way not fatal later
					// The transaction's business change.
					return db.Record(ctx, tenant.Audit{Action: "test.empty_defer", ObjectType: "test", ObjectID: "empty"})
				})
				if err != nil {
					t.Fatalf("the transaction failed: %v", err)
				}
			})
		})
	}
}
