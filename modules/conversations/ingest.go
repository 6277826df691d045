package conversations

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/internal/events"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/modules/contacts"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// IngestResult says what one delivery did.
type IngestResult struct {
	Stored     int         `json:"stored"`
	Duplicates int         `json:"duplicates"`
	Ignored    int         `json:"ignored"`
	Statuses   int         `json:"statuses"`
	Calls      int         `json:"calls"`
	MessageIDs []uuid.UUID `json:"message_ids"`
}

// errDuplicate rolls back a message that another delivery stored first.
var errDuplicate = errors.New("conversations: duplicate delivery")

// errNoThread rolls back an auto-reply that belongs to no thread, with the contact its sender
// would have become: a bounce or a vacation responder leaves nothing behind.
var errNoThread = errors.New("conversations: auto-reply outside any thread")

const (
	maxContent = 64 << 10
	maxPreview = 140
)

// Ingest stores one delivery of a channel: its messages (each grouped with other messages of the
// tenant arriving at the same time, see committer), delivery statuses and call events, each in
// a transaction with its usage and realtime events. ctx names the channel's tenant.
func (s *Service) Ingest(ctx context.Context, ch provider.Channel, b provider.Batch) (IngestResult, error) {
	var res IngestResult
	for _, m := range b.Messages {
		id, stored, err := s.ingestGrouped(ctx, ch, m)
		switch {
		case err != nil:
			return res, err
		case stored:
			res.Stored++
			res.MessageIDs = append(res.MessageIDs, id)
		case id != uuid.Nil:
			res.Duplicates++
		default:
			res.Ignored++
		}
	}
	for _, st := range b.Statuses {
		ok, err := s.applyStatus(ctx, ch, st)
		if err != nil {
			return res, err
		}
		if ok {
			res.Statuses++
		}
	}
	for _, c := range b.Calls {
		if err := s.ingestCall(ctx, ch, c); err != nil {
			return res, err
		}
		res.Calls++
	}
	return res, nil
}

func clipText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func preview(text, contentType string) string {
	text = strings.Join(strings.Fields(text), " ")
	if text == "" && contentType != provider.ContentText {
		return "[" + contentType + "]"
	}
	if utf8.RuneCountInString(text) > maxPreview {
		text = string([]rune(text)[:maxPreview]) + "…"
	}
	return text
}

