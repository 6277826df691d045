// Package provider is the contract between Switchboard's inbox and the messaging providers it
// speaks to (WhatsApp Cloud API, Messenger, Telegram, WeChat, voice/CTI, e-mail, the API
// channel). An adapter turns a provider's real wire format into the neutral Batch below after
// checking the provider's real signature, and sends agent replies back in the provider's format.
//
// Adapters know nothing of storage, tenants or HTTP frameworks: they take a Request (the raw
// inbound HTTP request) and a Channel (its decrypted configuration) and return values, so each is
// tested on its own against real payload shapes and a local fake of the provider's API.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
)

// Identity kinds: how a contact is known to a channel. Values are normalised by the adapter
// (e-mail lower-cased, phone in E.164 with the leading +).
const (
	IdentityEmail         = "email"
	IdentityPhone         = "phone"
	IdentityWhatsApp      = "whatsapp"
	IdentityTelegram      = "telegram"
	IdentityMessenger     = "messenger"
	IdentityWeChatOpenID  = "wechat_openid"
	IdentityWeChatUnionID = "wechat_unionid"
	IdentityVisitor       = "visitor"
	IdentityExternal      = "external"
)

// IdentityKinds lists every kind, for validation.
var IdentityKinds = []string{IdentityEmail, IdentityPhone, IdentityWhatsApp, IdentityTelegram, IdentityMessenger,
	IdentityWeChatOpenID, IdentityWeChatUnionID, IdentityVisitor, IdentityExternal}

// Identity is one way of reaching a contact.
type Identity struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// Content types of a message.
const (
	ContentText     = "text"
	ContentHTML     = "html" // e-mail bodies; sanitised before display
	ContentImage    = "image"
	ContentAudio    = "audio"
	ContentVideo    = "video"
	ContentFile     = "file"
	ContentLocation = "location"
	ContentSticker  = "sticker"
	ContentCall     = "call"
)

