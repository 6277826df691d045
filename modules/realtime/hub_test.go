package realtime_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/db"
	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/realtime"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// env is a database with two tenants and a Redis that hubs share, as two serve processes
// would.
type env struct {
	db           *tenant.DB
	rdb          redis.UniversalClient
	mini         *miniredis.Miniredis // nil on a real Redis
	acme, globex tenant.Org
}

func testLog() *slog.Logger {
	if os.Getenv("TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// each runs fn on SQLite with the in-process Redis, and also on a real Redis (TEST_REDIS_URL)
// and on PostgreSQL (TEST_DATABASE_URL) when they are set.
func each(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	eachOf(t, true, fn)
}

// eachEmbedded runs fn on the set-ups with the in-process Redis only: the tests that stop and
// restart Redis cannot do that to the machine's shared server.
func eachEmbedded(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	eachOf(t, false, fn)
}

func eachOf(t *testing.T, withReal bool, fn func(t *testing.T, e *env)) {
	t.Helper()
	type setup struct {
		name    string
		dialect tenant.Dialect
		real    bool
	}
	setups := []setup{{"sqlite/embedded", tenant.SQLite, false}}
	switch {
	case !withReal:
	case os.Getenv("TEST_REDIS_URL") != "":
		setups = append(setups, setup{"sqlite/redis", tenant.SQLite, true})
	default:
		t.Log("TEST_REDIS_URL not set: real-Redis variant skipped, embedded variant runs")
	}
	if os.Getenv("TEST_DATABASE_URL") != "" {
		setups = append(setups, setup{"postgres/embedded", tenant.Postgres, false})
	} else {
		t.Log("TEST_DATABASE_URL not set: PostgreSQL variant skipped, SQLite variant runs")
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			e := &env{db: openDB(t, s.dialect)}
			if s.real {
				opt, err := redis.ParseURL(os.Getenv("TEST_REDIS_URL"))
				if err != nil {
					t.Fatalf("TEST_REDIS_URL: %v", err)
				}
				e.rdb = redis.NewClient(opt)
			} else {
				e.mini = miniredis.RunT(t)
				e.rdb = redis.NewClient(&redis.Options{Addr: e.mini.Addr()})
			}
			t.Cleanup(func() { e.rdb.Close() })
			e.acme, e.globex = newOrg(t, e.db, "acme"), newOrg(t, e.db, "globex")
			fn(t, e)
		})
	}
}

// openDB opens a migrated database the way the app does: on PostgreSQL migrated by the owner
// and used through a role that owns nothing, so row-level security applies.
func openDB(t *testing.T, dialect tenant.Dialect) *tenant.DB {
	t.Helper()
	ctx, log := context.Background(), testLog()
	opts := db.Options{SQLitePath: filepath.Join(t.TempDir(), "switchboard.db")}
	if dialect == tenant.Postgres {
		owner, appURL := apptest.PostgresURLs(t)
		osql, err := sql.Open("pgx", owner)
		if err != nil {
			t.Fatal(err)
		}
		defer osql.Close()
		m, err := db.NewMigrator(osql, tenant.Postgres)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Up(ctx, log); err != nil {
			t.Fatal(err)
		}
		if err := m.GrantApp(ctx, db.UserOf(appURL)); err != nil {
			t.Fatal(err)
		}
		opts = db.Options{URL: appURL}
	}
	g, d, err := db.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := g.DB()
	t.Cleanup(func() { sqlDB.Close() })
	if d == tenant.SQLite {
		m, err := db.NewMigrator(sqlDB, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Up(ctx, log); err != nil {
			t.Fatal(err)
		}
	}
	tdb, err := tenant.New(g, d, log)
	if err != nil {
		t.Fatal(err)
	}
	return tdb
}

func newOrg(t *testing.T, d *tenant.DB, name string) tenant.Org {
	t.Helper()
	now := time.Now().UTC()
	o := tenant.Org{ID: ids.New(), Kind: tenant.KindTenant, Name: name, Slug: name + "-" + ids.Secret(4), Status: tenant.StatusActive,
		Locale: "en", StatusChangedAt: now, CreatedAt: now, UpdatedAt: now}
	ctx := d.AsPlatform(context.Background(), "test organisations")
	if err := d.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&o).Error }); err != nil {
		t.Fatal(err)
	}
	return o
}

