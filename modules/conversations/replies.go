package conversations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/events"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// TaskSend sends one agent reply; TaskSweep re-enqueues replies left queued (a crash between
// commit and enqueue, or a tenant that was suspended and is active again).
const (
	TaskSend  = "conversations:send"
	TaskSweep = "conversations:sweep"
)

// ReplyInput is the body of POST /conversations/:id/messages.
type ReplyInput struct {
	Content     string      `json:"content"`
	Attachments []uuid.UUID `json:"attachments"`
}

// NoteInput is the body of POST /conversations/:id/notes; @mentions name users by id.
type NoteInput struct {
	Content  string      `json:"content"`
	Mentions []uuid.UUID `json:"mentions"`
}

type sendPayload struct {
	TenantID  uuid.UUID `json:"tenant_id"`
	MessageID uuid.UUID `json:"message_id"`
}

func authorID(ctx context.Context) string {
	a := tenant.ActorFrom(ctx)
	if a.Kind == tenant.ActorAPIKey {
		return "api_key:" + a.APIKeyID.String()
	}
	return a.Subject()
}

// Reply stores an agent reply as queued with its usage event, and sends it after commit
// through the send task.
func (s *Service) Reply(ctx context.Context, convID uuid.UUID, in ReplyInput) (Message, error) {
	content := strings.TrimSpace(in.Content)
	if content == "" && len(in.Attachments) == 0 {
		return Message{}, apperr.Invalid("content", "is required unless attachments are given")
	}
	if len(in.Content) > maxContent {
		return Message{}, apperr.Invalid("content", fmt.Sprintf("at most %d bytes", maxContent))
	}
	if len(in.Attachments) > 10 {
		return Message{}, apperr.Invalid("attachments", "at most 10 per message")
	}
	var msg Message
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		conv, err := s.conversation(ctx, convID)
		if err != nil {
			return err
		}
		ch, _, err := s.channels.Open(ctx, conv.ChannelID)
		if err != nil {
			return err
		}
		if ch.Type == "voice" {
			return apperr.Invalid("content", "a phone call takes no written reply")
		}
		now := s.now()
		msg = Message{TenantID: conv.TenantID, ID: ids.New(), ConversationID: conv.ID, ChannelID: conv.ChannelID, Direction: DirOut,
			AuthorKind: AuthorAgent, AuthorID: authorID(ctx), Content: content, ContentType: provider.ContentText, MetaRaw: "{}",
			MentionsRaw: "[]", Status: provider.StatusQueued, CreatedAt: now, UpdatedAt: now, Attachments: []Attachment{}}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&msg).Error }); err != nil {
			return fmt.Errorf("conversations: store reply: %w", err)
		}
		if err := s.claimAttachments(ctx, &msg, in.Attachments); err != nil {
			return err
		}
		upd := map[string]any{"last_message_at": now, "preview": preview(content, msg.ContentType), "unread": 0, "updated_at": now}
		if conv.FirstResponseAt == nil {
			upd["first_response_at"] = now
		}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Conversation{}).Where("id = ?", conv.ID).Updates(upd).Error
		}); err != nil {
			return fmt.Errorf("conversations: touch conversation: %w", err)
		}
		if _, err := s.usage.Record(ctx, "conversations", []billing.Event{{Meter: "interactions", Quantity: 1,
			IdempotencyKey: "out:" + msg.ID.String(), OccurredAt: now, Dimensions: map[string]string{"channel": ch.Type}}}); err != nil {
			return fmt.Errorf("conversations: record usage: %w", err)
		}
		if err := s.notify.Append(ctx, EventMessageCreated, conv.ID, msg); err != nil {
			return err
		}
		s.publish(ctx, events.Event{Kind: EventMessageCreated, ConversationID: conv.ID, MessageID: msg.ID, ContactID: conv.ContactID})
		tenant.AfterCommit(ctx, func(ctx context.Context) { s.enqueueSend(ctx, msg.TenantID, msg.ID, 0) })
		return nil
	})
	return msg, err
}

