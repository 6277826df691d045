package conversations_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/internal/events"
	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/modules/conversations"
)

// TestGroupStoresWhatAloneWould: the same messages, from the same starting inbox, are stored in
// Acme as groups (the few-statement group path, with and without a sender of several
// identities; the committer's fallback when a group fails; a group with thread keys written
// message by message) and in Globex one delivery at a time. Both tenants must end with the same
// contacts, conversations (status, unread, preview, times), messages, attachments, usage
// events, realtime journal and domain events; and every message.created event must name the
// message's author, whichever conversation it joined.
func TestGroupStoresWhatAloneWould(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := scenarioEnv(t, d)
			chA, chB := apiChannels(t, e)
			chA2, chB2 := apiChannels(t, e) // a second channel in each tenant
			var mu sync.Mutex
			published := map[uuid.UUID][]events.Event{}
			e.App.Bus.Subscribe("*", func(_ context.Context, ev events.Event) {
				mu.Lock()
				published[ev.TenantID] = append(published[ev.TenantID], ev)
				mu.Unlock()
			})
			ctxA, resA := hookChannel(t, e, chA)
			_, resA2 := hookChannel(t, e, chA2)
			ctxB, resB := hookChannel(t, e, chB)
			_, resB2 := hookChannel(t, e, chB2)
			acme, globex := []provider.Channel{resA, resA2}, []provider.Channel{resB, resB2}

			// A delivery is a message on the first channel of its tenant, or on the second.
			type delivery struct {
				ch int
				m  provider.InboundMessage
			}
			base := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
			seq := 0
			msg := func(pid, from, name, text string) delivery {
				seq++
				return delivery{m: provider.InboundMessage{ProviderID: pid, From: []provider.Identity{{Kind: provider.IdentityExternal, Value: from}},
					Name: name, Text: text, OccurredAt: base.Add(time.Duration(seq) * time.Second)}}
			}
			inAcme := func(ds []delivery) []conversations.Delivery {
				out := make([]conversations.Delivery, len(ds))
				for i, d := range ds {
					out[i] = conversations.Delivery{Ch: acme[d.ch], M: d.m}
				}
				return out
			}
			outcome := func(stored bool, id uuid.UUID) string {
				switch {
				case stored:
					return "stored"
				case id != uuid.Nil:
					return "duplicate"
				}
				return "ignored"
			}
			alone := func(ds ...delivery) []string {
				var out []string
				for _, d := range ds {
					res, err := e.App.Inbox.Ingest(ctxB, globex[d.ch], provider.Batch{Messages: []provider.InboundMessage{d.m}})
					if err != nil {
						t.Fatalf("%s alone: %v", d.m.ProviderID, err)
					}
					switch {
					case res.Stored == 1:
						out = append(out, "stored")
					case res.Duplicates == 1:
						out = append(out, "duplicate")
					case res.Ignored == 1:
						out = append(out, "ignored")
					default:
						t.Fatalf("%s alone: %+v", d.m.ProviderID, res)
					}
				}
				return out
			}
			grouped := func(ds ...delivery) []string {
				ids, stored, err := e.App.Inbox.WriteAsGroup(ctxA, inAcme(ds))
				if err != nil {
					t.Fatal(err)
				}
				out := make([]string, len(ids))
				for i := range ids {
					out[i] = outcome(stored[i], ids[i])
				}
				return out
			}
			storedAsGroup := func(ds ...delivery) {
				if _, err := e.App.Inbox.StoreAsGroup(ctxA, inAcme(ds)); err != nil {
					t.Fatalf("group path: %v", err)
				}
			}

			// The inbox both tenants start from, stored one message at a time, then moved on by
			// an agent: a resolved and a closed conversation (a customer's next message opens a
			// new one), a snoozed and a pending one (reopened by it).
			setup := []delivery{
				msg("s-open", "open-a", "Ann", "你好"), msg("s-resolved", "resolved-b", "Bo", "hi"),
				msg("s-snoozed", "snoozed-c", "Cai", "hi"), msg("s-closed", "closed-d", "Dai", "hi"),
				msg("s-pending", "pending-g", "Gu", "hi"), msg("s-noname", "noname-f", "", "no name yet"),
				msg("s-noname-2", "noname-m", "", "no name either"),
			}
			snooze := base.Add(24 * time.Hour)
			moves := []struct {
				pid, status string
				until       *time.Time
			}{{"s-resolved", "resolved", nil}, {"s-snoozed", "snoozed", &snooze}, {"s-closed", "closed", nil}, {"s-pending", "pending", nil}}
			for _, side := range []struct {
				ctx context.Context
				chs []provider.Channel
			}{{ctxA, acme}, {ctxB, globex}} {
				for _, d := range setup {
					if _, err := e.App.Inbox.Ingest(side.ctx, side.chs[d.ch], provider.Batch{Messages: []provider.InboundMessage{d.m}}); err != nil {
						t.Fatal(err)
					}
				}
				for _, mv := range moves {
					conv := pluck(t, e, side.ctx, "messages", "conversation_id", "channel_id = ? AND provider_id = ?", side.chs[0].ID, mv.pid)
					st := mv.status
					if _, err := e.App.Inbox.Update(side.ctx, uuid.MustParse(conv[0]), conversations.UpdateInput{Status: &st, SnoozedUntil: mv.until}, nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			total := len(setup)

			// Group 1: every kind of simple message of senders with one identity, stored
			// together by the group path.
			autoReply := msg("g-auto", "open-a", "", "I am out of the office")
			autoReply.m.AutoReply = true
			photo := msg("g-photo", "open-a", "", "")
			photo.m.ContentType = provider.ContentImage
			photo.m.Media = []provider.Media{{ContentType: "image/png", Filename: "receipt.png", Data: []byte("\x89PNG\r\n\x1a\n fake png body")}}
			otherChannel := msg("g-channel-2", "open-a", "Ann", "on the other channel")
			otherChannel.ch = 1
			newOnBoth := msg("g-new-ch2", "new-e", "Eve", "and here")
			newOnBoth.ch = 1
			group1 := []delivery{
				msg("g-open", "open-a", "Ann", "还在吗？"), msg("g-resolved", "resolved-b", "Bo", "it broke again"),
				msg("g-new-1", "new-e", "Eve", "first"), msg("g-new-2", "new-e", "Eve", "second"),
				msg("g-resolved-2", "resolved-b", "Bo", "hello?"), autoReply,
				msg("g-snoozed", "snoozed-c", "Cai", "any news"), msg("g-snoozed-2", "snoozed-c", "Cai", "still there?"),
				msg("g-closed", "closed-d", "Dai", "new question"),
				msg("g-name", "noname-f", "Fang", "my name is Fang"), msg("g-name-2", "noname-f", "Fan", "Fang, not Fan"),
				msg("g-pending", "pending-g", "Gu", "here is the info"), photo, otherChannel, newOnBoth,
			}
			storedAsGroup(group1...)
			alone(group1...)
			total += len(group1)

			// Group 1b: a sender of several identities names a contact that had none; the same
			// contact's next message, by one identity, brings another name, which must not win.
			multi := msg("m-multi", "noname-m", "Mei", "two identities")
			multi.m.From = append(multi.m.From, provider.Identity{Kind: provider.IdentityEmail, Value: "mei@example.com"})
			group1b := []delivery{msg("m-before", "open-a", "Ann", "before"), multi, msg("m-single", "noname-m", "M2", "one identity"),
				msg("m-new", "new-n", "Nan", "hello")}
			storedAsGroup(group1b...)
			alone(group1b...)
			total += len(group1b)

			// Group 2: an auto-reply outside any thread and a redelivery fail the group; the
			// committer stores each message alone instead. Then a group failed by a redelivery
			// alone, and one holding the same message twice.
			bounce := msg("h-bounce", "bounce-x", "", "Delivery failed")
			bounce.m.AutoReply = true
			for _, g := range [][]delivery{
				{msg("h-after", "open-a", "Ann", "after"), bounce, group1[2], msg("h-new", "new-j", "Jin", "hello")},
				{msg("h-2", "open-a", "Ann", "again"), group1[3], msg("h-3", "new-j", "Jin", "again")},
			} {
				same(t, "group outcomes", grouped(g...), alone(g...))
			}
			twice, h4 := msg("h-twice", "snoozed-c", "Cai", "sent twice"), msg("h-4", "pending-g", "Gu", "more")
			same(t, "group outcomes", grouped(twice, h4, twice), alone(twice, h4, twice))
			total += 2 + 2 + 2

			// Group 3: thread keys, written message by message within the group; another
			// customer joins the first one's thread.
			thread := func(pid, from, key string) delivery {
				d := msg(pid, from, "", "about "+key)
				d.m.ThreadKey = key
				return d
			}
			group3 := []delivery{thread("k-1", "open-a", "order-7"), msg("k-2", "open-a", "", "plain"), thread("k-3", "open-a", "order-7"),
				thread("k-4", "new-k", "order-8"), thread("k-5", "other-l", "order-7")}
			grouped(group3...)
			alone(group3...)
			total += len(group3)

			a, b := inboxSnapshot(t, e, ctxA, acme...), inboxSnapshot(t, e, ctxB, globex...)
			for _, part := range []string{"contacts", "conversations", "messages", "attachments", "usage", "journal"} {
				same(t, part, a.parts[part], b.parts[part])
			}
			mu.Lock()
			evA, wrongA := a.events(published[e.Acme.ID])
			evB, wrongB := b.events(published[e.Globex.ID])
			mu.Unlock()
			same(t, "domain events", evA, evB)
			for _, w := range append(wrongA, wrongB...) {
				t.Errorf("message.created names another contact than the message's author: %s", w)
			}
			if n := len(a.parts["messages"]); n != total {
				t.Errorf("%d messages stored, want %d", n, total)
			}
			if !slices.Contains(a.parts["contacts"], `mei@example.com+noname-m name="Mei" search="mei  mei@example.com noname-m" active=true`) {
				t.Errorf("the name the several-identity sender gave was lost: %v", a.parts["contacts"])
			}
		})
	}
}