func in(o tenant.Org) context.Context { return tenant.WithOrg(context.Background(), o) }

// hub starts a hub that stops when the test ends.
func (e *env) hub(t *testing.T) *realtime.Hub {
	t.Helper()
	h := realtime.NewHub(e.db, e.rdb, testLog())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return h
}

func mustAppend(t *testing.T, h *realtime.Hub, o tenant.Org, kind string, conv uuid.UUID, payload any) {
	t.Helper()
	if err := h.Append(in(o), kind, conv, payload); err != nil {
		t.Fatal(err)
	}
}

// journal returns the tenant's journaled event ids in order.
func (e *env) journal(t *testing.T, o tenant.Org) []uuid.UUID {
	t.Helper()
	var out []uuid.UUID
	err := e.db.Run(in(o), func(tx *gorm.DB) error {
		return tx.Table("realtime_events").Order("id").Pluck("id", &out).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func subscribe(t *testing.T, h *realtime.Hub, o tenant.Org, since uuid.UUID, filter func(realtime.Event) bool) *realtime.Subscription {
	t.Helper()
	s, err := h.Subscribe(in(o), o.ID, since, filter)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// until reads sub until an event of kind arrives and returns everything before it.
func until(t *testing.T, sub *realtime.Subscription, kind string) []realtime.Event {
	t.Helper()
	var got []realtime.Event
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				t.Fatalf("subscription closed (%v) before %q; got %d events", sub.Err(), kind, len(got))
			}
			if ev.Kind == kind {
				return got
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("no %q event within 20 s; got %d events", kind, len(got))
		}
	}
}

func idsOf(evs []realtime.Event) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func equalIDs(t *testing.T, what string, got, want []uuid.UUID) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d events, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: event %d is %s, want %s", what, i, got[i], want[i])
		}
	}
}

func TestFanOutAcrossHubs(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		a, b := e.hub(t), e.hub(t)
		onB := subscribe(t, b, e.acme, uuid.Nil, nil)
		onA := subscribe(t, a, e.acme, uuid.Nil, nil)
		otherTenant := subscribe(t, b, e.globex, uuid.Nil, nil)

		conv := ids.New()
		mustAppend(t, a, e.acme, "message.created", conv, map[string]string{"text": "hello"})
		if err := a.Broadcast(in(e.acme), realtime.KindTyping, conv, map[string]string{"user_id": "u1"}); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, a, e.acme, "barrier", uuid.Nil, nil)
		mustAppend(t, b, e.globex, "barrier", uuid.Nil, nil)

		journaled := e.journal(t, e.acme)[0]
		for name, sub := range map[string]*realtime.Subscription{"hub B": onB, "hub A": onA} {
			got := until(t, sub, "barrier")
			if len(got) != 2 || got[0].ID != journaled || got[0].Kind != "message.created" || got[1].Kind != realtime.KindTyping {
				t.Fatalf("%s: got %+v, want the message then the typing signal", name, got)
			}
			if got[0].ConversationID == nil || *got[0].ConversationID != conv || got[0].TenantID != e.acme.ID {
				t.Fatalf("%s: conversation/tenant wrong: %+v", name, got[0])
			}
			var p map[string]string
			if err := json.Unmarshal(got[0].Payload, &p); err != nil || p["text"] != "hello" {
				t.Fatalf("%s: payload %s", name, got[0].Payload)
			}
			if got[1].ID == uuid.Nil || got[1].ID.Version() != 7 {
				t.Fatalf("%s: ephemeral event id %s is not a UUIDv7", name, got[1].ID)
			}
		}
		if got := until(t, otherTenant, "barrier"); len(got) != 0 {
			t.Fatalf("another tenant's subscriber got %+v", got)
		}
		if n := len(e.journal(t, e.acme)); n != 2 {
			t.Fatalf("journal holds %d acme events, want 2 (the typing signal is not journaled)", n)
		}
	})
}

