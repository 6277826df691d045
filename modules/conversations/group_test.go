package conversations_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/modules/conversations"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// runAll runs jobs on workers goroutines and returns their errors, in the jobs' order.
func runAll(workers int, jobs []func() error) []error {
	errs := make([]error, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				errs[i] = jobs[i]()
			}
		})
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// provider5xx delivers webhooks as a provider does: a delivery answered 5xx is made again.
type provider5xx struct {
	e       *apptest.Env
	retried atomic.Int64
}

// job posts r until it is answered 200, or fails: any other answer, or a fourth 5xx.
func (p *provider5xx) job(r provider.Request) func() error {
	return func() error {
		for attempt := 0; ; attempt++ {
			st, err := post(p.e, r)
			switch {
			case err != nil:
				return err
			case st == http.StatusOK:
				return nil
			case st >= 500 && attempt < 3:
				p.retried.Add(1)
				continue
			}
			return fmt.Errorf("status %d", st)
		}
	}
}

// settle fails the test if a delivery had to be made again: every delivery must be answered
// 200 the first time, also on PostgreSQL, where a tenant's group transactions run in parallel
// (each sender in one lane, so they never wait on each other's contacts).
func (p *provider5xx) settle(t *testing.T, _ tenant.Dialect) {
	t.Helper()
	if n := p.retried.Load(); n != 0 {
		t.Errorf("%d deliveries answered 5xx and were made again; every delivery must be answered 200", n)
	}
}

