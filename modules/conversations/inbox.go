package conversations

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/events"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/modules/contacts"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Filter selects conversations for an inbox view.
type Filter struct {
	Status    string     // one status, or "" for every status but closed
	Assignee  string     // "me", "none", a user id, or ""
	ChannelID *uuid.UUID //
	ContactID *uuid.UUID
	Tag       string
	Priority  string
	Type      string
	Limit     int
	Cursor    string
}

// cursor is the position of the last conversation of a page: the inbox is ordered by the last
// message's time, newest first, with the id breaking ties.
type cursor struct {
	At time.Time `json:"t"`
	ID uuid.UUID `json:"i"`
}

// EncodeCursor makes the opaque next-page cursor.
func EncodeCursor(c Conversation) string {
	b, _ := json.Marshal(cursor{At: c.LastMessageAt.UTC(), ID: c.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID == uuid.Nil {
		return c, apperr.Invalid("cursor", "is not a cursor from a previous page")
	}
	return c, nil
}

// List returns one page of the inbox (limit+1 rows: the caller trims and sets the cursor).
func (s *Service) List(ctx context.Context, f Filter) ([]Conversation, error) {
	var rows []Conversation
	if f.Status != "" && !slices.Contains(Statuses, f.Status) {
		return nil, apperr.Invalid("status", "must be one of "+strings.Join(Statuses, ", "))
	}
	if f.Priority != "" && !slices.Contains(Priorities, f.Priority) {
		return nil, apperr.Invalid("priority", "must be one of "+strings.Join(Priorities, ", "))
	}
	if f.Type != "" && !slices.Contains(Types, f.Type) {
		return nil, apperr.Invalid("type", "must be one of "+strings.Join(Types, ", "))
	}
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		q := tx.Order("last_message_at DESC, id DESC").Limit(f.Limit + 1)
		if f.Status != "" {
			q = q.Where("status = ?", f.Status)
		} else {
			q = q.Where("status <> 'closed'")
		}
		switch f.Assignee {
		case "":
		case "none":
			q = q.Where("assignee_id IS NULL")
		case "me":
			a := tenant.ActorFrom(ctx)
			q = q.Where("assignee_id = ?", a.UserID)
		default:
			id, ok := ids.Parse(f.Assignee)
			if !ok {
				return apperr.Invalid("assignee", "must be me, none or a user id")
			}
			q = q.Where("assignee_id = ?", id)
		}
		if f.ChannelID != nil {
			q = q.Where("channel_id = ?", *f.ChannelID)
		}
		if f.ContactID != nil {
			q = q.Where("contact_id = ?", *f.ContactID)
		}
		if f.Priority != "" {
			q = q.Where("priority = ?", f.Priority)
		}
		if f.Type != "" {
			q = q.Where("type = ?", f.Type)
		}
		if f.Tag != "" {
			q = q.Where("id IN (?)", tx.Model(&conversationTag{}).Select("conversation_id").Where("tag = ?", strings.ToLower(f.Tag)))
		}
		if f.Cursor != "" {
			c, err := decodeCursor(f.Cursor)
			if err != nil {
				return err
			}
			// A row value, not "a < x OR (a = x AND b < y)": SQLite seeks the inbox index to a
			// row value, while the OR made it read every row newer than the cursor.
			q = q.Where("(last_message_at, id) < (?, ?)", c.At, c.ID)
		}
		return q.Find(&rows).Error
	})
	if err != nil {
		var ve *apperr.ValidationError
		if errors.As(err, &ve) {
			return nil, err
		}
		return nil, fmt.Errorf("conversations: list: %w", err)
	}
	return rows, s.fill(ctx, rows)
}