// providerKey is the stored provider id of an inbound message: the provider's, or a hash of
// the content when a provider gave none (so a redelivery is still recognised).
func providerKey(m provider.InboundMessage) string {
	if m.ProviderID != "" {
		return clipText(m.ProviderID, 255)
	}
	h := sha256.New()
	for _, id := range m.From {
		h.Write([]byte(id.Kind + ":" + id.Value + "\n"))
	}
	h.Write([]byte(m.OccurredAt.UTC().Format(time.RFC3339Nano) + "\n" + m.Text))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// inbound is one inbound message made ready to store: normalised, its key computed and the
// bytes that came with it written.
type inbound struct {
	ch    provider.Channel
	m     provider.InboundMessage
	pid   string
	blobs []blob
}

// blob is an attachment of an inbound message, with where its bytes went (if they came along).
type blob struct {
	media provider.Media
	id    uuid.UUID
	key   string
	sum   string
}

// ingestMessage stores one inbound message in the transaction in ctx, or in its own. It returns
// the message id and whether it was stored now; a known delivery returns the stored id and
// false; an auto-reply that belongs to no thread returns uuid.Nil and false.
func (s *Service) ingestMessage(ctx context.Context, ch provider.Channel, m provider.InboundMessage) (uuid.UUID, bool, error) {
	in, err := s.prepare(ctx, ch, m)
	if err != nil {
		return uuid.Nil, false, err
	}
	return s.storeAlone(ctx, &in)
}

// ingestGrouped stores one inbound message as ingestMessage does, grouped with other messages
// of the tenant arriving at the same time when ctx carries no transaction of its own.
func (s *Service) ingestGrouped(ctx context.Context, ch provider.Channel, m provider.InboundMessage) (uuid.UUID, bool, error) {
	if tenant.InTx(ctx) {
		return s.ingestMessage(ctx, ch, m)
	}
	in, err := s.prepare(ctx, ch, m)
	if err != nil {
		return uuid.Nil, false, err
	}
	return s.group.submit(ctx, &in)
}

// prepare normalises an inbound message and writes its attachment bytes. They are written
// before the transaction, so the transaction never waits on storage; a rolled-back delivery
// leaves an unreferenced blob, never a row without its file.
func (s *Service) prepare(ctx context.Context, ch provider.Channel, m provider.InboundMessage) (inbound, error) {
	tid, ok := tenant.ID(ctx)
	if !ok {
		return inbound{}, fmt.Errorf("conversations: ingest: %w", tenant.ErrNoTenant)
	}
	in := inbound{ch: ch, pid: providerKey(m)}
	if m.OccurredAt.IsZero() || m.OccurredAt.After(s.now().Add(5*time.Minute)) {
		m.OccurredAt = s.now()
	}
	m.OccurredAt = m.OccurredAt.UTC()
	if m.ContentType == "" {
		m.ContentType = provider.ContentText
	}
	in.m = m
	for _, md := range m.Media {
		b := blob{media: md, id: ids.New()}
		if len(md.Data) > 0 && int64(len(md.Data)) <= s.opts.MaxAttachmentBytes {
			b.key = fmt.Sprintf("%s/%s", tid, b.id)
			sum := sha256.Sum256(md.Data)
			b.sum = hex.EncodeToString(sum[:])
			if err := s.blobs.Put(ctx, b.key, bytes.NewReader(md.Data), int64(len(md.Data)), md.ContentType); err != nil {
				return inbound{}, fmt.Errorf("conversations: store attachment: %w", err)
			}
		}
		in.blobs = append(in.blobs, b)
	}
	return in, nil
}

// storeAlone stores a prepared message in the transaction in ctx or in one of its own, and
// says what became of it as ingestMessage does.
func (s *Service) storeAlone(ctx context.Context, in *inbound) (uuid.UUID, bool, error) {
	var msgID uuid.UUID
	var fetch []uuid.UUID
	// A delivery seen before is not looked up first: the message's insert finds it on the
	// unique (channel, provider id) key and rolls back what the transaction did until then.
	// Redeliveries are rare; the lookup cost every new message a statement in the write lock.
	err := s.db.TxRetrying(ctx, func(ctx context.Context) error {
		if err := s.lockThreads(ctx, []*inbound{in}); err != nil {
			return err
		}
		var err error
		msgID, fetch, err = s.store(ctx, in)
		return err
	})
	if errors.Is(err, errDuplicate) {
		return s.knownDelivery(ctx, in.ch.ID, in.pid)
	}
	if errors.Is(err, errNoThread) {
		return uuid.Nil, false, nil
	}
	if err != nil {
		return uuid.Nil, false, err
	}
	for _, a := range fetch {
		s.enqueueFetch(ctx, a)
	}
	return msgID, true, nil
}

// store writes a prepared message inside the transaction in ctx: its contact, its
// conversation, the message and its attachments, the conversation's update, the usage events
// and the realtime events. It returns the new message's id and the attachments to fetch once
// committed; errDuplicate and errNoThread say the transaction must roll back.
func (s *Service) store(ctx context.Context, in *inbound) (uuid.UUID, []uuid.UUID, error) {
	m := in.m
	contactID, _, err := s.contacts.Resolve(ctx, m.From, m.Name, m.Locale)
	if err != nil {
		return uuid.Nil, nil, err
	}
	conv, created, err := s.threadFor(ctx, in.ch, contactID, m)
	if err != nil {
		return uuid.Nil, nil, err
	}
	if conv.ID == uuid.Nil {
		return uuid.Nil, nil, errNoThread
	}
	ids, fetch, err := s.writePlaced(ctx, []placed{{in: in, contact: contactID, conv: &conv, created: created}})
	if err != nil {
		return uuid.Nil, nil, err
	}
	return ids[0], fetch[0], nil
}

// simple says whether a message can be stored by storeGroup: it joins its contact's live
// conversation on the channel or opens one, without e-mail threading headers or a provider
// thread key to look up.
func simple(in *inbound) bool {
	return len(in.m.References) == 0 && in.m.InReplyTo == "" && in.m.ThreadKey == ""
}

// storeGroup writes the prepared messages of a group, all simple, inside the transaction in
// ctx, as store called for each in turn would, in a few statements for the whole group: the
// senders are resolved together (contacts.ResolveAll), their live conversations read in one
// query, new conversations, messages and attachments inserted with one statement each and the
// conversations updated with one. It returns each message's id and its attachments to fetch
// once committed. A redelivery anywhere in the group is errDuplicate, and an auto-reply
// outside any thread errNoThread: the group is then rolled back and its messages stored alone.
func (s *Service) storeGroup(ctx context.Context, ins []*inbound) ([]uuid.UUID, [][]uuid.UUID, error) {
	tid, _ := tenant.ID(ctx)
	senders := make([]contacts.Sender, len(ins))
	for i, in := range ins {
		senders[i] = contacts.Sender{From: in.m.From, Name: in.m.Name, Locale: in.m.Locale}
	}
	who, err := s.contacts.ResolveAll(ctx, senders)
	if err != nil {
		return nil, nil, err
	}
	live, err := s.liveThreads(ctx, who)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	ps := make([]placed, len(ins))
	for i, in := range ins {
		key := threadKey{contact: who[i], channel: in.ch.ID}
		conv := live[key]
		created := false
		if conv == nil {
			if in.m.AutoReply {
				return nil, nil, errNoThread
			}
			c := newConversation(tid, in.ch, who[i], in.m, now)
			conv, created = &c, true
			live[key] = conv // the sender's next message joins it
		}
		ps[i] = placed{in: in, contact: who[i], conv: conv, created: created}
	}
	return s.writePlaced(ctx, ps)
}

// placed is an inbound message with the contact it comes from and the conversation it joins:
// found, or made by the message (created) and not yet inserted. Messages of one conversation
// share conv, which writePlaced moves on as each is stored.
type placed struct {
	in      *inbound
	contact uuid.UUID
	conv    *Conversation
	created bool
}

// writePlaced writes placed messages inside the transaction in ctx, as storing each in turn
// would: the conversations they open, the messages and their attachments (one statement each),
// the conversations' touches (one statement), then each message's usage, realtime and domain
// events, in order. It returns each message's id and its attachments to fetch once committed;
// a message stored before makes it errDuplicate.
func (s *Service) writePlaced(ctx context.Context, ps []placed) ([]uuid.UUID, [][]uuid.UUID, error) {
	tid, _ := tenant.ID(ctx)
	now := s.now()
	type stored struct {
		conv     Conversation // as the message found it
		reopened string
		msg      Message
	}
	out := make([]stored, len(ps))
	var opened []Conversation
	var msgs []Message
	var atts []Attachment
	fetch := make([][]uuid.UUID, len(ps))
	touches := map[uuid.UUID]*convTouch{}
	var touched []uuid.UUID
	for i, p := range ps {
		if p.created {
			opened = append(opened, *p.conv)
		}
		msg := newInbound(tid, p.in, p.conv.ID, p.contact, now)
		a, f := attachmentRows(tid, p.in, msg.ID, p.conv.ID, now)
		msg.Attachments = a
		atts, fetch[i] = append(atts, a...), f
		t := touches[p.conv.ID]
		if t == nil {
			t = &convTouch{}
			touches[p.conv.ID] = t
			touched = append(touched, p.conv.ID)
		}
		out[i] = stored{conv: *p.conv, msg: msg}
		// add moves conv on (it is open once a customer writes), as the next message of the
		// conversation would find it stored alone.
		out[i].reopened = t.add(p.conv, &msg, p.in.m.AutoReply)
		msgs = append(msgs, msg)
	}
	if len(opened) > 0 {
		if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&opened).Error }); err != nil {
			return nil, nil, fmt.Errorf("conversations: open conversations: %w", err)
		}
	}
	if err := s.insertInbound(ctx, msgs, atts); err != nil {
		return nil, nil, err
	}
	ts := make([]convTouch, len(touched))
	for i, id := range touched {
		ts[i] = *touches[id]
	}
	if err := s.touchConversations(ctx, ts); err != nil {
		return nil, nil, err
	}
	ids := make([]uuid.UUID, len(ps))
	for i, p := range ps {
		o := out[i]
		if err := s.announce(ctx, p.in, p.contact, o.conv, p.created, o.reopened, o.msg); err != nil {
			return nil, nil, err
		}
		ids[i] = o.msg.ID
	}
	return ids, fetch, nil
}