func TestCatchUpThenLiveInOrder(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		h := e.hub(t)
		realtime.SetPageSize(h, 4) // several pages
		conv := ids.New()
		for i := range 20 {
			c := uuid.Nil
			if i%2 == 0 {
				c = conv
			}
			mustAppend(t, h, e.acme, "message.created", c, map[string]int{"i": i})
		}
		mustAppend(t, h, e.globex, "message.created", conv, nil) // another tenant's, same conversation id
		past := e.journal(t, e.acme)
		since := past[4]

		all := subscribe(t, h, e.acme, since, nil)
		onlyConv := subscribe(t, h, e.acme, since, func(ev realtime.Event) bool {
			return ev.Kind == "barrier" || ev.ConversationID != nil && *ev.ConversationID == conv
		})
		for i := 20; i < 23; i++ {
			mustAppend(t, h, e.acme, "message.created", conv, map[string]int{"i": i})
		}
		mustAppend(t, h, e.acme, "barrier", uuid.Nil, nil)
		journal := e.journal(t, e.acme)

		gotAll := until(t, all, "barrier")
		equalIDs(t, "all", idsOf(gotAll), journal[5:23])
		// The live copy of an event reads the same as the journal's.
		again := subscribe(t, h, e.acme, journal[19], nil)
		if caught := until(t, again, "barrier"); len(caught) != 3 || !caught[0].At.Equal(gotAll[15].At) || caught[0].ID != gotAll[15].ID {
			t.Fatalf("journal copy %+v differs from the live one %+v", caught[0], gotAll[15])
		}
		var want []uuid.UUID
		for i := 5; i < 23; i++ {
			if i%2 == 0 || i >= 20 {
				want = append(want, journal[i])
			}
		}
		got := until(t, onlyConv, "barrier")
		equalIDs(t, "filtered", idsOf(got), want)
		var p map[string]int
		if err := json.Unmarshal(got[0].Payload, &p); err != nil || p["i"] != 6 {
			t.Fatalf("first filtered event payload %s, want i=6", got[0].Payload)
		}
	})
}

// TestCatchUpRacesAppends subscribes while 500 appends are under way: whatever the
// interleaving of the catch-up query, the live stream and the commits, every event after since
// arrives exactly once.
func TestCatchUpRacesAppends(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		writer, reader := e.hub(t), e.hub(t)
		for i := range 10 {
			mustAppend(t, writer, e.acme, "message.created", uuid.Nil, map[string]int{"pre": i})
		}
		since := e.journal(t, e.acme)[3]

		const total, workers = 500, 8
		var done atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < total; i += workers {
					h := writer
					if i%3 == 0 {
						h = reader // appends from both nodes
					}
					if err := h.Append(in(e.acme), "message.created", uuid.Nil, map[string]int{"i": i}); err != nil {
						errs <- err
						return
					}
					done.Add(1)
				}
			}()
		}
		for done.Load() < 150 {
			time.Sleep(time.Millisecond)
		}
		sub := subscribe(t, reader, e.acme, since, nil)
		// A filter may keep state: it is called in delivery order, never concurrently (the race
		// detector watches this unguarded slice).
		var order []uuid.UUID
		filtered := subscribe(t, writer, e.acme, since, func(ev realtime.Event) bool {
			order = append(order, ev.ID)
			return true
		})
		// A client reads as it goes; one that does not is closed as slow (tested below).
		read := make(chan []realtime.Event, 1)
		readFiltered := make(chan []realtime.Event, 1)
		for s, out := range map[*realtime.Subscription]chan []realtime.Event{sub: read, filtered: readFiltered} {
			go func() {
				var evs []realtime.Event
				for ev := range s.C {
					if ev.Kind == "barrier" {
						break
					}
					evs = append(evs, ev)
				}
				out <- evs
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		mustAppend(t, writer, e.acme, "barrier", uuid.Nil, nil)
		var got, gotFiltered []realtime.Event
		for _, c := range []chan []realtime.Event{read, readFiltered} {
			select {
			case evs := <-c:
				if c == read {
					got = evs
				} else {
					gotFiltered = evs
				}
			case <-time.After(30 * time.Second):
				t.Fatal("no barrier within 30 s")
			}
		}
		if len(order) != len(gotFiltered)+1 {
			t.Fatalf("filter saw %d events, subscriber got %d and the barrier", len(order), len(gotFiltered))
		}
		equalIDs(t, "filter order", order[:len(gotFiltered)], idsOf(gotFiltered))

		journal := e.journal(t, e.acme)
		want := map[uuid.UUID]bool{}
		for _, id := range journal {
			if id.String() > since.String() {
				want[id] = true
			}
		}
		delete(want, journal[len(journal)-1]) // the barrier
		seen := map[uuid.UUID]bool{}
		for _, ev := range got {
			if seen[ev.ID] {
				t.Fatalf("event %s delivered twice", ev.ID)
			}
			if !want[ev.ID] {
				t.Fatalf("event %s delivered but not after since", ev.ID)
			}
			seen[ev.ID] = true
		}
		if len(seen) != len(want) || len(want) != total+6 {
			t.Fatalf("delivered %d of %d events after since (want %d)", len(seen), len(want), total+6)
		}
		if sub.Err() != nil {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		if len(gotFiltered) != len(got) {
			t.Fatalf("the filtered subscriber on the other hub got %d events, the first %d", len(gotFiltered), len(got))
		}
	})
}