// inboxState is what a channel's inbox holds, with ids replaced by names that do not depend on
// the tenant: a contact by its identities, a conversation by its place in creation order, a
// message by its provider id.
type inboxState struct {
	parts  map[string][]string
	names  map[string]string // id → name
	author map[string]string // message id → its author's name
}

func (s inboxState) name(id string) string {
	if n, ok := s.names[id]; ok {
		return n
	}
	return "?" + id
}

// events names the domain events with the conversations' and messages' inbox names, and lists
// the message.created events that name another contact than the message's author.
func (s inboxState) events(evs []events.Event) (out, wrongContact []string) {
	for _, ev := range evs {
		if ev.ConversationID == uuid.Nil {
			continue
		}
		data, _ := json.Marshal(ev.Data)
		line := fmt.Sprintf("%s conv=%s msg=%s contact=%s %s", ev.Kind, s.name(ev.ConversationID.String()),
			s.name(ev.MessageID.String()), s.name(ev.ContactID.String()), data)
		out = append(out, line)
		if ev.Kind == conversations.EventMessageCreated && s.author[ev.MessageID.String()] != s.name(ev.ContactID.String()) {
			wrongContact = append(wrongContact, line)
		}
	}
	return out, wrongContact
}

func inboxSnapshot(t *testing.T, e *apptest.Env, ctx context.Context, chs ...provider.Channel) inboxState {
	t.Helper()
	s := inboxState{parts: map[string][]string{}, names: map[string]string{uuid.Nil.String(): "-"}, author: map[string]string{}}
	var chIDs []uuid.UUID
	for i, ch := range chs {
		chIDs = append(chIDs, ch.ID)
		s.names[ch.ID.String()] = fmt.Sprintf("ch%d", i)
	}
	ts := func(v *time.Time) string {
		if v == nil {
			return "null"
		}
		return v.UTC().Format(time.RFC3339Nano)
	}
	err := e.App.DB.Run(ctx, func(tx *gorm.DB) error {
		var ids []struct{ ContactID, Value string }
		if err := tx.Table("contact_identities").Select("contact_id, value").Order("value").Scan(&ids).Error; err != nil {
			return err
		}
		for _, id := range ids {
			if n := s.names[id.ContactID]; n != "" {
				s.names[id.ContactID] = n + "+" + id.Value
			} else {
				s.names[id.ContactID] = id.Value
			}
		}
		var contacts []struct {
			ID, Name, Search string
			LastActivityAt   *time.Time
		}
		if err := tx.Table("contacts").Select("id, name, search, last_activity_at").Scan(&contacts).Error; err != nil {
			return err
		}
		for _, c := range contacts {
			s.parts["contacts"] = append(s.parts["contacts"], fmt.Sprintf("%s name=%q search=%q active=%v", s.name(c.ID), c.Name, c.Search, c.LastActivityAt != nil))
		}
		slices.Sort(s.parts["contacts"])

		var convs []struct {
			ID, ChannelID, ContactID, Status, Preview, Subject, ThreadKey string
			Unread                                                        int
			LastMessageAt                                                 time.Time
			SnoozedUntil, ResolvedAt                                      *time.Time
		}
		if err := tx.Table("conversations").Where("channel_id IN ?", chIDs).Order("id").Scan(&convs).Error; err != nil {
			return err
		}
		for i, c := range convs {
			s.names[c.ID] = fmt.Sprintf("c%d", i)
			s.parts["conversations"] = append(s.parts["conversations"], fmt.Sprintf("c%d %s contact=%s status=%s unread=%d preview=%q subject=%q thread=%q last=%s snoozed=%s resolved=%v",
				i, s.name(c.ChannelID), s.name(c.ContactID), c.Status, c.Unread, c.Preview, c.Subject, c.ThreadKey, ts(&c.LastMessageAt), ts(c.SnoozedUntil), c.ResolvedAt != nil))
		}

		var msgs []struct {
			ID, ChannelID, ConversationID, AuthorKind, AuthorID, Direction, Content, ContentType, Status, Meta, ProviderID string
			CreatedAt                                                                                                      time.Time
		}
		if err := tx.Table("messages").Where("channel_id IN ?", chIDs).Order("created_at, provider_id").Scan(&msgs).Error; err != nil {
			return err
		}
		for _, m := range msgs {
			s.names[m.ID] = m.ProviderID
			s.author[m.ID] = s.name(m.AuthorID)
			s.parts["messages"] = append(s.parts["messages"], fmt.Sprintf("%s %s conv=%s %s %s by %s %q %s %s meta=%s at %s",
				m.ProviderID, s.name(m.ChannelID), s.name(m.ConversationID), m.Direction, m.AuthorKind, s.name(m.AuthorID), m.Content, m.ContentType, m.Status, m.Meta, ts(&m.CreatedAt)))
		}

		var atts []struct {
			MessageID, ConversationID, Filename, ContentType, Status, Sha256 string
			Size                                                             int64
		}
		if err := tx.Table("attachments").Scan(&atts).Error; err != nil {
			return err
		}
		for _, a := range atts {
			s.parts["attachments"] = append(s.parts["attachments"], fmt.Sprintf("%s conv=%s %s %s %s %d %s",
				s.name(a.MessageID), s.name(a.ConversationID), a.Filename, a.ContentType, a.Status, a.Size, a.Sha256))
		}
		slices.Sort(s.parts["attachments"])

		var usage []struct {
			Meter, IdempotencyKey, Channel, Dimensions string
			Quantity                                   int64
			OccurredAt                                 time.Time
		}
		if err := tx.Table("usage_events").Where("source = ?", "conversations").Scan(&usage).Error; err != nil {
			return err
		}
		for _, u := range usage {
			key := u.IdempotencyKey
			for _, ch := range chs {
				key = strings.Replace(key, ch.ID.String(), s.name(ch.ID.String()), 1)
			}
			if id, ok := strings.CutPrefix(key, "conv:"); ok {
				key = "conv:" + s.name(id)
			}
			dims := u.Dimensions
			for id, n := range s.names {
				dims = strings.ReplaceAll(dims, id, n)
			}
			s.parts["usage"] = append(s.parts["usage"], fmt.Sprintf("%s %d %s %s %s at %s", u.Meter, u.Quantity, key, u.Channel, dims, ts(&u.OccurredAt)))
		}
		slices.Sort(s.parts["usage"])

		var journal []struct{ Kind, ConversationID string }
		if err := tx.Table("realtime_events").Select("kind, conversation_id").Order("id").Scan(&journal).Error; err != nil {
			return err
		}
		for _, j := range journal {
			s.parts["journal"] = append(s.parts["journal"], j.Kind+" "+s.name(j.ConversationID))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// apiChannels opens an api channel for Acme and one, with its own secret, for Globex.
func apiChannels(t *testing.T, e *apptest.Env) (acme, globex provider.Channel) {
	t.Helper()
	f := apichannel.Fixture()
	acme = openChannel(t, e.Login("owner@acme.test"), e.Acme, f, "http://127.0.0.1:9", nil)
	globex = openChannel(t, e.Login("owner@globex.test"), e.Globex, f, "http://127.0.0.1:9",
		map[string]string{apichannel.KeySecret: "globex-own-api-channel-secret-0123456789"})
	return acme, globex
}

// hookChannel returns the context and channel a webhook of ch is ingested with, as the hook
// route resolves them.
func hookChannel(t *testing.T, e *apptest.Env, ch provider.Channel) (context.Context, provider.Channel) {
	t.Helper()
	ctx, resolved, err := e.App.Channels.Resolve(e.Ctx, "hook:"+ch.PublicID, ch.Type)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, resolved
}

// same fails unless got and want hold the same lines in the same order, showing both.
func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	t.Errorf("%s differ:\n  grouped:\n    %s\n  alone:\n    %s", what, strings.Join(got, "\n    "), strings.Join(want, "\n    "))
}

// TestGroupWritesStayInTheirTenant: the group path's statements name their tenant themselves
// (a join, and a raw UPDATE the tenant filter does not rewrite). A Globex group from a sender
// id Acme also knows makes Globex its own contact and conversation and leaves Acme's as they
// were, and Globex touching Acme's conversation by id changes nothing.
func TestGroupWritesStayInTheirTenant(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := scenarioEnv(t, d)
			chA, chB := apiChannels(t, e)
			ctxA, resA := hookChannel(t, e, chA)
			ctxB, resB := hookChannel(t, e, chB)
			old := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
			m := func(pid, text string) provider.InboundMessage {
				return provider.InboundMessage{ProviderID: pid, From: []provider.Identity{{Kind: provider.IdentityExternal, Value: "shared-1"}},
					Name: "Acme's name for them", Text: text, OccurredAt: old}
			}
			if _, err := e.App.Inbox.Ingest(ctxA, resA, provider.Batch{Messages: []provider.InboundMessage{m("a-1", "to Acme")}}); err != nil {
				t.Fatal(err)
			}
			acme := func() []string {
				return append(pluck(t, e, ctxA, "conversations", "preview || ' ' || unread || ' ' || status", "1 = 1"),
					pluck(t, e, ctxA, "contacts", "name || ' ' || last_activity_at", "1 = 1")...)
			}
			before := acme()
			convA := pluck(t, e, ctxA, "conversations", "id", "1 = 1")[0]

			if _, err := e.App.Inbox.StoreAsGroup(ctxB, []conversations.Delivery{{Ch: resB, M: m("b-1", "to Globex")}, {Ch: resB, M: m("b-2", "again")}}); err != nil {
				t.Fatal(err)
			}
			if err := e.App.Inbox.TouchConversation(ctxB, uuid.MustParse(convA), time.Now(), "written from Globex"); err != nil {
				t.Fatal(err)
			}
			same(t, "Acme's conversation and contact", acme(), before)
			if n := count(t, e, e.Globex, "contacts", ""); n != 1 {
				t.Errorf("Globex has %d contacts, want its own one", n)
			}
			if got := pluck(t, e, ctxB, "conversations", "preview || ' ' || unread", "1 = 1"); !slices.Equal(got, []string{"again 2"}) {
				t.Errorf("Globex conversations: %v", got)
			}
			if n := count(t, e, e.Globex, "messages", "conversation_id = ?", convA); n != 0 {
				t.Errorf("%d Globex messages in Acme's conversation", n)
			}
		})
	}
}