// fill adds tags, attributes, contact names and channel types to a page.
func (s *Service) fill(ctx context.Context, cs []Conversation) error {
	if len(cs) == 0 {
		return nil
	}
	idx := map[uuid.UUID]int{}
	keys := make([]uuid.UUID, len(cs))
	contactIDs := make([]uuid.UUID, 0, len(cs))
	channelIDs := make([]uuid.UUID, 0, len(cs))
	for i := range cs {
		idx[cs[i].ID], keys[i] = i, cs[i].ID
		contactIDs = append(contactIDs, cs[i].ContactID)
		channelIDs = append(channelIDs, cs[i].ChannelID)
		cs[i].Tags, cs[i].Attributes = []string{}, map[string]any{}
		if cs[i].AttributesRaw != "" {
			_ = json.Unmarshal([]byte(cs[i].AttributesRaw), &cs[i].Attributes)
		}
	}
	var tags []conversationTag
	type chRow struct {
		ID   uuid.UUID
		Type string
	}
	var chans []chRow
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("conversation_id IN ?", keys).Order("tag").Find(&tags).Error; err != nil {
			return err
		}
		return tx.Table("channels").Select("id", "type").Where("id IN ?", channelIDs).Find(&chans).Error
	})
	if err != nil {
		return fmt.Errorf("conversations: fill: %w", err)
	}
	for _, t := range tags {
		c := &cs[idx[t.ConversationID]]
		c.Tags = append(c.Tags, t.Tag)
	}
	types := map[uuid.UUID]string{}
	for _, c := range chans {
		types[c.ID] = c.Type
	}
	names, err := s.contacts.Names(ctx, contactIDs)
	if err != nil {
		return err
	}
	for i := range cs {
		cs[i].ChannelType = types[cs[i].ChannelID]
		cs[i].ContactName = names[cs[i].ContactID]
	}
	return nil
}

// Get returns one conversation.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Conversation, error) {
	c, err := s.conversation(ctx, id)
	if err != nil {
		return Conversation{}, err
	}
	list := []Conversation{c}
	return list[0], s.fill(ctx, list)
}

// UpdateInput changes a conversation; absent fields stay.
type UpdateInput struct {
	Status       *string        `json:"status"`
	SnoozedUntil *time.Time     `json:"snoozed_until"`
	Priority     *string        `json:"priority"`
	Type         *string        `json:"type"`
	AssigneeID   *string        `json:"assignee_id"` // "" unassigns
	Team         *string        `json:"team"`
	Tags         *[]string      `json:"tags"`
	AddTags      []string       `json:"add_tags"`
	Attributes   map[string]any `json:"attributes"`
	Subject      *string        `json:"subject"`
}

// UnreadCounts are how many conversations that are not closed have unread messages: all of the
// tenant's, those assigned to the caller and the unassigned ones (the console's badge and its
// views' counts).
type UnreadCounts struct {
	All        int64 `json:"all"`
	Mine       int64 `json:"mine"`
	Unassigned int64 `json:"unassigned"`
}

// Unread counts the tenant's conversations with unread messages, from the partial index of
// them (conversations_unread_idx), so the count costs what is unread, not the inbox's size.
func (s *Service) Unread(ctx context.Context) (UnreadCounts, error) {
	me := tenant.ActorFrom(ctx).UserID // zero for an API key: nothing is its own
	var row struct{ AllCount, Mine, Unassigned int64 }
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Model(&Conversation{}).
			Select(`COUNT(*) AS all_count,
				COALESCE(SUM(CASE WHEN assignee_id = ? THEN 1 ELSE 0 END), 0) AS mine,
				COALESCE(SUM(CASE WHEN assignee_id IS NULL THEN 1 ELSE 0 END), 0) AS unassigned`, me).
			Where("unread > 0 AND status <> 'closed'").Scan(&row).Error
	})
	if err != nil {
		return UnreadCounts{}, fmt.Errorf("conversations: unread counts: %w", err)
	}
	return UnreadCounts{All: row.AllCount, Mine: row.Mine, Unassigned: row.Unassigned}, nil
}

// MemberCheck says whether a user may be assigned conversations of the tenant in ctx.
type MemberCheck func(ctx context.Context, userID uuid.UUID) (bool, error)