func TestRolledBackEventIsNeitherDeliveredNorJournaled(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		h := e.hub(t)
		sub := subscribe(t, h, e.acme, uuid.Nil, nil)
		boom := errors.New("business rule failed")
		err := e.db.Tx(in(e.acme), func(ctx context.Context) error {
			if err := h.Append(ctx, "message.created", uuid.Nil, map[string]string{"text": "never"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Tx: %v", err)
		}
		committed := func() error {
			return e.db.Tx(in(e.acme), func(ctx context.Context) error {
				return h.Append(ctx, "message.created", uuid.Nil, map[string]string{"text": "kept"})
			})
		}
		if err := committed(); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, h, e.acme, "barrier", uuid.Nil, nil)
		got := until(t, sub, "barrier")
		if len(got) != 1 || string(got[0].Payload) != `{"text":"kept"}` {
			t.Fatalf("got %+v, want only the committed event", got)
		}
		if n := len(e.journal(t, e.acme)); n != 2 {
			t.Fatalf("journal holds %d events, want 2 (kept + barrier)", n)
		}
	})
}

func TestSlowSubscriberIsClosedWithoutBlockingOthers(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		h := e.hub(t)
		// Room for a reader's scheduling hiccups (the fast one must never be closed), little
		// enough for the test to outrun a reader that never reads.
		realtime.SetBuffer(h, 128, 1024)
		slow := subscribe(t, h, e.acme, uuid.Nil, nil)
		fast := subscribe(t, h, e.acme, uuid.Nil, nil)
		got := make(chan []realtime.Event, 1)
		go func() {
			var evs []realtime.Event
			for ev := range fast.C {
				if ev.Kind == "barrier" {
					break
				}
				evs = append(evs, ev)
			}
			got <- evs
		}()
		const total = 300
		for i := range total {
			mustAppend(t, h, e.acme, "message.created", uuid.Nil, map[string]int{"i": i})
		}
		mustAppend(t, h, e.acme, "barrier", uuid.Nil, nil)
		select {
		case evs := <-got:
			if len(evs) != total {
				t.Fatalf("the reading subscriber got %d of %d events (closed: %v)", len(evs), total, fast.Err())
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the reading subscriber was held up")
		}
		n := 0
		for range slow.C {
			n++
		}
		if n != 128 || !errors.Is(slow.Err(), realtime.ErrSlowConsumer) {
			t.Fatalf("slow subscriber: %d buffered events then %v; want 128 then ErrSlowConsumer", n, slow.Err())
		}
		// It catches up from its last id like any reconnecting client.
		last := e.journal(t, e.acme)[127]
		if n := len(until(t, subscribe(t, h, e.acme, last, nil), "barrier")); n != total-128 {
			t.Fatalf("catching up after the slow close gave %d events, want %d", n, total-128)
		}
	})
}