// threadKey names the live conversation a simple message joins.
type threadKey struct{ contact, channel uuid.UUID }

// liveThreads reads the live conversations (open, pending, snoozed) of the given contacts in
// one query, keeping the newest per contact and channel, as threadFor picks.
func (s *Service) liveThreads(ctx context.Context, contactIDs []uuid.UUID) (map[threadKey]*Conversation, error) {
	var rows []Conversation
	// "NOT IN" the two ended states rather than "IN" the three live ones: given the IN list,
	// SQLite reads the status index through every live conversation of the tenant instead of
	// seeking the contact index once a contact.
	if err := s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Select(threadColumns).Where("contact_id IN ? AND status NOT IN ('resolved', 'closed')", uniq(contactIDs)).Find(&rows).Error
	}); err != nil {
		return nil, fmt.Errorf("conversations: find threads: %w", err)
	}
	byKey := map[threadKey][]Conversation{}
	for _, c := range rows {
		k := threadKey{contact: c.ContactID, channel: c.ChannelID}
		byKey[k] = append(byKey[k], c)
	}
	out := make(map[threadKey]*Conversation, len(byKey))
	for k, cs := range byKey {
		out[k] = newest(cs)
	}
	return out, nil
}

// newest is the conversation opened last of cs (ids are time-ordered), or nil.
func newest(cs []Conversation) *Conversation {
	var n *Conversation
	for i := range cs {
		if n == nil || bytes.Compare(cs[i].ID[:], n.ID[:]) > 0 {
			n = &cs[i]
		}
	}
	return n
}