// pluck reads one column of a table's rows, as ctx sees them.
func pluck(t *testing.T, e *apptest.Env, ctx context.Context, table, column, where string, args ...any) []string {
	t.Helper()
	var out []string
	if err := e.App.DB.Run(ctx, func(tx *gorm.DB) error {
		return tx.Table(table).Where(where, args...).Pluck(column, &out).Error
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// once fails unless every value of got is one of want and each of want is there exactly once.
func once(t *testing.T, what string, got, want []string) {
	t.Helper()
	n := map[string]int{}
	for _, g := range got {
		n[g]++
	}
	for _, w := range want {
		if n[w] != 1 {
			t.Errorf("%s: %q %d times, want once", what, w, n[w])
		}
		delete(n, w)
	}
	if len(n) > 0 {
		t.Errorf("%s: unexpected %v", what, slices.Sorted(maps.Keys(n)))
	}
}

// channelState is what a channel of org must hold once its deliveries are in.
type channelState struct {
	org     tenant.Org
	ch      provider.Channel
	pids    []string // provider ids, each stored once
	senders []string // external ids, each one contact with one open conversation here
	// Before the deliveries: the org's contacts and conversation usage events on the channel's type.
	contacts0, convEvents0 int64
}

func newChannelState(t *testing.T, e *apptest.Env, org tenant.Org, ch provider.Channel) *channelState {
	return &channelState{org: org, ch: ch, contacts0: count(t, e, org, "contacts", ""),
		convEvents0: count(t, e, org, "usage_events", "meter = 'conversations' AND channel = ?", ch.Type)}
}

// check asserts that each message was stored once with its usage and realtime events, and each
// sender is one contact with one open conversation, counted once.
func (s *channelState) check(t *testing.T, e *apptest.Env) {
	t.Helper()
	ctx := tenant.WithOrg(e.Ctx, s.org)
	var msgs []conversations.Message
	if err := e.App.DB.Run(ctx, func(tx *gorm.DB) error { return tx.Where("channel_id = ?", s.ch.ID).Find(&msgs).Error }); err != nil {
		t.Fatal(err)
	}
	var pids, msgIDs []string
	days := map[string]bool{}
	for _, m := range msgs {
		if m.ProviderID != nil {
			pids = append(pids, *m.ProviderID)
		}
		msgIDs = append(msgIDs, m.ID.String())
		days[m.CreatedAt.UTC().Format("2006-01-02")] = true
	}
	once(t, "messages by provider id", pids, s.pids)

	var wantKeys []string
	for _, p := range s.pids {
		wantKeys = append(wantKeys, "in:"+s.ch.ID.String()+":"+p)
	}
	once(t, "interactions", pluck(t, e, ctx, "usage_events", "idempotency_key", "meter = 'interactions' AND idempotency_key LIKE ?", "in:"+s.ch.ID.String()+":%"), wantKeys)

	var convs []conversations.Conversation
	if err := e.App.DB.Run(ctx, func(tx *gorm.DB) error { return tx.Where("channel_id = ?", s.ch.ID).Find(&convs).Error }); err != nil {
		t.Fatal(err)
	}
	var convIDs, convKeys []string
	byContact := map[uuid.UUID]int{}
	for _, c := range convs {
		convIDs, convKeys = append(convIDs, c.ID.String()), append(convKeys, "conv:"+c.ID.String())
		if c.Status == "open" {
			byContact[c.ContactID]++
		}
	}
	if len(convs) != len(s.senders) {
		t.Errorf("%d conversations on the channel for %d senders", len(convs), len(s.senders))
	}
	for _, sender := range s.senders {
		owners := pluck(t, e, ctx, "contact_identities", "contact_id", "kind = ? AND value = ?", provider.IdentityExternal, sender)
		if len(owners) != 1 {
			t.Errorf("sender %s: %d identities", sender, len(owners))
			continue
		}
		if n := byContact[uuid.MustParse(owners[0])]; n != 1 {
			t.Errorf("sender %s: %d open conversations on the channel, want 1", sender, n)
		}
	}
	if got := count(t, e, s.org, "contacts", "") - s.contacts0; got != int64(len(s.senders)) {
		t.Errorf("%d new contacts for %d senders", got, len(s.senders))
	}
	if len(convKeys) > 0 {
		once(t, "conversation events", pluck(t, e, ctx, "usage_events", "idempotency_key", "meter = 'conversations' AND idempotency_key IN ?", convKeys), convKeys)
	}
	if got := count(t, e, s.org, "usage_events", "meter = 'conversations' AND channel = ?", s.ch.Type) - s.convEvents0; got != int64(len(convs)) {
		t.Errorf("%d new conversation events for %d conversations", got, len(convs))
	}

	// The realtime journal: one message.created per message, one conversation.created per
	// conversation.
	var created, opened []string
	if len(convIDs) > 0 {
		var rows []struct {
			Kind    string
			Payload string
		}
		if err := e.App.DB.Run(ctx, func(tx *gorm.DB) error {
			return tx.Table("realtime_events").Select("kind, payload").Where("conversation_id IN ?", convIDs).Scan(&rows).Error
		}); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			var p struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(r.Payload), &p); err != nil {
				t.Fatalf("realtime payload %q: %v", r.Payload, err)
			}
			switch r.Kind {
			case conversations.EventMessageCreated:
				created = append(created, p.ID)
			case conversations.EventConversationCreated:
				opened = append(opened, p.ID)
			}
		}
	}
	once(t, "message.created events", created, msgIDs)
	once(t, "conversation.created events", opened, convIDs)

	for day := range days {
		if n := count(t, e, s.org, "usage_dirty_days", "day = ?", day); n != 1 {
			t.Errorf("usage day %s marked %d times, want 1 row", day, n)
		}
	}
}

// TestConcurrentDeliveriesStoreEachMessageOnce: 200 signed deliveries on one api channel at
// once, from 20 new senders, a quarter of the provider ids delivered twice (together, or later
// when the first is stored or in flight), and auto-replies from unknown senders mixed in. Group
// commit must make no difference: each message once with its usage and realtime events, each
// sender one contact with one open conversation, and nothing of the auto-replies.
func TestConcurrentDeliveriesStoreEachMessageOnce(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := scenarioEnv(t, d)
			owner := e.Login("owner@acme.test")
			f := apichannel.Fixture()
			ch := openChannel(t, owner, e.Acme, f, "http://127.0.0.1:9", nil)
			state := newChannelState(t, e, e.Acme, ch)
			prov := &provider5xx{e: e}

			const distinct, senders, workers = 160, 20, 40
			for i := range senders {
				state.senders = append(state.senders, fmt.Sprintf("grp-cust-%02d", i))
			}
			// First 100 new messages, every sender's first ones among them: groups that commit.
			// Then the other 60 with 40 deliveries made again, at once or of a message of the
			// first 100, which fail their groups.
			var first, jobs []func() error
			for i := range distinct {
				pid := fmt.Sprintf("grp-%03d", i)
				state.pids = append(state.pids, pid)
				first = append(first, prov.job(f.Inbound(ch, pid, state.senders[i%senders], fmt.Sprintf("第 %d 条：我的订单还没到", i))))
			}
			jobs = append(jobs, first[:100]...)
			for i, k := 100, 0; i < distinct; i++ {
				jobs = append(jobs, first[i])
				switch i % 3 {
				case 0:
					jobs = append(jobs, first[i]) // at the same moment: often the same group
				case 1:
					jobs = append(jobs, first[k*5]) // a redelivery of a message likely stored
					k++
				}
			}
			// The api channel cannot mark an auto-reply: they come through the service, as the
			// e-mail receiver's do, into the same tenant's groups.
			hookCtx, resolved := hookChannel(t, e, ch)
			var bouncers []string
			for i := range 5 {
				from := fmt.Sprintf("grp-bounce-%d", i)
				bouncers = append(bouncers, from)
				bounce := func() error {
					res, err := e.App.Inbox.Ingest(hookCtx, resolved, provider.Batch{Messages: []provider.InboundMessage{{
						ProviderID: from, From: []provider.Identity{{Kind: provider.IdentityExternal, Value: from}},
						Text: "I am out of the office", AutoReply: true, OccurredAt: time.Now()}}})
					if err == nil && (res.Ignored != 1 || res.Stored != 0) {
						err = fmt.Errorf("auto-reply outside any thread: %+v, want ignored", res)
					}
					return err
				}
				jobs = slices.Insert(jobs, 110+i*15, bounce)
			}
			if len(jobs) != 205 {
				t.Fatalf("%d jobs", len(jobs))
			}

			for i, err := range runAll(workers, jobs) {
				if err != nil {
					t.Errorf("job %d: %v", i, err)
				}
			}
			prov.settle(t, d)
			if t.Failed() {
				t.FailNow()
			}
			state.check(t, e)
			for _, b := range bouncers {
				if n := count(t, e, e.Acme, "contact_identities", "value = ?", b); n != 0 {
					t.Errorf("auto-reply sender %s left %d identities", b, n)
				}
				if n := count(t, e, e.Acme, "messages", "provider_id = ?", b); n != 0 {
					t.Errorf("auto-reply %s stored", b)
				}
			}
		})
	}
}