// claimAttachments binds uploaded attachments (not yet on a message) to a new message.
func (s *Service) claimAttachments(ctx context.Context, msg *Message, list []uuid.UUID) error {
	for i, id := range list {
		var a Attachment
		err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Where("id = ? AND message_id IS NULL", id).Take(&a).Error
		})
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return apperr.Invalid(fmt.Sprintf("attachments[%d]", i), "is not an uploaded attachment that is still unused")
		}
		if err != nil {
			return fmt.Errorf("conversations: attachment: %w", err)
		}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Attachment{}).Where("id = ?", id).Updates(map[string]any{"message_id": msg.ID, "conversation_id": msg.ConversationID}).Error
		}); err != nil {
			return fmt.Errorf("conversations: claim attachment: %w", err)
		}
		a.MessageID, a.ConversationID = &msg.ID, &msg.ConversationID
		msg.Attachments = append(msg.Attachments, a)
	}
	return nil
}

// sendGen is the send generation of a reply, kept in its meta: 0 for the first send, one more
// for each retry by hand.
type sendGen struct {
	Gen int `json:"send_gen,omitempty"`
}

func generation(metaRaw string) int {
	var g sendGen
	_ = json.Unmarshal([]byte(metaRaw), &g)
	return g.Gen
}

func (s *Service) enqueueSend(ctx context.Context, tid, msgID uuid.UUID, gen int) {
	body, _ := json.Marshal(sendPayload{TenantID: tid, MessageID: msgID})
	// One task per message and send generation: the sweep finds the task id taken while the
	// task is still queued or retrying, so a reply is never sent by two workers at once. A
	// retry by hand starts a new generation, because the failed attempt's task may not be
	// gone yet when the agent presses Retry.
	err := s.q.Enqueue(ctx, asynq.NewTask(TaskSend, body), asynq.MaxRetry(s.opts.SendRetries), asynq.Timeout(60*time.Second),
		asynq.TaskID(fmt.Sprintf("send:%s:%d", msgID, gen)))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		s.log.WarnContext(ctx, "enqueue reply (the sweep retries it)", "message", msgID, "err", err)
	}
}

var mentionRE = regexp.MustCompile(`@\{([0-9a-f-]{36})\}`)

// Note stores a private note; it is never sent and never billed. Mentions are the user ids
// given plus any written as @{uuid} in the text.
func (s *Service) Note(ctx context.Context, convID uuid.UUID, in NoteInput) (Message, error) {
	content := strings.TrimSpace(in.Content)
	if content == "" || len(content) > maxContent {
		return Message{}, apperr.Invalid("content", fmt.Sprintf("is required, at most %d bytes", maxContent))
	}
	mentions := append([]uuid.UUID{}, in.Mentions...)
	for _, m := range mentionRE.FindAllStringSubmatch(content, -1) {
		if id, ok := ids.Parse(m[1]); ok {
			mentions = append(mentions, id)
		}
	}
	if len(mentions) > 50 {
		return Message{}, apperr.Invalid("mentions", "at most 50")
	}
	raw, _ := json.Marshal(mentions)
	var msg Message
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		conv, err := s.conversation(ctx, convID)
		if err != nil {
			return err
		}
		now := s.now()
		msg = Message{TenantID: conv.TenantID, ID: ids.New(), ConversationID: conv.ID, ChannelID: conv.ChannelID, Direction: DirInternal,
			AuthorKind: AuthorAgent, AuthorID: authorID(ctx), Private: true, Content: content, ContentType: provider.ContentText,
			MetaRaw: "{}", MentionsRaw: string(raw), Status: StatusNote, CreatedAt: now, UpdatedAt: now, Mentions: mentions, Attachments: []Attachment{}}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&msg).Error }); err != nil {
			return fmt.Errorf("conversations: store note: %w", err)
		}
		if err := s.notify.Append(ctx, "note.created", conv.ID, msg); err != nil {
			return err
		}
		s.publish(ctx, events.Event{Kind: "note.created", ConversationID: conv.ID, MessageID: msg.ID, Data: map[string]any{"mentions": mentions}})
		return nil
	})
	return msg, err
}

