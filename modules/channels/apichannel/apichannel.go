// Package apichannel is the "api" channel: a brand's own system (a shop, an app backend, a
// ticketing tool) posts its customers' messages to Switchboard and receives the agents' replies
// on a webhook of its own. Both directions are JSON signed with the channel's secret in
// Switchboard's X-Switchboard-Signature scheme (see Sign and Verify).
//
// Inbound, POST to the channel's webhook URL, a message:
//
//	{"message_id": "m-1", "contact": {"external_id": "u-42", "name": "Li Lei",
//	 "email": "li@example.com", "phone": "+8613800138000"}, "text": "Hello",
//	 "attachments": [{"url": "https://…", "content_type": "image/png", "filename": "a.png"}],
//	 "thread_id": "order-7", "occurred_at": "2025-01-02T03:04:05Z"}
//
// or the outcome of a reply the brand's system delivered to its customer:
//
//	{"type": "status", "message_id": "<the id Send returned>", "status": "delivered|read|failed",
//	 "reason": "…", "occurred_at": "…"}
//
// Outbound, POST to webhook_url with Idempotency-Key set to Switchboard's message id:
//
//	{"message_id": "<uuid>", "conversation_id": "<uuid>", "to": [{"kind": "external", "value": "u-42"}],
//	 "text": "…", "attachments": [{"url": "…", "filename": "…", "content_type": "…"}]}
//
// The brand answers 2xx, optionally with {"id": "…"}, its own id of the reply.
package apichannel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// Type is the channel type.
const Type = "api"

// Config keys.
const (
	KeySecret     = "secret"
	KeyWebhookURL = "webhook_url"
)

// minSecretLen keeps brands from signing with a guessable secret: anyone who guesses it can post
// messages as any of their customers.
const minSecretLen = 16

// maxAnswer bounds how much of a brand's answer is read: only a small id is expected.
const maxAnswer = 1 << 20

// maxMedia bounds an attachment download so a wrong URL cannot exhaust memory.
const maxMedia = 64 << 20

// API is the API channel adapter.
type API struct {
	client *http.Client
	now    func() time.Time
}

var (
	_ provider.Provider     = (*API)(nil)
	_ provider.MediaFetcher = (*API)(nil)
)

// New returns the adapter. now is the clock signatures are checked against (time.Now when nil).
func New(client *http.Client, now func() time.Time) *API {
	if client == nil {
		client = http.DefaultClient
	}
	if now == nil {
		now = time.Now
	}
	return &API{client: client, now: now}
}

// Spec describes the configuration. There is no api_base: webhook_url is the brand's endpoint.
func (a *API) Spec() provider.Spec {
	return provider.Spec{
		Type:       Type,
		Required:   []string{KeySecret, KeyWebhookURL},
		Secret:     []string{KeySecret},
		Identities: []string{provider.IdentityExternal, provider.IdentityEmail, provider.IdentityPhone},
	}
}

// Validate checks the secret's length and that webhook_url is an absolute http(s) URL.
func (a *API) Validate(cfg map[string]string) error {
	if len(cfg[KeySecret]) < minSecretLen {
		return fmt.Errorf("apichannel: %s must be at least %d characters", KeySecret, minSecretLen)
	}
	return ValidateHTTPURL(KeyWebhookURL, cfg[KeyWebhookURL])
}

// ValidateHTTPURL checks that v is an absolute http or https URL with a host.
func ValidateHTTPURL(key, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s must be an absolute http(s) URL, got %q", key, v)
	}
	return nil
}

// Setup has nothing to register: the brand configures its side by hand.
func (a *API) Setup(context.Context, provider.Channel) error { return nil }

type contact struct {
	ExternalID string `json:"external_id"`
	Name       string `json:"name"`
	Email      string `json:"email"`
	Phone      string `json:"phone"`
}

type attachment struct {
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	Filename    string `json:"filename"`
}

// inbound is either a message (type empty or "message") or a status update.
type inbound struct {
	Type        string       `json:"type"`
	MessageID   string       `json:"message_id"`
	Contact     contact      `json:"contact"`
	Text        string       `json:"text"`
	Attachments []attachment `json:"attachments"`
	ThreadID    string       `json:"thread_id"`
	OccurredAt  string       `json:"occurred_at"`
	Status      string       `json:"status"`
	Reason      string       `json:"reason"`
}