func TestPruneDeletesOnlyOldRows(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		h := e.hub(t)
		now := time.Now()
		realtime.SetClock(h, func() time.Time { return now.Add(-8 * 24 * time.Hour) })
		mustAppend(t, h, e.acme, "old", uuid.Nil, nil)
		mustAppend(t, h, e.acme, "old", uuid.Nil, nil)
		mustAppend(t, h, e.globex, "old", uuid.Nil, nil)
		realtime.SetClock(h, func() time.Time { return now.Add(-6 * 24 * time.Hour) })
		mustAppend(t, h, e.acme, "recent", uuid.Nil, nil)
		realtime.SetClock(h, func() time.Time { return now })
		mustAppend(t, h, e.globex, "new", uuid.Nil, nil)

		n, err := h.Prune(context.Background(), realtime.Retention)
		if err != nil || n != 3 {
			t.Fatalf("Prune = %d, %v; want 3 rows across both tenants", n, err)
		}
		for o, want := range map[tenant.Org][]string{e.acme: {"recent"}, e.globex: {"new"}} {
			var kinds []string
			if err := e.db.Run(in(o), func(tx *gorm.DB) error {
				return tx.Table("realtime_events").Order("id").Pluck("kind", &kinds).Error
			}); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(kinds) != fmt.Sprint(want) {
				t.Fatalf("%s keeps %v, want %v", o.Name, kinds, want)
			}
		}
		if n, err := h.Prune(context.Background(), realtime.Retention); err != nil || n != 0 {
			t.Fatalf("second Prune = %d, %v; want 0", n, err)
		}
	})
}