// Retry queues a failed reply again by hand.
func (s *Service) Retry(ctx context.Context, convID, msgID uuid.UUID) (Message, error) {
	var msg Message
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Where("id = ? AND conversation_id = ?", msgID, convID).Take(&msg).Error
		})
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return fmt.Errorf("message %s: %w", msgID, apperr.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("conversations: retry: %w", err)
		}
		if msg.Direction != DirOut || msg.Status != provider.StatusFailed {
			return fmt.Errorf("only a failed reply can be retried (this one is %s): %w", msg.Status, apperr.ErrConflict)
		}
		msg.Status, msg.FailureReason, msg.Attempts, msg.UpdatedAt = provider.StatusQueued, "", 0, s.now()
		meta := map[string]any{}
		_ = json.Unmarshal([]byte(msg.MetaRaw), &meta)
		gen := generation(msg.MetaRaw) + 1
		meta["send_gen"] = gen
		raw, _ := json.Marshal(meta)
		msg.MetaRaw = string(raw)
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Message{}).Where("id = ?", msg.ID).Updates(map[string]any{"status": msg.Status, "failure_reason": "", "attempts": 0,
				"meta": msg.MetaRaw, "updated_at": msg.UpdatedAt}).Error
		}); err != nil {
			return fmt.Errorf("conversations: retry: %w", err)
		}
		if err := s.db.Record(ctx, tenant.Audit{Action: "message.retried", ObjectType: "message", ObjectID: msg.ID.String()}); err != nil {
			return err
		}
		tenant.AfterCommit(ctx, func(ctx context.Context) { s.enqueueSend(ctx, msg.TenantID, msg.ID, gen) })
		return s.notify.Append(ctx, EventMessageUpdated, convID, map[string]any{"id": msg.ID, "status": msg.Status, "failure_reason": ""})
	})
	return msg, err
}

// HandleSend sends one reply. It is idempotent: a message that is no longer queued is left
// alone, so a redelivered task sends nothing twice. While the tenant is suspended replies stay
// queued (paused); the sweep sends them once it is active again.
func (s *Service) HandleSend(ctx context.Context, t *asynq.Task) error {
	var p sendPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("conversations: send payload: %w: %w", err, asynq.SkipRetry)
	}
	ctx, org, err := s.db.InOrg(ctx, p.TenantID)
	if err != nil {
		return err
	}
	if !org.Status.CanSendOutbound() {
		s.log.InfoContext(ctx, "reply paused: organisation cannot send", "tenant", org.ID, "status", org.Status, "message", p.MessageID)
		return nil
	}
	var msg Message
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", p.MessageID).Take(&msg).Error }); err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil
		}
		return fmt.Errorf("conversations: load reply: %w", err)
	}
	if msg.Status != provider.StatusQueued {
		return nil
	}
	out, ch, err := s.outbound(ctx, msg)
	if err != nil {
		return s.sendFailed(ctx, msg, err, true)
	}
	p2, _ := s.channels.Registry().Provider(ch.Type)
	sent, err := p2.Send(ctx, ch, out)
	if err != nil {
		retry, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		final := provider.Permanent(err) || retry >= maxRetry
		if ferr := s.sendFailed(ctx, msg, err, final); ferr != nil {
			return ferr
		}
		if final {
			return nil
		}
		return fmt.Errorf("conversations: send %s: %w", msg.ID, err) // asynq retries with backoff
	}
	return s.db.Tx(ctx, func(ctx context.Context) error {
		upd := map[string]any{"status": provider.StatusSent, "failure_reason": "", "attempts": gorm.Expr("attempts + 1"), "updated_at": s.now()}
		if sent.ProviderID != "" {
			upd["provider_id"] = clipText(sent.ProviderID, 255)
		}
		var n int64
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			r := tx.Model(&Message{}).Where("id = ? AND status = ?", msg.ID, provider.StatusQueued).Updates(upd)
			n = r.RowsAffected
			return r.Error
		}); err != nil {
			return fmt.Errorf("conversations: mark sent: %w", err)
		}
		if n == 0 {
			return nil
		}
		s.publish(ctx, events.Event{Kind: EventMessageUpdated, ConversationID: msg.ConversationID, MessageID: msg.ID})
		return s.notify.Append(ctx, EventMessageUpdated, msg.ConversationID, map[string]any{"id": msg.ID, "status": provider.StatusSent, "provider_id": sent.ProviderID})
	})
}

// sendFailed records a failed attempt; final marks the message failed with the reason, shown
// in the inbox and retried only by hand.
func (s *Service) sendFailed(ctx context.Context, msg Message, cause error, final bool) error {
	reason := clipText(cause.Error(), 500)
	return s.db.Tx(ctx, func(ctx context.Context) error {
		upd := map[string]any{"failure_reason": reason, "attempts": gorm.Expr("attempts + 1"), "updated_at": s.now()}
		if final {
			upd["status"] = provider.StatusFailed
		}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Message{}).Where("id = ? AND status = ?", msg.ID, provider.StatusQueued).Updates(upd).Error
		}); err != nil {
			return fmt.Errorf("conversations: record failure: %w", err)
		}
		status := provider.StatusQueued
		if final {
			status = provider.StatusFailed
			s.log.WarnContext(ctx, "reply failed", "message", msg.ID, "reason", reason)
		}
		return s.notify.Append(ctx, EventMessageUpdated, msg.ConversationID, map[string]any{"id": msg.ID, "status": status, "failure_reason": reason})
	})
}