// Webhook verifies the signature and parses one message or one status update.
func (a *API) Webhook(_ context.Context, ch provider.Channel, r provider.Request) (provider.Batch, error) {
	if err := Verify(ch.Config[KeySecret], r.Header.Get(SignatureHeader), r.Body, a.now()); err != nil {
		return provider.Batch{}, fmt.Errorf("apichannel: %w", err)
	}
	var in inbound
	if err := json.Unmarshal(r.Body, &in); err != nil {
		return provider.Batch{}, fmt.Errorf("apichannel: %v: %w", err, provider.ErrPayload)
	}
	if in.MessageID == "" {
		return provider.Batch{}, payloadErr("message_id is required")
	}
	at, err := a.occurredAt(in.OccurredAt)
	if err != nil {
		return provider.Batch{}, err
	}
	switch in.Type {
	case "status":
		s, err := parseStatus(in, at)
		if err != nil {
			return provider.Batch{}, err
		}
		return provider.Batch{Statuses: []provider.StatusUpdate{s}}, nil
	case "", "message":
		m, err := parseMessage(in, at)
		if err != nil {
			return provider.Batch{}, err
		}
		return provider.Batch{Messages: []provider.InboundMessage{m}}, nil
	default:
		return provider.Batch{}, payloadErr(fmt.Sprintf("unknown type %q", in.Type))
	}
}

func payloadErr(reason string) error {
	return fmt.Errorf("apichannel: %s: %w", reason, provider.ErrPayload)
}

func (a *API) occurredAt(s string) (time.Time, error) {
	if s == "" {
		return a.now().UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, payloadErr("occurred_at is not RFC 3339")
	}
	return t.UTC(), nil
}

func parseMessage(in inbound, at time.Time) (provider.InboundMessage, error) {
	from, err := identities(in.Contact)
	if err != nil {
		return provider.InboundMessage{}, err
	}
	if in.Text == "" && len(in.Attachments) == 0 {
		return provider.InboundMessage{}, payloadErr("a message needs text or attachments")
	}
	m := provider.InboundMessage{
		ProviderID:  in.MessageID,
		From:        from,
		Name:        strings.TrimSpace(in.Contact.Name),
		ContentType: provider.ContentText,
		Text:        in.Text,
		ThreadKey:   in.ThreadID,
		OccurredAt:  at,
	}
	for i, att := range in.Attachments {
		if err := ValidateHTTPURL(fmt.Sprintf("attachments[%d].url", i), att.URL); err != nil {
			return provider.InboundMessage{}, payloadErr(err.Error())
		}
		m.Media = append(m.Media, provider.Media{URL: att.URL, ContentType: att.ContentType, Filename: att.Filename})
	}
	// The first attachment names the kind of message, as a photo with a caption is an image on
	// the messaging apps; the text stays with it.
	if len(in.Attachments) > 0 {
		m.ContentType = contentType(in.Attachments[0].ContentType)
	}
	return m, nil
}

func contentType(mime string) string {
	switch {
	case strings.HasPrefix(mime, "image/"):
		return provider.ContentImage
	case strings.HasPrefix(mime, "audio/"):
		return provider.ContentAudio
	case strings.HasPrefix(mime, "video/"):
		return provider.ContentVideo
	default:
		return provider.ContentFile
	}
}

// identities lists the contact's identities most specific first: the brand's own id is exact,
// an e-mail or phone number may be shared or recycled. A malformed e-mail or phone is refused
// instead of dropped so the brand's developers see the mistake.
func identities(c contact) ([]provider.Identity, error) {
	var ids []provider.Identity
	if v := strings.TrimSpace(c.ExternalID); v != "" {
		ids = append(ids, provider.Identity{Kind: provider.IdentityExternal, Value: v})
	}
	if v := strings.TrimSpace(c.Email); v != "" {
		a, err := mail.ParseAddress(v)
		if err != nil || a.Address != v {
			return nil, payloadErr(fmt.Sprintf("contact.email %q is not an e-mail address", v))
		}
		ids = append(ids, provider.Identity{Kind: provider.IdentityEmail, Value: strings.ToLower(v)})
	}
	if c.Phone != "" {
		p, ok := NormalizePhone(c.Phone)
		if !ok {
			return nil, payloadErr(fmt.Sprintf("contact.phone %q is not an international number", c.Phone))
		}
		ids = append(ids, provider.Identity{Kind: provider.IdentityPhone, Value: p})
	}
	if len(ids) == 0 {
		return nil, payloadErr("contact needs external_id, email or phone")
	}
	return ids, nil
}