func TestRedisOutageClosesSubscriptionsAndRecovers(t *testing.T) {
	eachEmbedded(t, func(t *testing.T, e *env) {
		h := e.hub(t)
		sub := subscribe(t, h, e.acme, uuid.Nil, nil)
		mustAppend(t, h, e.acme, "before", uuid.Nil, nil)
		first := until(t, sub, "before")
		_ = first
		e.mini.Close()
		select {
		case _, ok := <-sub.C:
			if ok {
				t.Fatal("an event arrived after Redis went away")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("subscription not closed when Redis went away")
		}
		if !errors.Is(sub.Err(), realtime.ErrResync) {
			t.Fatalf("closed with %v, want ErrResync", sub.Err())
		}
		// Journaled while the live stream is down: its publish fails, the client catches up.
		mustAppend(t, h, e.acme, "during", uuid.Nil, nil)
		if _, err := h.Subscribe(in(e.acme), e.acme.ID, uuid.Nil, nil); !errors.Is(err, realtime.ErrUnavailable) {
			t.Fatalf("Subscribe while down: %v, want ErrUnavailable", err)
		}
		if err := e.mini.Restart(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for h.CheckSubscribe(uuid.Nil) != nil {
			if time.Now().After(deadline) {
				t.Fatal("hub did not resubscribe after Redis came back")
			}
			time.Sleep(20 * time.Millisecond)
		}
		before := e.journal(t, e.acme)[0]
		again := subscribe(t, h, e.acme, before, nil)
		mustAppend(t, h, e.acme, "barrier", uuid.Nil, nil)
		got := until(t, again, "barrier")
		if len(got) != 1 || got[0].Kind != "during" {
			t.Fatalf("after the outage got %+v, want the event journaled during it", got)
		}
	})
}

func TestStartWhileRedisIsDownKeepsTrying(t *testing.T) {
	eachEmbedded(t, func(t *testing.T, e *env) {
		e.mini.Close()
		h := realtime.NewHub(e.db, e.rdb, testLog())
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := h.Start(ctx); err == nil {
			t.Fatal("Start succeeded without Redis")
		}
		if err := h.CheckSubscribe(uuid.Nil); !errors.Is(err, realtime.ErrUnavailable) {
			t.Fatalf("CheckSubscribe without Redis: %v", err)
		}
		if err := e.mini.Restart(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for h.CheckSubscribe(uuid.Nil) != nil {
			if time.Now().After(deadline) {
				t.Fatal("hub did not subscribe once Redis came up")
			}
			time.Sleep(20 * time.Millisecond)
		}
		sub := subscribe(t, h, e.acme, uuid.Nil, nil)
		mustAppend(t, h, e.acme, "barrier", uuid.Nil, nil)
		until(t, sub, "barrier")
	})
}

func TestSinceBeforeReachesBack(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		h := e.hub(t)
		for i := range 3 {
			mustAppend(t, h, e.acme, "message.created", uuid.Nil, map[string]int{"i": i})
		}
		journal := e.journal(t, e.acme)
		last := journal[2]
		since := realtime.SinceBefore(last, time.Hour)
		ls, lns := last.Time().UnixTime()
		ss, sns := since.Time().UnixTime()
		if d := time.Unix(ls, lns).Sub(time.Unix(ss, sns)); d != time.Hour || since.Version() != 7 {
			t.Fatalf("SinceBefore moved the id by %s (version %d), want 1h", d, since.Version())
		}
		sub := subscribe(t, h, e.acme, since, nil)
		mustAppend(t, h, e.acme, "barrier", uuid.Nil, nil)
		equalIDs(t, "from an hour before the last id", idsOf(until(t, sub, "barrier")), journal)
	})
}

func TestStopClosesSubscriptions(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		h := realtime.NewHub(e.db, e.rdb, testLog())
		if _, err := h.Subscribe(in(e.acme), e.acme.ID, uuid.Nil, nil); !errors.Is(err, realtime.ErrUnavailable) {
			t.Fatalf("Subscribe before Start: %v, want ErrUnavailable", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := h.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := h.Start(ctx); err == nil {
			t.Fatal("second Start succeeded")
		}
		sub := subscribe(t, h, e.acme, uuid.Nil, nil)
		cancel()
		select {
		case _, ok := <-sub.C:
			if ok || !errors.Is(sub.Err(), realtime.ErrShutdown) {
				t.Fatalf("got ok=%v err=%v, want closed with ErrShutdown", ok, sub.Err())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("subscription not closed on stop")
		}
		closed := subscribe(t, e.hub(t), e.acme, uuid.Nil, nil)
		closed.Close()
		if _, ok := <-closed.C; ok || closed.Err() != nil {
			t.Fatalf("Close: channel open or reason %v", closed.Err())
		}
	})
}

// v7At is an event id minted at t.
func v7At(t time.Time) uuid.UUID {
	id := ids.New()
	ms := uint64(t.UnixMilli())
	for i := range 6 {
		id[i] = byte(ms >> (40 - 8*i))
	}
	return id
}

func TestSubscribeAndAppendRefuse(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		h := e.hub(t)
		var ve *apperr.ValidationError
		for name, since := range map[string]uuid.UUID{"v4": uuid.New(), "future": v7At(time.Now().Add(time.Hour))} {
			if _, err := h.Subscribe(in(e.acme), e.acme.ID, since, nil); !errors.As(err, &ve) || !ve.Malformed {
				t.Fatalf("since %s: %v, want a malformed-since error", name, err)
			}
		}
		if _, err := h.Subscribe(in(e.acme), e.acme.ID, v7At(time.Now().Add(-8*24*time.Hour)), nil); !errors.Is(err, realtime.ErrSinceExpired) {
			t.Fatalf("since 8 days ago: %v, want ErrSinceExpired", err)
		}
		if _, err := h.Subscribe(in(e.acme), e.globex.ID, uuid.Nil, nil); !errors.Is(err, tenant.ErrCrossTenant) {
			t.Fatalf("subscribing to another tenant from acme's context: %v", err)
		}
		if s, err := h.Subscribe(context.Background(), e.globex.ID, v7At(time.Now().Add(-time.Hour)), nil); err != nil {
			t.Fatalf("explicit tenant without one in context (the widget's case): %v", err)
		} else {
			s.Close()
		}
		if err := h.Append(context.Background(), "x", uuid.Nil, nil); !errors.Is(err, tenant.ErrNoTenant) {
			t.Fatalf("Append without a tenant: %v", err)
		}
		if err := h.Broadcast(context.Background(), "x", uuid.Nil, nil); !errors.Is(err, tenant.ErrNoTenant) {
			t.Fatalf("Broadcast without a tenant: %v", err)
		}
		for err, status := range map[error]int{realtime.ErrSinceExpired: 410, realtime.ErrUnavailable: 503, realtime.ErrSlowConsumer: 500} {
			if p := httpx.ProblemFor(fmt.Errorf("wrapped: %w", err)); p.Status != status {
				t.Fatalf("%v answers %d, want %d", err, p.Status, status)
			}
		}
		if err := h.Append(in(e.acme), "x", uuid.Nil, func() {}); err == nil {
			t.Fatal("Append with an unmarshallable payload succeeded")
		}
	})
}