func uniq(ids []uuid.UUID) []uuid.UUID {
	seen := make(map[uuid.UUID]bool, len(ids))
	out := make([]uuid.UUID, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// newInbound is the row of an inbound message of contactID in conversation convID.
func newInbound(tid uuid.UUID, in *inbound, convID, contactID uuid.UUID, now time.Time) Message {
	m := in.m
	meta, _ := json.Marshal(messageMeta{Subject: m.Subject, InReplyTo: m.InReplyTo, References: m.References, AutoReply: m.AutoReply})
	pid := in.pid
	return Message{TenantID: tid, ID: ids.New(), ConversationID: convID, ChannelID: in.ch.ID, Direction: DirIn,
		AuthorKind: AuthorContact, AuthorID: contactID.String(), Content: clipText(m.Text, maxContent),
		ContentType: m.ContentType, HTML: clipText(m.HTML, 4*maxContent), MetaRaw: string(meta), MentionsRaw: "[]",
		ProviderID: &pid, Status: StatusReceived, CreatedAt: m.OccurredAt, UpdatedAt: now}
}

// attachmentRows are the rows of an inbound message's attachments, and the ids of those whose
// bytes are still to be fetched from the provider.
func attachmentRows(tid uuid.UUID, in *inbound, msgID, convID uuid.UUID, now time.Time) ([]Attachment, []uuid.UUID) {
	out := []Attachment{}
	var fetch []uuid.UUID
	for _, b := range in.blobs {
		a := Attachment{TenantID: tid, ID: b.id, MessageID: &msgID, ConversationID: &convID,
			Filename: clipText(b.media.Filename, 255), ContentType: or(b.media.ContentType, "application/octet-stream"),
			Size: b.media.Size, ProviderRef: clipText(b.media.Ref, 500), URL: clipText(b.media.URL, 2000), CreatedAt: now, Status: "pending"}
		if b.key != "" {
			a.StorageKey, a.SHA256, a.Size, a.Status = b.key, b.sum, int64(len(b.media.Data)), "stored"
		} else if a.ProviderRef == "" && a.URL == "" {
			a.Status = "failed" // too large, or nothing to fetch
		} else {
			fetch = append(fetch, a.ID)
		}
		out = append(out, a)
	}
	return out, fetch
}

// insertInbound inserts inbound messages and their attachments, one statement each. A message
// whose (channel, provider id) is already stored makes it errDuplicate.
func (s *Service) insertInbound(ctx context.Context, msgs []Message, atts []Attachment) error {
	var n int64
	if err := s.db.Run(ctx, func(tx *gorm.DB) error {
		r := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&msgs)
		n = r.RowsAffected
		return r.Error
	}); err != nil {
		return fmt.Errorf("conversations: store message: %w", err)
	}
	if n != int64(len(msgs)) {
		return errDuplicate
	}
	if len(atts) == 0 {
		return nil
	}
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&atts).Error }); err != nil {
		return fmt.Errorf("conversations: store attachment rows: %w", err)
	}
	return nil
}