// outbound builds what the adapter sends: the contact's identities on the channel's kinds,
// the attachments' bytes and, for e-mail, the thread's subject and Message-IDs.
func (s *Service) outbound(ctx context.Context, msg Message) (provider.Outbound, provider.Channel, error) {
	conv, err := s.conversation(ctx, msg.ConversationID)
	if err != nil {
		return provider.Outbound{}, provider.Channel{}, err
	}
	ch, _, err := s.channels.Open(ctx, conv.ChannelID)
	if err != nil {
		return provider.Outbound{}, provider.Channel{}, err
	}
	p, ok := s.channels.Registry().Provider(ch.Type)
	if !ok {
		return provider.Outbound{}, ch, fmt.Errorf("conversations: channel type %q is not served", ch.Type)
	}
	to, err := s.contacts.Identities(ctx, conv.ContactID, p.Spec().Identities)
	if err != nil {
		return provider.Outbound{}, ch, err
	}
	names, _ := s.contacts.Names(ctx, []uuid.UUID{conv.ContactID})
	out := provider.Outbound{MessageID: msg.ID, ConversationID: conv.ID, To: to, ToName: names[conv.ContactID], Text: msg.Content, Subject: conv.Subject}
	if len(to) == 0 && len(p.Spec().Identities) > 0 {
		return out, ch, &provider.SendError{Permanent: true, Reason: "the contact has no identity this channel can reach (" + strings.Join(p.Spec().Identities, ", ") + ")"}
	}
	var atts []Attachment
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("message_id = ?", msg.ID).Order("id").Find(&atts).Error }); err != nil {
		return out, ch, fmt.Errorf("conversations: reply attachments: %w", err)
	}
	for _, a := range atts {
		rc, err := s.blobs.Get(ctx, a.StorageKey)
		if err != nil {
			return out, ch, fmt.Errorf("conversations: read attachment %s: %w", a.ID, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, s.opts.MaxAttachmentBytes+1))
		rc.Close()
		if err != nil {
			return out, ch, fmt.Errorf("conversations: read attachment %s: %w", a.ID, err)
		}
		out.Attachments = append(out.Attachments, provider.OutAttachment{Filename: a.Filename, ContentType: a.ContentType, Data: data})
	}
	if ch.Type == "email" {
		// The reply answers the newest message of the thread that has a Message-ID, and carries
		// every earlier one as References so the customer's client threads it.
		var prior []Message
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Where("conversation_id = ? AND provider_id IS NOT NULL AND id <> ? AND direction IN ?", conv.ID, msg.ID, []string{DirIn, DirOut}).
				Order("id").Find(&prior).Error
		}); err != nil {
			return out, ch, fmt.Errorf("conversations: thread: %w", err)
		}
		for _, m := range prior {
			if m.ProviderID != nil && !strings.HasPrefix(*m.ProviderID, "sha256:") {
				out.References = append(out.References, *m.ProviderID)
			}
		}
		if n := len(out.References); n > 0 {
			out.InReplyTo = out.References[n-1]
		}
		if len(out.References) > 20 {
			out.References = append(out.References[:1], out.References[len(out.References)-19:]...)
		}
	}
	return out, ch, nil
}

// HandleSweep re-enqueues replies still queued a minute after they were written (lost
// enqueue, or a tenant active again after suspension).
func (s *Service) HandleSweep(ctx context.Context, _ *asynq.Task) error {
	pctx := s.db.AsPlatform(ctx, "re-enqueue queued replies")
	var rows []Message
	if err := s.db.Run(pctx, func(tx *gorm.DB) error {
		return tx.Select("tenant_id", "id", "meta").Where("status = ? AND direction = ? AND updated_at < ?", provider.StatusQueued, DirOut, s.now().Add(-time.Minute)).
			Order("id").Limit(1000).Find(&rows).Error
	}); err != nil {
		return fmt.Errorf("conversations: sweep: %w", err)
	}
	for _, m := range rows {
		s.enqueueSend(ctx, m.TenantID, m.ID, generation(m.MetaRaw))
	}
	return nil
}