// Media is an attachment of an inbound message as the provider describes it. Either Data holds
// the bytes (e-mail, uploads) or Ref/URL say where the adapter's FetchMedia can get them later;
// the message is stored first, the bytes are fetched afterwards.
type Media struct {
	Ref         string `json:"ref,omitempty"` // the provider's media/file id
	URL         string `json:"url,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Filename    string `json:"filename,omitempty"`
	Caption     string `json:"caption,omitempty"`
	Size        int64  `json:"size,omitempty"`
	Data        []byte `json:"-"`
}

// InboundMessage is a message a customer sent, in neutral form.
type InboundMessage struct {
	// ProviderID is the provider's message id: unique per channel, so a redelivery is recognised.
	ProviderID string
	// From are the sender's identities, most specific first (WhatsApp gives the wa_id and the
	// phone number it is; WeChat the OpenID and, when known, the UnionID).
	From []Identity
	// Name is the sender's display name when the provider says it.
	Name        string
	Locale      string
	ContentType string
	Text        string
	HTML        string // e-mail only: the HTML part, unsanitised
	Media       []Media
	// Subject and the threading keys are e-mail's: InReplyTo and References are Message-IDs of
	// earlier messages; a match joins the conversation they belong to.
	Subject    string
	InReplyTo  string
	References []string
	// ThreadKey groups messages into one conversation when the provider has its own notion of a
	// thread (a call id, the API channel's conversation id); empty means "the contact's open
	// conversation on this channel".
	ThreadKey string
	// AutoReply marks an automatic message (Auto-Submitted, Precedence: bulk/junk/list, vacation
	// responders): it is stored on an existing thread but never opens a new conversation.
	AutoReply  bool
	OccurredAt time.Time
}

// Delivery statuses of an outbound message, in the order they advance.
const (
	StatusQueued    = "queued"
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
	StatusFailed    = "failed"
)

// StatusUpdate reports what happened to a message Switchboard sent.
type StatusUpdate struct {
	ProviderID string // the provider's id of the outbound message
	Status     string // sent, delivered, read or failed
	Reason     string // why it failed
	At         time.Time
}

// Call events of the provider-neutral CTI API.
const (
	CallRinging  = "ringing"
	CallAnswered = "answered"
	CallEnded    = "ended"
)

// CallEvent is one step of a phone call.
type CallEvent struct {
	CallID       string // the provider's call id, unique per channel
	Event        string // ringing, answered, ended
	Direction    string // inbound or outbound
	From         Identity
	To           string
	Name         string
	DurationSec  int64 // for ended
	RecordingURL string
	At           time.Time
}

// Response is what the webhook answers the provider. The zero value answers 200 with an empty
// JSON object; WeChat wants "success" or an XML reply, Meta's verification the challenge, Twilio
// TwiML.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// Batch is everything one webhook delivery carried.
type Batch struct {
	Messages []InboundMessage
	Statuses []StatusUpdate
	Calls    []CallEvent
	Response Response
}

// Request is an inbound webhook request as it arrived.
type Request struct {
	Method string
	// URL is the full public URL the provider called (scheme, host, path and query): Twilio
	// signs it.
	URL    string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// Channel is a channel as an adapter sees it: its configuration with the secrets decrypted.
type Channel struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	Type     string
	PublicID string
	Name     string
	Config   map[string]string
	// WebhookURL is the public URL of this channel's inbound webhook.
	WebhookURL string
}

// Get returns a configuration value, or def when it is not set.
func (c Channel) Get(key, def string) string {
	if v := c.Config[key]; v != "" {
		return v
	}
	return def
}

// OutAttachment is a file sent with an agent reply.
type OutAttachment struct {
	Filename    string
	ContentType string
	Data        []byte
	// URL is where the provider can fetch the file when it wants a link rather than an upload.
	URL string
}

// Outbound is an agent reply to send.
type Outbound struct {
	// MessageID is Switchboard's id of the message: adapters use it as the idempotency key where
	// the provider takes one, and e-mail builds its Message-ID from it.
	MessageID      uuid.UUID
	ConversationID uuid.UUID
	// To are the contact's identities on this channel's kinds, most recently used first.
	To          []Identity
	ToName      string
	Text        string
	Attachments []OutAttachment
	// E-mail threading: the subject and the Message-IDs the reply answers.
	Subject    string
	InReplyTo  string
	References []string
}

// Sent is what the provider said about an outbound message it accepted.
type Sent struct {
	ProviderID string // the provider's message id (e-mail: the Message-ID we set)
}

// Spec describes a channel type's configuration. Config keys use the provider's own names.
type Spec struct {
	Type     string
	Required []string
	Optional []string
	// Secret keys are encrypted at rest and never echoed back.
	Secret []string
	// Defaults fill optional keys, e.g. api_base with the provider's real base URL.
	Defaults map[string]string
	// Identities are the contact identity kinds a reply on this channel can go to, in order.
	Identities []string
	// DeliversOnce says the provider does not deliver a webhook again after an error answer
	// (WeChat retries only a timeout; Twilio's voice callbacks are not retried): such a delivery
	// is never refused for the tenant's webhook budget, which would lose it.
	DeliversOnce bool
}

// Provider is one channel type's adapter.
type Provider interface {
	Spec() Spec
	// Validate checks a configuration beyond presence of the required keys (formats, URLs).
	Validate(cfg map[string]string) error
	// Setup runs once after the channel is created (Telegram's setWebhook). Most adapters do
	// nothing.
	Setup(ctx context.Context, ch Channel) error
	// Webhook checks the request's signature and parses it. A missing or wrong signature is
	// ErrSignature; a payload it cannot read is ErrPayload.
	Webhook(ctx context.Context, ch Channel, r Request) (Batch, error)
	// Send delivers an agent reply. Errors are SendError values saying whether a retry can help.
	Send(ctx context.Context, ch Channel, out Outbound) (Sent, error)
}

// MediaFetcher is implemented by adapters whose inbound media must be downloaded from the
// provider (WhatsApp media ids, Telegram file ids, WeChat media ids).
type MediaFetcher interface {
	FetchMedia(ctx context.Context, ch Channel, m Media) (data []byte, contentType string, err error)
}

// Errors of Webhook.
var (
	ErrSignature   = errors.New("provider: missing or invalid signature")
	ErrPayload     = errors.New("provider: unreadable payload")
	ErrUnsupported = errors.New("provider: not supported by this channel type")
)

// SendError is a failed Send. Permanent errors (the provider refused the message: 4xx other
// than 408/429) are not retried; the others are.
type SendError struct {
	Permanent bool
	Status    int // the provider's HTTP status, 0 when none
	Reason    string
}

func (e *SendError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("provider: send failed (%d): %s", e.Status, e.Reason)
	}
	return "provider: send failed: " + e.Reason
}

// HTTPSendError classifies a provider's HTTP answer.
func HTTPSendError(status int, reason string) *SendError {
	permanent := status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
	if len(reason) > 500 {
		reason = reason[:500]
	}
	return &SendError{Permanent: permanent, Status: status, Reason: reason}
}

// Permanent reports whether err is a SendError that a retry cannot fix.
func Permanent(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Permanent
}