// convTouch is what inbound messages change on their conversation.
type convTouch struct {
	id      uuid.UUID
	at      time.Time // the last message's time
	preview string    // and its preview
	unread  int       // messages that are not auto-replies
	reopen  bool      // a customer wrote to a conversation that was not open
}

// add records msg on conv's touch and moves conv's status on as storing msg does: a customer's
// message (not an auto-reply) opens the conversation. It returns the status conv was reopened
// from, or "".
func (t *convTouch) add(conv *Conversation, msg *Message, autoReply bool) string {
	t.id, t.at, t.preview = conv.ID, msg.CreatedAt, preview(msg.Content, msg.ContentType)
	if autoReply {
		return ""
	}
	t.unread++
	if conv.Status == "open" {
		return ""
	}
	from := conv.Status
	t.reopen, conv.Status = true, "open"
	return from
}

// touchConversations writes the touches of inbound messages onto their conversations in one
// statement: the last message's time and preview, the unread count, and reopening.
func (s *Service) touchConversations(ctx context.Context, ts []convTouch) error {
	tid, _ := tenant.ID(ctx)
	row := "(?, ?, ?, ?, ?)"
	if s.db.Dialect() == tenant.Postgres {
		row = "(?::uuid, ?::timestamptz, ?::text, ?::integer, ?::boolean)" // VALUES has no column types to infer from
	}
	rows := make([]string, len(ts))
	args := make([]any, 0, 5*len(ts)+2)
	args = append(args, s.now()) // updated_at, the first parameter in the text
	for i, t := range ts {
		rows[i] = row
		args = append(args, t.id, t.at, t.preview, t.unread, t.reopen)
	}
	args = append(args, tid)
	// VALUES columns are column1…column5 on both databases. The tenant is named here: the
	// tenant filter does not rewrite raw statements (row-level security still holds on
	// PostgreSQL).
	q := `UPDATE conversations SET last_message_at = v.column2, preview = v.column3, unread = unread + v.column4,
		status = CASE WHEN v.column5 THEN 'open' ELSE status END,
		snoozed_until = CASE WHEN v.column5 THEN NULL ELSE snoozed_until END,
		resolved_at = CASE WHEN v.column5 THEN NULL ELSE resolved_at END,
		updated_at = ?
		FROM (VALUES ` + strings.Join(rows, ", ") + `) AS v
		WHERE conversations.id = v.column1 AND conversations.tenant_id = ?`
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Exec(q, args...).Error }); err != nil {
		return fmt.Errorf("conversations: touch conversations: %w", err)
	}
	return nil
}

