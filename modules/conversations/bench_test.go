package conversations_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/modules/conversations"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// benchEnv is an app for a benchmark on d, with the rate limits out of the way (they still run
// on every request) and, on PostgreSQL, a real Redis when TEST_REDIS_URL names one, as in
// production. It returns nil after skipping PostgreSQL without TEST_DATABASE_URL.
func benchEnv(b *testing.B, d tenant.Dialect) *apptest.Env {
	b.Helper()
	if d == tenant.Postgres && os.Getenv("TEST_DATABASE_URL") == "" {
		b.Skip("TEST_DATABASE_URL not set: PostgreSQL benchmark skipped")
	}
	env := map[string]string{
		"SWITCHBOARD_RATE_PER_IP":          "1000000000",
		"SWITCHBOARD_RATE_PER_TENANT":      "1000000000",
		"SWITCHBOARD_HOOK_RATE_PER_TENANT": "1000000000",
	}
	if r := os.Getenv("TEST_REDIS_URL"); d == tenant.Postgres && r != "" {
		env["REDIS_URL"] = r
	}
	return apptest.New(b, d, apptest.Options{Env: env})
}

// benchChannel creates an api channel for Acme through the API and returns what its adapter
// (and so its fixture) sees of it.
func benchChannel(b *testing.B, e *apptest.Env, owner *apptest.Client, f provider.Fixture) provider.Channel {
	b.Helper()
	cfg := f.Config("http://127.0.0.1:1") // replies are never sent here
	j := owner.Do("POST", "/api/v1/channels", map[string]any{"type": f.Type, "name": "bench", "config": cfg}).Want(201).JSON()
	return provider.Channel{ID: uuid.MustParse(j["id"].(string)), TenantID: e.Acme.ID, Type: f.Type, PublicID: j["public_id"].(string),
		Config: cfg, WebhookURL: "http://switchboard.test/hooks/" + f.Type + "/" + j["public_id"].(string)}
}

// listen serves the app on 127.0.0.1 and returns its base URL and a keep-alive client.
func listen(b *testing.B, e *apptest.Env) (string, *http.Client) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = e.App.HTTP.Listener(ln) }()
	b.Cleanup(func() { _ = e.App.HTTP.Shutdown() }) // runs before apptest closes the app
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true}}
	b.Cleanup(client.CloseIdleConnections)
	return "http://" + ln.Addr().String(), client
}

// latencies collects per-request durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

// report adds p50 and p99 in milliseconds to the benchmark's line.
func (l *latencies) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	q := func(p float64) float64 { return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// ingestSenders is how many distinct customers write: most messages join a conversation that
// is already open, as in a real inbox, and some open new ones.
const ingestSenders = 300

// ingestClients is how many deliveries are in flight at once, per GOMAXPROCS.
const ingestClients = 32

// BenchmarkWebhookIngest measures signed inbound webhooks of an api channel (the fixture's real
// wire format and X-Switchboard-Signature) through the whole HTTP stack over a real 127.0.0.1
// listener with keep-alive clients: route and channel lookup, signature check, parsing, contact
// resolution, threading, the message row, the conversation's update, its usage event and its
// realtime event, stored by group commit with the messages arriving with it. Every message id
// is new; the senders are ingestSenders customers. ingestClients×GOMAXPROCS deliveries are in
// flight at once.
// Target: ≥ 3,000 messages/s on one process, SQLite and PostgreSQL. Reported: msgs/s and the
// p50/p99 latency of one delivery under that load. After each run the channel must hold exactly
// the messages sent.
func BenchmarkWebhookIngest(b *testing.B) {
	for _, d := range []tenant.Dialect{tenant.SQLite, tenant.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			e := benchEnv(b, d)
			f := apichannel.Fixture()
			ch := benchChannel(b, e, e.Login("owner@acme.test"), f)
			base, client := listen(b, e)
			hook := base + "/hooks/" + ch.Type + "/" + ch.PublicID
			var seq atomic.Int64
			stored := func() int64 {
				var n int64
				if err := e.App.DB.Run(tenant.WithOrg(e.Ctx, e.Acme), func(tx *gorm.DB) error {
					return tx.Table("messages").Where("channel_id = ?", ch.ID).Count(&n).Error
				}); err != nil {
					b.Fatal(err)
				}
				return n
			}
			deliver := func(n int64) error {
				in := f.Inbound(ch, fmt.Sprintf("bench-%d", n), fmt.Sprintf("cust-%04d", n%ingestSenders), "你好，我的订单 #"+fmt.Sprint(n)+" 还没到，请帮我查一下")
				req, err := http.NewRequest("POST", hook, bytes.NewReader(in.Body))
				if err != nil {
					return err
				}
				req.Header = in.Header
				res, err := client.Do(req)
				if err != nil {
					return err
				}
				body, _ := io.ReadAll(res.Body) // to the end, so the connection is reused
				res.Body.Close()
				if res.StatusCode != 200 {
					return fmt.Errorf("status %d: %s", res.StatusCode, body)
				}
				return nil
			}
			// Warm up: every sender exists and has an open conversation, as in a running inbox.
			for range ingestSenders {
				if err := deliver(seq.Add(1)); err != nil {
					b.Fatal(err)
				}
			}
			before := stored()
			var lat latencies
			b.SetParallelism(ingestClients)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					t0 := time.Now()
					if err := deliver(seq.Add(1)); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				lat.add(mine)
			})
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			lat.report(b)
			if n := stored() - before; n != int64(b.N) {
				b.Fatalf("sent %d messages, stored %d", b.N, n)
			}
		})
	}
}