// Update applies an UpdateInput and tells the inbox what changed.
func (s *Service) Update(ctx context.Context, id uuid.UUID, in UpdateInput, isMember MemberCheck) (Conversation, error) {
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		return s.update(ctx, id, in, isMember, "")
	})
	if err != nil {
		return Conversation{}, err
	}
	return s.Get(ctx, id)
}

func (s *Service) update(ctx context.Context, id uuid.UUID, in UpdateInput, isMember MemberCheck, field string) error {
	conv, err := s.conversation(ctx, id)
	if err != nil {
		return err
	}
	var bad apperr.Fields
	now := s.now()
	upd := map[string]any{"updated_at": now}
	changes := map[string]any{}
	if in.Status != nil && *in.Status != conv.Status {
		st := *in.Status
		switch {
		case !slices.Contains(Statuses, st):
			bad.Add(field+"status", "must be one of "+strings.Join(Statuses, ", "))
		case st == "snoozed" && (in.SnoozedUntil == nil || !in.SnoozedUntil.After(now)):
			bad.Add(field+"snoozed_until", "a snoozed conversation needs a time in the future")
		default:
			upd["status"] = st
			changes["status"] = map[string]string{"from": conv.Status, "to": st}
			if st == "snoozed" {
				upd["snoozed_until"] = in.SnoozedUntil.UTC()
			} else {
				upd["snoozed_until"] = nil
			}
			if st == "resolved" || st == "closed" {
				upd["resolved_at"] = now
			} else {
				upd["resolved_at"] = nil
			}
		}
	}
	for name, p := range map[string]*string{"priority": in.Priority, "type": in.Type} {
		if p == nil {
			continue
		}
		allowed := Priorities
		if name == "type" {
			allowed = Types
		}
		if !slices.Contains(allowed, *p) {
			bad.Add(field+name, "must be one of "+strings.Join(allowed, ", "))
			continue
		}
		upd[name] = *p
		changes[name] = *p
	}
	assigned := false
	if in.AssigneeID != nil {
		if *in.AssigneeID == "" {
			upd["assignee_id"] = nil
			changes["assignee_id"] = nil
			assigned = conv.AssigneeID != nil
		} else if uid, ok := ids.Parse(*in.AssigneeID); !ok {
			bad.Add(field+"assignee_id", "must be a user id or empty")
		} else if ok, err := isMember(ctx, uid); err != nil {
			return err
		} else if !ok {
			bad.Add(field+"assignee_id", "is not an active member of this organisation")
		} else {
			upd["assignee_id"] = uid
			changes["assignee_id"] = uid
			assigned = conv.AssigneeID == nil || *conv.AssigneeID != uid
		}
	}
	if in.Team != nil {
		upd["team"] = clipText(strings.TrimSpace(*in.Team), 100)
		changes["team"] = upd["team"]
	}
	if in.Subject != nil {
		upd["subject"] = clipText(strings.TrimSpace(*in.Subject), 500)
	}
	if in.Attributes != nil {
		attrs := map[string]any{}
		_ = json.Unmarshal([]byte(conv.AttributesRaw), &attrs)
		for k, v := range in.Attributes {
			if v == nil {
				delete(attrs, k)
			} else {
				attrs[k] = v
			}
		}
		raw, _ := json.Marshal(attrs)
		if len(raw) > 16<<10 {
			bad.Add(field+"attributes", "at most 16 KiB")
		}
		upd["attributes"] = string(raw)
	}
	var tags []string
	replaceTags := in.Tags != nil
	if replaceTags {
		if tags, err = contacts.NormalizeTags(field+"tags", *in.Tags); err != nil {
			return err
		}
	}
	addTags, err := contacts.NormalizeTags(field+"add_tags", in.AddTags)
	if err != nil {
		return err
	}
	if err := bad.Err(); err != nil {
		return err
	}
	err = s.db.Run(ctx, func(tx *gorm.DB) error {
		if err := tx.Model(&Conversation{}).Where("id = ?", id).Updates(upd).Error; err != nil {
			return err
		}
		if replaceTags {
			if err := tx.Where("conversation_id = ?", id).Delete(&conversationTag{}).Error; err != nil {
				return err
			}
		}
		for _, t := range append(tags, addTags...) {
			if err := tx.Where(conversationTag{TenantID: conv.TenantID, ConversationID: id, Tag: t}).
				FirstOrCreate(&conversationTag{TenantID: conv.TenantID, ConversationID: id, Tag: t}).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("conversations: update: %w", err)
	}
	if replaceTags || len(addTags) > 0 {
		changes["tags"] = true
	}
	if len(changes) == 0 {
		return nil
	}
	if err := s.db.Record(ctx, tenant.Audit{Action: "conversation.updated", ObjectType: "conversation", ObjectID: id.String(), Data: changes}); err != nil {
		return err
	}
	if st, ok := changes["status"]; ok {
		s.publish(ctx, events.Event{Kind: EventStatusChanged, ConversationID: id, Data: st})
	}
	if assigned {
		s.publish(ctx, events.Event{Kind: EventAssigned, ConversationID: id, Data: map[string]any{"assignee_id": upd["assignee_id"]}})
	}
	return s.notify.Append(ctx, EventConversationUpdated, id, map[string]any{"id": id, "changes": changes})
}

// BulkInput applies one change to many conversations.
type BulkInput struct {
	IDs    []uuid.UUID `json:"ids"`
	Update UpdateInput `json:"update"`
}

// Bulk applies the same update to up to 100 conversations in one transaction: all or nothing.
func (s *Service) Bulk(ctx context.Context, in BulkInput, isMember MemberCheck) (int, error) {
	if len(in.IDs) == 0 || len(in.IDs) > 100 {
		return 0, apperr.Invalid("ids", "must name 1 to 100 conversations")
	}
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		for i, id := range in.IDs {
			if err := s.update(ctx, id, in.Update, isMember, "update."); err != nil {
				if errors.Is(err, apperr.ErrNotFound) {
					return apperr.Invalid(fmt.Sprintf("ids[%d]", i), "is not a conversation of this organisation")
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(in.IDs), nil
}

// MarkRead clears a conversation's unread count.
func (s *Service) MarkRead(ctx context.Context, id uuid.UUID) error {
	return s.db.Tx(ctx, func(ctx context.Context) error {
		if _, err := s.conversation(ctx, id); err != nil {
			return err
		}
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Model(&Conversation{}).Where("id = ?", id).Update("unread", 0).Error
		}); err != nil {
			return fmt.Errorf("conversations: mark read: %w", err)
		}
		return s.notify.Append(ctx, EventConversationUpdated, id, map[string]any{"id": id, "changes": map[string]any{"unread": 0}})
	})
}

// Which messages of a conversation a page holds.
type Which int

// Pages of a conversation: what the contact sees, that and the notes, the notes alone.
const (
	Public Which = iota
	PublicAndNotes
	NotesOnly
)

// Messages returns a conversation's messages oldest first after the cursor (a message id).
func (s *Service) Messages(ctx context.Context, convID uuid.UUID, limit int, after string, which Which) ([]Message, error) {
	if _, err := s.conversation(ctx, convID); err != nil {
		return nil, err
	}
	var rows []Message
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		q := tx.Where("conversation_id = ?", convID).Order("id").Limit(limit + 1)
		if after != "" {
			q = q.Where("id > ?", after)
		}
		switch which {
		case Public:
			q = q.Where("private = ?", false)
		case NotesOnly:
			q = q.Where("private = ?", true)
		}
		return q.Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("conversations: messages: %w", err)
	}
	return rows, s.fillMessages(ctx, rows)
}

func (s *Service) fillMessages(ctx context.Context, ms []Message) error {
	if len(ms) == 0 {
		return nil
	}
	idx := map[uuid.UUID]int{}
	keys := make([]uuid.UUID, len(ms))
	for i := range ms {
		idx[ms[i].ID], keys[i] = i, ms[i].ID
		ms[i].Attachments = []Attachment{}
		if ms[i].MentionsRaw != "" && ms[i].MentionsRaw != "[]" {
			_ = json.Unmarshal([]byte(ms[i].MentionsRaw), &ms[i].Mentions)
		}
	}
	var atts []Attachment
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("message_id IN ?", keys).Order("id").Find(&atts).Error }); err != nil {
		return fmt.Errorf("conversations: attachments: %w", err)
	}
	for _, a := range atts {
		m := &ms[idx[*a.MessageID]]
		m.Attachments = append(m.Attachments, a)
	}
	return nil
}