// announce records what storing an inbound message means beyond its rows: its usage events
// (both meters: a plan may bill messages or conversations), its realtime events and its
// domain events. contactID is the sender's contact (in a thread found by e-mail headers or a
// thread key it may not be the conversation's); reopened is the status a customer's message
// took the conversation from, or "".
func (s *Service) announce(ctx context.Context, in *inbound, contactID uuid.UUID, conv Conversation, created bool, reopened string, msg Message) error {
	ch := in.ch
	if !in.m.AutoReply {
		evs := []billing.Event{{Meter: "interactions", Quantity: 1, IdempotencyKey: "in:" + ch.ID.String() + ":" + in.pid,
			OccurredAt: msg.CreatedAt, Dimensions: map[string]string{"channel": ch.Type}}}
		if created {
			evs = append(evs, billing.Event{Meter: "conversations", Quantity: 1, IdempotencyKey: "conv:" + conv.ID.String(),
				OccurredAt: msg.CreatedAt, Dimensions: map[string]string{"channel": ch.Type, "conversation_id": conv.ID.String()}})
		}
		if err := s.usage.Defer(ctx, "conversations", evs); err != nil {
			return fmt.Errorf("conversations: record usage: %w", err)
		}
	}
	if created {
		conv.ChannelType = ch.Type
		if err := s.notify.Append(ctx, EventConversationCreated, conv.ID, conv); err != nil {
			return err
		}
		s.publish(ctx, events.Event{Kind: EventConversationCreated, ConversationID: conv.ID, ContactID: contactID})
	} else if reopened != "" {
		s.publish(ctx, events.Event{Kind: EventStatusChanged, ConversationID: conv.ID, Data: map[string]string{"from": reopened, "to": "open"}})
	}
	if err := s.notify.Append(ctx, EventMessageCreated, conv.ID, msg); err != nil {
		return err
	}
	s.publish(ctx, events.Event{Kind: EventMessageCreated, ConversationID: conv.ID, MessageID: msg.ID, ContactID: contactID})
	return nil
}

func (s *Service) knownDelivery(ctx context.Context, channelID uuid.UUID, pid string) (uuid.UUID, bool, error) {
	var existing Message
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Select("id", "tenant_id").Where("channel_id = ? AND provider_id = ?", channelID, pid).Take(&existing).Error
	})
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("conversations: look up delivery: %w", err)
	}
	return existing.ID, false, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// threadColumns are what a message needs of the conversation it joins: reading no more (no
// times to parse, no attributes) keeps the lookup short in the write lock.
var threadColumns = []string{"tenant_id", "id", "channel_id", "contact_id", "status"}

// threadFor finds the conversation a message belongs to, or makes the one it opens (the
// caller inserts it). E-mail threading
// headers win, then the provider's thread key, then the contact's conversation on the channel
// that is still open. An auto-reply never opens a conversation.
func (s *Service) threadFor(ctx context.Context, ch provider.Channel, contactID uuid.UUID, m provider.InboundMessage) (Conversation, bool, error) {
	refs := append([]string{}, m.References...)
	if m.InReplyTo != "" {
		refs = append(refs, m.InReplyTo)
	}
	if len(refs) > 0 {
		var conv Conversation
		err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Select(threadColumns).Where("id = (?)", tx.Model(&Message{}).Select("conversation_id").
				Where("channel_id = ? AND provider_id IN ?", ch.ID, refs).Order("id DESC").Limit(1)).Take(&conv).Error
		})
		switch {
		case err == nil:
			return conv, false, nil
		case !errors.Is(err, gorm.ErrRecordNotFound):
			return Conversation{}, false, fmt.Errorf("conversations: find thread: %w", err)
		}
	}
	// The newest candidate is picked here (newest), not with ORDER BY id DESC: given that order
	// SQLite walks the primary key through every conversation of the tenant instead of using the
	// thread or contact index. Candidates are few: one thread, or one contact's live ones.
	if m.ThreadKey != "" {
		var rows []Conversation
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Select(threadColumns).Where("channel_id = ? AND thread_key = ? AND status <> 'closed'", ch.ID, m.ThreadKey).Find(&rows).Error
		}); err != nil {
			return Conversation{}, false, fmt.Errorf("conversations: find thread: %w", err)
		}
		if c := newest(rows); c != nil {
			return *c, false, nil
		}
	} else {
		live, err := s.liveThreads(ctx, []uuid.UUID{contactID})
		if err != nil {
			return Conversation{}, false, err
		}
		if c := live[threadKey{contact: contactID, channel: ch.ID}]; c != nil {
			return *c, false, nil
		}
	}
	if m.AutoReply {
		return Conversation{}, false, nil
	}
	tid, _ := tenant.ID(ctx)
	return newConversation(tid, ch, contactID, m, s.now()), true, nil
}

