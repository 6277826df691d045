package conversations

import (
	"time"

	"github.com/google/uuid"
)

// Conversation statuses, priorities and types.
var (
	Statuses   = []string{"open", "pending", "snoozed", "resolved", "closed"}
	Priorities = []string{"low", "normal", "high", "urgent"}
	Types      = []string{"service", "complaint", "sales", "field"}
)

// Conversation is one thread with a contact on one channel.
type Conversation struct {
	TenantID        uuid.UUID      `json:"-" gorm:"type:uuid;primaryKey"`
	ID              uuid.UUID      `json:"id" gorm:"type:uuid;primaryKey"`
	ChannelID       uuid.UUID      `json:"channel_id" gorm:"type:uuid"`
	ContactID       uuid.UUID      `json:"contact_id" gorm:"type:uuid"`
	Status          string         `json:"status"`
	SnoozedUntil    *time.Time     `json:"snoozed_until"`
	Priority        string         `json:"priority"`
	Type            string         `json:"type"`
	AssigneeID      *uuid.UUID     `json:"assignee_id" gorm:"type:uuid"`
	Team            string         `json:"team"`
	Subject         string         `json:"subject"`
	ThreadKey       string         `json:"-"`
	AttributesRaw   string         `json:"-" gorm:"column:attributes"`
	Unread          int            `json:"unread"`
	Preview         string         `json:"preview"`
	FirstResponseAt *time.Time     `json:"first_response_at"`
	ResolvedAt      *time.Time     `json:"resolved_at"`
	LastMessageAt   time.Time      `json:"last_message_at"`
	CreatedAt       time.Time      `json:"created_at"`
	UpdatedAt       time.Time      `json:"updated_at"`
	Attributes      map[string]any `json:"attributes" gorm:"-"`
	Tags            []string       `json:"tags" gorm:"-"`
	ChannelType     string         `json:"channel_type,omitempty" gorm:"-"`
	ContactName     string         `json:"contact_name" gorm:"-"`
}

type conversationTag struct {
	TenantID       uuid.UUID `gorm:"type:uuid;primaryKey"`
	ConversationID uuid.UUID `gorm:"type:uuid;primaryKey"`
	Tag            string    `gorm:"primaryKey"`
}

func (conversationTag) TableName() string { return "conversation_tags" }

// Message directions and authors.
const (
	DirIn       = "in"
	DirOut      = "out"
	DirInternal = "internal" // notes and system lines: never sent, never billed

	AuthorContact = "contact"
	AuthorAgent   = "agent"
	AuthorBot     = "bot"
	AuthorSystem  = "system"

	StatusReceived = "received"
	StatusNote     = "note"
)

// Message is one message, note or system line of a conversation.
type Message struct {
	TenantID       uuid.UUID    `json:"-" gorm:"type:uuid;primaryKey"`
	ID             uuid.UUID    `json:"id" gorm:"type:uuid;primaryKey"`
	ConversationID uuid.UUID    `json:"conversation_id" gorm:"type:uuid"`
	ChannelID      uuid.UUID    `json:"channel_id" gorm:"type:uuid"`
	Direction      string       `json:"direction"`
	AuthorKind     string       `json:"author_kind"`
	AuthorID       string       `json:"author_id"`
	Private        bool         `json:"private"`
	Content        string       `json:"content"`
	ContentType    string       `json:"content_type"`
	HTML           string       `json:"html,omitempty" gorm:"column:html"`
	MetaRaw        string       `json:"-" gorm:"column:meta"`
	MentionsRaw    string       `json:"-" gorm:"column:mentions"`
	ProviderID     *string      `json:"provider_id"`
	Status         string       `json:"status"`
	FailureReason  string       `json:"failure_reason"`
	Attempts       int          `json:"attempts"`
	CreatedAt      time.Time    `json:"created_at"`
	UpdatedAt      time.Time    `json:"updated_at"`
	Mentions       []uuid.UUID  `json:"mentions,omitempty" gorm:"-"`
	Attachments    []Attachment `json:"attachments" gorm:"-"`
}

// messageMeta is what a message keeps of its provider's details (e-mail threading).
type messageMeta struct {
	Subject    string   `json:"subject,omitempty"`
	InReplyTo  string   `json:"in_reply_to,omitempty"`
	References []string `json:"references,omitempty"`
	AutoReply  bool     `json:"auto_reply,omitempty"`
}

// Attachment is a file of a message.
type Attachment struct {
	TenantID       uuid.UUID  `json:"-" gorm:"type:uuid;primaryKey"`
	ID             uuid.UUID  `json:"id" gorm:"type:uuid;primaryKey"`
	MessageID      *uuid.UUID `json:"message_id" gorm:"type:uuid"`
	ConversationID *uuid.UUID `json:"conversation_id" gorm:"type:uuid"`
	Filename       string     `json:"filename"`
	ContentType    string     `json:"content_type"`
	Size           int64      `json:"size"`
	SHA256         string     `json:"sha256" gorm:"column:sha256"`
	StorageKey     string     `json:"-"`
	ProviderRef    string     `json:"-"`
	URL            string     `json:"-"`
	Status         string     `json:"status"`
	CreatedAt      time.Time  `json:"created_at"`
}

// Call is the record of a phone call; its conversation holds the call's message.
type Call struct {
	TenantID        uuid.UUID  `json:"-" gorm:"type:uuid;primaryKey"`
	ID              uuid.UUID  `json:"id" gorm:"type:uuid;primaryKey"`
	ConversationID  uuid.UUID  `json:"conversation_id" gorm:"type:uuid"`
	ChannelID       uuid.UUID  `json:"channel_id" gorm:"type:uuid"`
	ProviderCallID  string     `json:"provider_call_id"`
	Direction       string     `json:"direction"`
	FromNumber      string     `json:"from"`
	ToNumber        string     `json:"to"`
	Status          string     `json:"status"`
	StartedAt       time.Time  `json:"started_at"`
	AnsweredAt      *time.Time `json:"answered_at"`
	EndedAt         *time.Time `json:"ended_at"`
	DurationSeconds int64      `json:"duration_seconds"`
	RecordingURL    string     `json:"recording_url"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// Canned is a canned response.
type Canned struct {
	TenantID  uuid.UUID `json:"-" gorm:"type:uuid;primaryKey"`
	ID        uuid.UUID `json:"id" gorm:"type:uuid;primaryKey"`
	Shortcut  string    `json:"shortcut"`
	Title     string    `json:"title"`
	Content   string    `json:"content"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TableName pins the table.
func (Canned) TableName() string { return "canned_responses" }