// TestGroupFailureKeepsOthers: the tenant's writes are held while a batch arrives, so the batch
// is stored in groups; it holds a redelivery of a stored message and a message sent twice, which
// fail their group. Every other message of the group is stored once all the same, the
// redeliveries are answered 200, and another tenant's deliveries at the same time (same sender
// ids) stay in that tenant.
func TestGroupFailureKeepsOthers(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := scenarioEnv(t, d)
			f := apichannel.Fixture()
			chA, chB := apiChannels(t, e)
			a, b := newChannelState(t, e, e.Acme, chA), newChannelState(t, e, e.Globex, chB)
			prov := &provider5xx{e: e}
			const senders = 6
			for i := range senders {
				a.senders = append(a.senders, fmt.Sprintf("shared-cust-%d", i))
				b.senders = append(b.senders, fmt.Sprintf("shared-cust-%d", i))
			}
			stored := f.Inbound(chA, "fail-stored", a.senders[0], "stored before the batch")
			e.Deliver(stored).Want(200)
			a.pids = append(a.pids, "fail-stored")

			var jobs []func() error
			for i := range 30 {
				pa, pb := fmt.Sprintf("fail-a-%02d", i), fmt.Sprintf("fail-b-%02d", i)
				a.pids, b.pids = append(a.pids, pa), append(b.pids, pb)
				ja := prov.job(f.Inbound(chA, pa, a.senders[i%senders], "Acme "+pa))
				jobs = append(jobs, ja, prov.job(f.Inbound(chB, pb, b.senders[i%senders], "Globex "+pb)))
				switch i {
				case 5, 15, 25:
					jobs = append(jobs, prov.job(stored)) // the provider delivers a stored message again
				case 10:
					jobs = append(jobs, ja) // twice in the same batch
				}
			}

			// Hold Acme's writes (SQLite: the one writer; PostgreSQL: the usage day's row every
			// ingest transaction bumps) until the batch waits behind them.
			acme := tenant.WithOrg(e.Ctx, e.Acme)
			held, release, holdErr := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			go func() {
				holdErr <- e.App.DB.Tx(acme, func(ctx context.Context) error {
					err := e.App.DB.Run(ctx, func(tx *gorm.DB) error {
						return tx.Table("usage_dirty_days").Where("day = ?", time.Now().UTC().Format("2006-01-02")).
							Update("version", gorm.Expr("version")).Error
					})
					close(held)
					if err == nil {
						<-release
					}
					return err
				})
			}()
			<-held
			errs := make(chan []error, 1)
			go func() { errs <- runAll(len(jobs), jobs) }()
			time.Sleep(300 * time.Millisecond)
			close(release)
			if err := <-holdErr; err != nil {
				t.Fatal(err)
			}
			for i, err := range <-errs {
				if err != nil {
					t.Errorf("delivery %d: %v", i, err)
				}
			}
			prov.settle(t, d)
			if t.Failed() {
				t.FailNow()
			}
			a.check(t, e)
			b.check(t, e)

			// No row of one tenant carries the other's channel, conversation or sender.
			plat := e.App.DB.AsPlatform(e.Ctx, "group commit test: rows across tenants")
			for _, s := range []struct {
				own   tenant.Org
				ch    provider.Channel
				other tenant.Org
			}{{e.Acme, chA, e.Globex}, {e.Globex, chB, e.Acme}} {
				for _, q := range []struct{ table, where string }{
					{"messages", "channel_id = ?"},
					{"conversations", "channel_id = ?"},
					{"realtime_events", "conversation_id IN (SELECT id FROM conversations WHERE channel_id = ?)"},
				} {
					if n := len(pluck(t, e, plat, q.table, "tenant_id", q.where+" AND tenant_id <> ?", s.ch.ID, s.own.ID)); n != 0 {
						t.Errorf("%d %s rows of %s's channel belong to another tenant", n, q.table, s.own.Slug)
					}
				}
				if n := len(pluck(t, e, plat, "usage_events", "tenant_id", "idempotency_key LIKE ? AND tenant_id <> ?", "in:"+s.ch.ID.String()+":%", s.own.ID)); n != 0 {
					t.Errorf("%d usage events of %s's channel belong to another tenant", n, s.own.Slug)
				}
				if n := count(t, e, s.other, "messages", "channel_id = ?", s.ch.ID); n != 0 {
					t.Errorf("%s sees %d messages of %s's channel", s.other.Slug, n, s.own.Slug)
				}
			}
		})
	}
}