// newConversation is the conversation a message of contactID opens, not yet inserted.
func newConversation(tid uuid.UUID, ch provider.Channel, contactID uuid.UUID, m provider.InboundMessage, now time.Time) Conversation {
	return Conversation{TenantID: tid, ID: ids.New(), ChannelID: ch.ID, ContactID: contactID, Status: "open", Priority: "normal",
		Type: "service", Subject: clipText(m.Subject, 500), ThreadKey: clipText(m.ThreadKey, 255), AttributesRaw: "{}",
		LastMessageAt: m.OccurredAt, CreatedAt: now, UpdatedAt: now, Tags: []string{}, Attributes: map[string]any{}}
}

var statusRank = map[string]int{provider.StatusQueued: 0, provider.StatusSent: 1, provider.StatusDelivered: 2, provider.StatusRead: 3}

// applyStatus moves an outbound message's delivery status forward (never back: a late
// "delivered" after "read" changes nothing).
func (s *Service) applyStatus(ctx context.Context, ch provider.Channel, st provider.StatusUpdate) (bool, error) {
	if st.ProviderID == "" {
		return false, nil
	}
	var applied bool
	err := s.db.TxRetrying(ctx, func(ctx context.Context) error {
		applied = false
		var msg Message
		err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Where("channel_id = ? AND provider_id = ? AND direction = ?", ch.ID, st.ProviderID, DirOut).Take(&msg).Error
		})
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil // a status of a message sent outside Switchboard
		}
		if err != nil {
			return fmt.Errorf("conversations: status lookup: %w", err)
		}
		switch {
		case st.Status == provider.StatusFailed:
			if msg.Status == provider.StatusFailed || msg.Status == provider.StatusRead || msg.Status == provider.StatusDelivered {
				return nil
			}
		case statusRank[st.Status] <= statusRank[msg.Status] && msg.Status != provider.StatusFailed:
			return nil
		case statusRank[st.Status] == 0:
			return nil
		}
		msg.Status, msg.FailureReason, msg.UpdatedAt = st.Status, clipText(st.Reason, 500), s.now()
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Message{}).Where("id = ?", msg.ID).Updates(map[string]any{"status": msg.Status, "failure_reason": msg.FailureReason, "updated_at": msg.UpdatedAt}).Error
		}); err != nil {
			return fmt.Errorf("conversations: apply status: %w", err)
		}
		applied = true
		s.publish(ctx, events.Event{Kind: EventMessageUpdated, ConversationID: msg.ConversationID, MessageID: msg.ID})
		return s.notify.Append(ctx, EventMessageUpdated, msg.ConversationID, map[string]any{"id": msg.ID, "status": msg.Status, "failure_reason": msg.FailureReason})
	})
	return applied, err
}