// inboxSize is the number of conversations of the tenant in BenchmarkInboxList.
const (
	inboxSize     = 100_000
	inboxContacts = 4_000
)

// seedInbox writes inboxContacts contacts and inboxSize conversations for Acme on ch with
// multi-row INSERTs, their last activity spread over 90 days. A quarter are closed, a fifth
// resolved; of the rest half are assigned to one of three agents; one in ten has a tag.
func seedInbox(b *testing.B, e *apptest.Env, ch provider.Channel) {
	b.Helper()
	ctx := tenant.WithOrg(e.Ctx, e.Acme)
	tid := e.Acme.ID
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC().Truncate(time.Microsecond)
	// insert writes rows in statements of up to 100 rows (the SQLite driver binds parameters in
	// quadratic time), in transactions of 10,000 with a page cache that holds the indexes.
	insert := func(table string, cols []string, rows [][]any) {
		one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
		for start := 0; start < len(rows); start += 10_000 {
			part := rows[start:min(start+10_000, len(rows))]
			err := e.App.DB.Tx(ctx, func(ctx context.Context) error {
				return e.App.DB.Run(ctx, func(tx *gorm.DB) error {
					if e.App.DB.Dialect() == tenant.SQLite {
						if err := tx.Exec("PRAGMA cache_size = -262144").Error; err != nil {
							return err
						}
						defer tx.Exec("PRAGMA cache_size = -32768") // what db.SQLiteDSN gives every connection, again for this pooled one
					}
					for i := 0; i < len(part); i += 100 {
						chunk := part[i:min(i+100, len(part))]
						args := make([]any, 0, len(chunk)*len(cols))
						for _, r := range chunk {
							args = append(args, r...)
						}
						q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " +
							strings.TrimSuffix(strings.Repeat(one+", ", len(chunk)), ", ")
						if err := tx.Exec(q, args...).Error; err != nil {
							return err
						}
					}
					return nil
				})
			})
			if err != nil {
				b.Fatalf("seed %s: %v", table, err)
			}
		}
	}
	contactIDs := make([]uuid.UUID, inboxContacts)
	var rows [][]any
	for i := range contactIDs {
		contactIDs[i] = ids.New()
		name := fmt.Sprintf("客户 %04d", i)
		rows = append(rows, []any{tid, contactIDs[i], name, strings.ToLower(name), "{}", now, now})
	}
	insert("contacts", []string{"tenant_id", "id", "name", "search", "attributes", "created_at", "updated_at"}, rows)

	agents := []uuid.UUID{ids.New(), ids.New(), ids.New()}
	var convs, tags [][]any
	for i := range inboxSize {
		at := now.Add(-time.Duration(rng.Int64N(int64(90*24*time.Hour/time.Microsecond))) * time.Microsecond)
		id := ids.New()
		status, resolved := "open", (*time.Time)(nil)
		switch p := rng.IntN(100); {
		case p < 25:
			status, resolved = "closed", &at
		case p < 45:
			status, resolved = "resolved", &at
		case p < 55:
			status = "pending"
		}
		var assignee *uuid.UUID
		if resolved == nil && rng.IntN(2) == 0 {
			assignee = &agents[rng.IntN(len(agents))]
		}
		convs = append(convs, []any{tid, id, ch.ID, contactIDs[rng.IntN(inboxContacts)], status, assignee, "{}", rng.IntN(3),
			fmt.Sprintf("你好，我的订单 #%d 还没到，请帮我查一下", i), resolved, at, at, at})
		if rng.IntN(10) == 0 {
			tags = append(tags, []any{tid, id, "vip"})
		}
	}
	insert("conversations", []string{"tenant_id", "id", "channel_id", "contact_id", "status", "assignee_id", "attributes", "unread",
		"preview", "resolved_at", "last_message_at", "created_at", "updated_at"}, convs)
	insert("conversation_tags", []string{"tenant_id", "conversation_id", "tag"}, tags)

	// The planner's statistics, as autovacuum (PostgreSQL) or PRAGMA optimize (SQLite) would
	// have them for a table of this size; ANALYZE needs the tables' owner on PostgreSQL.
	if e.App.DB.Dialect() == tenant.Postgres {
		owner, err := sql.Open("pgx", e.App.Cfg.MigrateDatabaseURL)
		if err != nil {
			b.Fatal(err)
		}
		defer owner.Close()
		if _, err := owner.Exec(`ANALYZE contacts, conversations, conversation_tags`); err != nil {
			b.Fatal(err)
		}
	} else if err := e.App.DB.Gorm().Exec(`ANALYZE`).Error; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkInboxList measures one page of 50 of a tenant's inbox of 100,000 conversations
// (4,000 contacts) through the whole HTTP stack (API key, RBAC, the list query, tags, contact
// names and channel types, JSON) over a real 127.0.0.1 listener, one request at a time:
//
//	first   GET /api/v1/conversations?limit=50: every status but closed, newest first
//	open_unassigned  ?status=open&assignee=none
//	deep    ?cursor= the position half-way down the inbox
//
// Target: < 20 ms per page.
func BenchmarkInboxList(b *testing.B) {
	for _, d := range []tenant.Dialect{tenant.SQLite, tenant.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			e := benchEnv(b, d)
			owner := e.Login("owner@acme.test")
			ch := benchChannel(b, e, owner, apichannel.Fixture())
			key := owner.Do("POST", "/api/v1/api-keys", map[string]any{"name": "bench", "role": "tenant_admin"}).Want(201).JSON()["key"].(string)
			t0 := time.Now()
			seedInbox(b, e, ch)
			b.Logf("seeded %d conversations in %s", inboxSize, time.Since(t0).Round(time.Millisecond))

			// The deep cursor: the conversation half-way down the unclosed inbox, and the one
			// after it, which the deep page must start with.
			var mid []conversations.Conversation
			if err := e.App.DB.Run(tenant.WithOrg(e.Ctx, e.Acme), func(tx *gorm.DB) error {
				return tx.Where("status <> 'closed'").Order("last_message_at DESC, id DESC").Offset(inboxSize * 3 / 8).Limit(2).Find(&mid).Error
			}); err != nil || len(mid) != 2 {
				b.Fatal(len(mid), err)
			}
			base, client := listen(b, e)
			fetch := func(path string) ([]byte, error) {
				req, err := http.NewRequest("GET", base+path, nil)
				if err != nil {
					return nil, err
				}
				req.Header.Set("Authorization", "Bearer "+key)
				res, err := client.Do(req)
				if err != nil {
					return nil, err
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				if res.StatusCode != 200 {
					return nil, fmt.Errorf("status %d: %s", res.StatusCode, body)
				}
				return body, nil
			}
			get := func(query string) ([]map[string]any, error) {
				body, err := fetch("/api/v1/conversations?" + query)
				if err != nil {
					return nil, err
				}
				var page struct {
					Items []map[string]any `json:"items"`
				}
				if err := json.Unmarshal(body, &page); err != nil {
					return nil, err
				}
				return page.Items, nil
			}
			for _, v := range []struct{ name, query string }{
				{"first", "limit=50"},
				{"open_unassigned", "limit=50&status=open&assignee=none"},
				{"deep", "limit=50&cursor=" + url.QueryEscape(conversations.EncodeCursor(mid[0]))},
			} {
				items, err := get(v.query)
				if err != nil || len(items) != 50 {
					b.Fatalf("%s: %d items, %v", v.name, len(items), err)
				}
				if v.name == "deep" && items[0]["id"] != mid[1].ID.String() {
					b.Fatalf("the deep page starts at %v, want %s", items[0]["id"], mid[1].ID)
				}
				b.Run(v.name, func(b *testing.B) {
					var lat latencies
					mine := make([]time.Duration, 0, 1024)
					for b.Loop() {
						t := time.Now()
						if _, err := get(v.query); err != nil {
							b.Fatal(err)
						}
						mine = append(mine, time.Since(t))
					}
					lat.add(mine)
					lat.report(b)
				})
			}

			// The badge's counts: every conversation with unread messages that is not closed
			// (about half the inbox here), read from their partial index.
			var want int64
			if err := e.App.DB.Run(tenant.WithOrg(e.Ctx, e.Acme), func(tx *gorm.DB) error {
				return tx.Model(&conversations.Conversation{}).Where("unread > 0 AND status <> 'closed'").Count(&want).Error
			}); err != nil {
				b.Fatal(err)
			}
			body, err := fetch("/api/v1/conversations/unread-counts")
			var counts conversations.UnreadCounts
			if err != nil || json.Unmarshal(body, &counts) != nil || counts.All != want {
				b.Fatalf("unread counts %s (%v), want all %d", body, err, want)
			}
			b.Logf("%d conversations with unread messages", want)
			b.Run("unread_counts", func(b *testing.B) {
				var lat latencies
				mine := make([]time.Duration, 0, 1024)
				for b.Loop() {
					t := time.Now()
					if _, err := fetch("/api/v1/conversations/unread-counts"); err != nil {
						b.Fatal(err)
					}
					mine = append(mine, time.Since(t))
				}
				lat.add(mine)
				lat.report(b)
			})
		})
	}
}