func parseStatus(in inbound, at time.Time) (provider.StatusUpdate, error) {
	switch in.Status {
	case provider.StatusSent, provider.StatusDelivered, provider.StatusRead, provider.StatusFailed:
	default:
		return provider.StatusUpdate{}, payloadErr(fmt.Sprintf("unknown status %q", in.Status))
	}
	return provider.StatusUpdate{ProviderID: in.MessageID, Status: in.Status, Reason: in.Reason, At: at}, nil
}

type outAttachment struct {
	URL         string `json:"url,omitempty"`
	Filename    string `json:"filename,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	// Data carries the file itself (base64 in JSON) when Switchboard has no URL to give.
	Data []byte `json:"data,omitempty"`
}

type outbound struct {
	MessageID      string              `json:"message_id"`
	ConversationID string              `json:"conversation_id"`
	To             []provider.Identity `json:"to"`
	Text           string              `json:"text"`
	Attachments    []outAttachment     `json:"attachments,omitempty"`
}

// Send posts the reply to the brand's webhook_url. The brand's id of the reply, when it gives
// one, is the ProviderID its status updates must quote; otherwise they quote ours.
func (a *API) Send(ctx context.Context, ch provider.Channel, out provider.Outbound) (provider.Sent, error) {
	secret := ch.Config[KeySecret]
	target := ch.Config[KeyWebhookURL]
	if secret == "" || target == "" {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: "channel has no secret or webhook_url"}
	}
	o := outbound{
		MessageID:      out.MessageID.String(),
		ConversationID: out.ConversationID.String(),
		To:             out.To,
		Text:           out.Text,
	}
	for _, att := range out.Attachments {
		oa := outAttachment{URL: att.URL, Filename: att.Filename, ContentType: att.ContentType}
		if oa.URL == "" {
			oa.Data = att.Data
		}
		o.Attachments = append(o.Attachments, oa)
	}
	body, err := json.Marshal(o)
	if err != nil {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", o.MessageID)
	req.Header.Set(SignatureHeader, Sign(secret, a.now(), body))
	resp, err := a.client.Do(req)
	if err != nil {
		return provider.Sent{}, &provider.SendError{Reason: err.Error()}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return provider.Sent{}, provider.HTTPSendError(resp.StatusCode, string(answer))
	}
	if err != nil {
		// The brand accepted the reply; losing the tail of its answer must not make us send twice.
		return provider.Sent{ProviderID: o.MessageID}, nil
	}
	// The answer's body is optional and free-form; only a JSON object with a string id counts.
	var ack struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(answer, &ack) == nil && ack.ID != "" {
		return provider.Sent{ProviderID: ack.ID}, nil
	}
	return provider.Sent{ProviderID: o.MessageID}, nil
}

// FetchMedia downloads an attachment from the URL the brand gave. The request goes through the
// adapter's client, which is where a deployment blocks private networks.
func (a *API) FetchMedia(ctx context.Context, _ provider.Channel, m provider.Media) ([]byte, string, error) {
	if err := ValidateHTTPURL("media url", m.URL); err != nil {
		return nil, "", fmt.Errorf("apichannel: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL, nil)
	if err != nil {
		return nil, "", fmt.Errorf("apichannel: %w", err)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("apichannel: fetch media: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("apichannel: fetch media: status %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMedia+1))
	if err != nil {
		return nil, "", fmt.Errorf("apichannel: fetch media: %w", err)
	}
	if len(data) > maxMedia {
		return nil, "", errors.New("apichannel: fetch media: larger than 64 MiB")
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = m.ContentType
	}
	return data, ct, nil
}