// ingestCall records a call event: the first event of a call opens its conversation with one
// call message (one interaction); the end adds its minutes, rounded up, to voice_minutes.
func (s *Service) ingestCall(ctx context.Context, ch provider.Channel, ev provider.CallEvent) error {
	tid, _ := tenant.ID(ctx)
	if ev.CallID == "" {
		return fmt.Errorf("conversations: call event without a call id: %w", provider.ErrPayload)
	}
	if ev.At.IsZero() {
		ev.At = s.now()
	}
	callID := clipText(ev.CallID, 255)
	return s.db.TxRetrying(ctx, func(ctx context.Context) error {
		var call Call
		err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Where("channel_id = ? AND provider_call_id = ?", ch.ID, callID).Take(&call).Error
		})
		now := s.now()
		if errors.Is(err, gorm.ErrRecordNotFound) {
			from := []provider.Identity{ev.From}
			name := ev.Name
			text := "📞 " + ev.From.Value
			m := provider.InboundMessage{ProviderID: "call:" + callID, From: from, Name: name, ContentType: provider.ContentCall,
				Text: text, ThreadKey: "call:" + callID, OccurredAt: ev.At, Subject: "Call " + ev.From.Value}
			if _, _, err := s.ingestMessage(ctx, ch, m); err != nil {
				return err
			}
			var conv Conversation
			if err := s.db.Run(ctx, func(tx *gorm.DB) error {
				return tx.Where("channel_id = ? AND thread_key = ?", ch.ID, "call:"+callID).Order("id DESC").Take(&conv).Error
			}); err != nil {
				return fmt.Errorf("conversations: call conversation: %w", err)
			}
			call = Call{TenantID: tid, ID: ids.New(), ConversationID: conv.ID, ChannelID: ch.ID, ProviderCallID: callID,
				Direction: or(ev.Direction, "inbound"), FromNumber: ev.From.Value, ToNumber: clipText(ev.To, 64), Status: provider.CallRinging,
				StartedAt: ev.At, UpdatedAt: now}
			if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&call).Error }); err != nil {
				return fmt.Errorf("conversations: store call: %w", err)
			}
		} else if err != nil {
			return fmt.Errorf("conversations: call lookup: %w", err)
		}
		if call.Status == provider.CallEnded {
			return nil // redelivered or late events after the end change nothing
		}
		upd := map[string]any{"updated_at": now}
		switch ev.Event {
		case provider.CallAnswered:
			upd["status"], upd["answered_at"] = provider.CallAnswered, ev.At
		case provider.CallEnded:
			dur := ev.DurationSec
			if dur < 0 {
				dur = 0
			}
			upd["status"], upd["ended_at"], upd["duration_seconds"], upd["recording_url"] = provider.CallEnded, ev.At, dur, clipText(ev.RecordingURL, 2000)
			if dur > 0 {
				minutes := (dur + 59) / 60
				if _, err := s.usage.Record(ctx, "conversations", []billing.Event{{Meter: "voice_minutes", Quantity: minutes,
					IdempotencyKey: "call-min:" + ch.ID.String() + ":" + callID, OccurredAt: ev.At,
					Dimensions: map[string]string{"channel": ch.Type}}}); err != nil {
					return fmt.Errorf("conversations: record voice minutes: %w", err)
				}
			}
		default:
			return nil
		}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Call{}).Where("id = ?", call.ID).Updates(upd).Error
		}); err != nil {
			return fmt.Errorf("conversations: update call: %w", err)
		}
		return s.notify.Append(ctx, "call.updated", call.ConversationID, map[string]any{"id": call.ID, "status": upd["status"]})
	})
}

// TaskFetchMedia downloads an inbound attachment the provider only gave a reference to.
const TaskFetchMedia = "conversations:fetch_media"

type fetchPayload struct {
	TenantID     uuid.UUID `json:"tenant_id"`
	AttachmentID uuid.UUID `json:"attachment_id"`
}

func (s *Service) enqueueFetch(ctx context.Context, id uuid.UUID) {
	tid, _ := tenant.ID(ctx)
	body, _ := json.Marshal(fetchPayload{TenantID: tid, AttachmentID: id})
	if err := s.q.Enqueue(ctx, asynq.NewTask(TaskFetchMedia, body), asynq.MaxRetry(10), asynq.TaskID("fetch:"+id.String())); err != nil {
		s.log.WarnContext(ctx, "enqueue media fetch (the sweep retries it)", "attachment", id, "err", err)
	}
}