// TimelineItem is one entry of a contact's 360° timeline.
type TimelineItem struct {
	ID             uuid.UUID `json:"id"`
	Kind           string    `json:"kind"` // message, note, conversation
	At             time.Time `json:"at"`
	ConversationID uuid.UUID `json:"conversation_id"`
	ChannelID      uuid.UUID `json:"channel_id"`
	ChannelType    string    `json:"channel_type"`
	Direction      string    `json:"direction,omitempty"`
	AuthorKind     string    `json:"author_kind,omitempty"`
	ContentType    string    `json:"content_type,omitempty"`
	Content        string    `json:"content"`
	Status         string    `json:"status,omitempty"`
}

// Timeline returns every message of every conversation of the contact, across channels,
// newest first; the cursor is the last item's id.
func (s *Service) Timeline(ctx context.Context, contactID uuid.UUID, limit int, cursor string) ([]TimelineItem, error) {
	var rows []struct {
		Message
		ChannelType string
	}
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		q := tx.Table("messages m").Select("m.*, ch.type AS channel_type").
			Joins("JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id").
			Joins("JOIN channels ch ON ch.tenant_id = m.tenant_id AND ch.id = m.channel_id").
			Where("c.contact_id = ?", contactID).Order("m.id DESC").Limit(limit + 1)
		if cursor != "" {
			q = q.Where("m.id < ?", cursor)
		}
		return q.Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("conversations: timeline: %w", err)
	}
	out := make([]TimelineItem, 0, len(rows))
	for _, r := range rows {
		kind := "message"
		if r.Private {
			kind = "note"
		}
		out = append(out, TimelineItem{ID: r.ID, Kind: kind, At: r.CreatedAt, ConversationID: r.ConversationID, ChannelID: r.ChannelID,
			ChannelType: r.ChannelType, Direction: r.Direction, AuthorKind: r.AuthorKind, ContentType: r.ContentType,
			Content: preview(r.Content, r.ContentType), Status: r.Status})
	}
	return out, nil
}

// ContactMessages returns the public messages (no notes) of a contact's conversations on one
// channel, oldest first after the cursor (a message id): the widget's thread.
func (s *Service) ContactMessages(ctx context.Context, channelID, contactID uuid.UUID, limit int, after string) ([]Message, error) {
	var rows []Message
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		q := tx.Where("channel_id = ? AND private = ? AND conversation_id IN (?)", channelID, false,
			tx.Model(&Conversation{}).Select("id").Where("channel_id = ? AND contact_id = ?", channelID, contactID)).
			Order("id").Limit(limit + 1)
		if after != "" {
			q = q.Where("id > ?", after)
		}
		return q.Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("conversations: contact messages: %w", err)
	}
	return rows, s.fillMessages(ctx, rows)
}

// ContactConversations returns the ids of a contact's conversations on a channel.
func (s *Service) ContactConversations(ctx context.Context, channelID, contactID uuid.UUID) ([]uuid.UUID, error) {
	var out []uuid.UUID
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Model(&Conversation{}).Where("channel_id = ? AND contact_id = ?", channelID, contactID).Pluck("id", &out).Error
	})
	if err != nil {
		return nil, fmt.Errorf("conversations: contact conversations: %w", err)
	}
	return out, nil
}
