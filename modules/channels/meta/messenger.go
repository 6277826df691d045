package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// TypeMessenger is the channel type of the Facebook Messenger Platform.
const TypeMessenger = "messenger"

// Messenger is the Facebook Messenger Platform adapter for one Facebook Page.
type Messenger struct {
	client *http.Client
}

var (
	_ provider.Provider     = (*Messenger)(nil)
	_ provider.MediaFetcher = (*Messenger)(nil)
)

// NewMessenger returns the adapter; a nil client gets one with a 30 s timeout.
func NewMessenger(client *http.Client) *Messenger {
	return &Messenger{client: defaultClient(client)}
}

// Spec implements provider.Provider.
func (m *Messenger) Spec() provider.Spec {
	return provider.Spec{
		Type:       TypeMessenger,
		Required:   []string{"page_id", "page_access_token", "app_secret", "verify_token"},
		Optional:   []string{"api_base", "api_version"},
		Secret:     []string{"page_access_token", "app_secret", "verify_token"},
		Defaults:   map[string]string{"api_base": DefaultAPIBase, "api_version": DefaultAPIVersion},
		Identities: []string{provider.IdentityMessenger},
	}
}

// Validate implements provider.Provider.
func (m *Messenger) Validate(cfg map[string]string) error {
	if v := cfg["page_id"]; v != "" && !digitsRE.MatchString(v) {
		// The page's vanity name (facebook.com/acme) is not its id, and the Send API and the
		// webhook's entry.id only know the numeric one.
		return fmt.Errorf("page_id %q must be the Page's numeric id", v)
	}
	return validateCommon(cfg)
}

// Setup implements provider.Provider. The page is subscribed to the app's webhook in Meta's
// dashboard, where the webhook URL and verify token are entered anyway.
func (m *Messenger) Setup(ctx context.Context, ch provider.Channel) error { return nil }

type msPayload struct {
	Object string `json:"object"`
	Entry  []struct {
		ID        string    `json:"id"`
		Time      int64     `json:"time"`
		Messaging []msEvent `json:"messaging"`
	} `json:"entry"`
}

type msEvent struct {
	Sender struct {
		ID string `json:"id"`
	} `json:"sender"`
	Recipient struct {
		ID string `json:"id"`
	} `json:"recipient"`
	Timestamp int64 `json:"timestamp"`
	Message   *struct {
		MID         string `json:"mid"`
		Text        string `json:"text"`
		IsEcho      bool   `json:"is_echo"`
		Attachments []struct {
			Type  string `json:"type"`
			Title string `json:"title"`
			// Payload.URL is a signed CDN link, valid for a limited time only.
			Payload struct {
				URL         string `json:"url"`
				Title       string `json:"title"`
				StickerID   int64  `json:"sticker_id"`
				Coordinates *struct {
					Lat  float64 `json:"lat"`
					Long float64 `json:"long"`
				} `json:"coordinates"`
			} `json:"payload"`
		} `json:"attachments"`
		QuickReply *struct {
			Payload string `json:"payload"`
		} `json:"quick_reply"`
	} `json:"message"`
	Postback *struct {
		MID     string `json:"mid"`
		Title   string `json:"title"`
		Payload string `json:"payload"`
	} `json:"postback"`
	Delivery *struct {
		MIDs      []string `json:"mids"`
		Watermark int64    `json:"watermark"`
	} `json:"delivery"`
	Read *struct {
		Watermark int64 `json:"watermark"`
	} `json:"read"`
}

func ms(t int64) time.Time {
	if t <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(t).UTC()
}

// Webhook implements provider.Provider. A GET is the verification handshake; a POST carries
// entry[].messaging[] events: messages and postbacks from the person, echoes of the page's own
// messages (skipped: Switchboard already stored what it sent), deliveries and reads.
//
// Reads say only "everything sent to this person before the watermark was read" and carry no
// message ids, so a read becomes a StatusUpdate with an empty ProviderID and At set to the
// watermark; deliveries without mids (older Messenger clients) likewise. The neutral
// StatusUpdate does not say whose thread it is about, so a consumer can only use such an update
// once it knows the sender; it must not match the empty id against messages that have no
// provider id yet.
func (m *Messenger) Webhook(ctx context.Context, ch provider.Channel, r provider.Request) (provider.Batch, error) {
	if r.Method == http.MethodGet {
		return handshake(ch, r)
	}
	if err := verify(ch, r); err != nil {
		return provider.Batch{}, err
	}
	var p msPayload
	if err := json.Unmarshal(r.Body, &p); err != nil {
		return provider.Batch{}, fmt.Errorf("messenger: %v: %w", err, provider.ErrPayload)
	}
	var b provider.Batch
	if p.Object != "page" {
		return b, nil
	}
	page := ch.Config["page_id"]
	for _, e := range p.Entry {
		if page != "" && e.ID != page {
			// One app can serve several pages, each its own channel.
			continue
		}
		for _, ev := range e.Messaging {
			switch {
			case ev.Message != nil:
				if in, ok := msInbound(ev); ok {
					b.Messages = append(b.Messages, in)
				}
			case ev.Postback != nil:
				if in, ok := msPostback(ev); ok {
					b.Messages = append(b.Messages, in)
				}
			case ev.Delivery != nil:
				at := ms(ev.Timestamp)
				if at.IsZero() {
					at = ms(ev.Delivery.Watermark)
				}
				if len(ev.Delivery.MIDs) == 0 {
					b.Statuses = append(b.Statuses, provider.StatusUpdate{Status: provider.StatusDelivered, At: ms(ev.Delivery.Watermark)})
				}
				for _, mid := range ev.Delivery.MIDs {
					b.Statuses = append(b.Statuses, provider.StatusUpdate{ProviderID: mid, Status: provider.StatusDelivered, At: at})
				}
			case ev.Read != nil:
				b.Statuses = append(b.Statuses, provider.StatusUpdate{Status: provider.StatusRead, At: ms(ev.Read.Watermark)})
			}
		}
	}
	return b, nil
}

func msFrom(psid string) []provider.Identity {
	return []provider.Identity{{Kind: provider.IdentityMessenger, Value: psid}}
}

func msInbound(ev msEvent) (provider.InboundMessage, bool) {
	msg := ev.Message
	if msg.IsEcho || msg.MID == "" || ev.Sender.ID == "" {
		return provider.InboundMessage{}, false
	}
	in := provider.InboundMessage{
		ProviderID:  msg.MID,
		From:        msFrom(ev.Sender.ID),
		ContentType: provider.ContentText,
		Text:        msg.Text,
		OccurredAt:  ms(ev.Timestamp),
	}
	var lines []string
	for i, a := range msg.Attachments {
		ct := ""
		switch a.Type {
		case "image":
			ct = provider.ContentImage
			if a.Payload.StickerID != 0 {
				// A sticker (the thumbs-up too) arrives as an image with a sticker id.
				ct = provider.ContentSticker
			}
		case "video":
			ct = provider.ContentVideo
		case "audio":
			ct = provider.ContentAudio
		case "file":
			ct = provider.ContentFile
		case "location":
			ct = provider.ContentLocation
			if c := a.Payload.Coordinates; c != nil {
				lines = append(lines, firstNonEmpty(a.Title, a.Payload.Title), "geo:"+strconv.FormatFloat(c.Lat, 'f', -1, 64)+","+strconv.FormatFloat(c.Long, 'f', -1, 64))
			}
		default:
			// "fallback" (a shared link), "template", reels: what the person shared is its
			// title and URL.
			lines = append(lines, firstNonEmpty(a.Payload.Title, a.Title), a.Payload.URL)
		}
		if i == 0 && ct != "" && in.Text == "" {
			in.ContentType = ct
		}
		if a.Payload.URL != "" && ct != "" && ct != provider.ContentLocation {
			in.Media = append(in.Media, provider.Media{URL: a.Payload.URL})
		}
	}
	if len(lines) > 0 {
		var nonEmpty []string
		for _, l := range lines {
			if l != "" {
				nonEmpty = append(nonEmpty, l)
			}
		}
		in.Text = strings.TrimSpace(strings.Join(append([]string{in.Text}, nonEmpty...), "\n"))
	}
	return in, true
}

// msPostback turns a tap on a button of an earlier page message into the text the person saw.
func msPostback(ev msEvent) (provider.InboundMessage, bool) {
	pb := ev.Postback
	if ev.Sender.ID == "" {
		return provider.InboundMessage{}, false
	}
	id := pb.MID
	if id == "" {
		// Postbacks carried no mid before Graph v8; sender and millisecond time identify one
		// just as well, and stay the same when Meta redelivers it.
		id = "postback:" + ev.Sender.ID + ":" + strconv.FormatInt(ev.Timestamp, 10)
	}
	return provider.InboundMessage{
		ProviderID:  id,
		From:        msFrom(ev.Sender.ID),
		ContentType: provider.ContentText,
		Text:        firstNonEmpty(pb.Title, pb.Payload),
		OccurredAt:  ms(ev.Timestamp),
	}, true
}

type msRecipient struct {
	ID string `json:"id"`
}

type msAttachment struct {
	Type    string `json:"type"`
	Payload struct {
		URL        string `json:"url,omitempty"`
		IsReusable bool   `json:"is_reusable"`
	} `json:"payload"`
}

type msMessage struct {
	Text       string        `json:"text,omitempty"`
	Attachment *msAttachment `json:"attachment,omitempty"`
}

type msSend struct {
	Recipient     msRecipient `json:"recipient"`
	MessagingType string      `json:"messaging_type"`
	Message       msMessage   `json:"message"`
}

type msSendAnswer struct {
	RecipientID string `json:"recipient_id"`
	MessageID   string `json:"message_id"`
}

func msAttachmentType(contentType string) string {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	for _, t := range []string{"image", "video", "audio"} {
		if strings.HasPrefix(ct, t+"/") {
			return t
		}
	}
	return "file"
}

// Send implements provider.Provider. A Messenger message is either text or one attachment, so a
// reply becomes its text followed by one message per attachment (by URL when it has one,
// otherwise uploaded with the message as multipart filedata). messaging_type RESPONSE is the
// agent answering within Messenger's 24-hour window. The returned id is the first message's.
func (m *Messenger) Send(ctx context.Context, ch provider.Channel, out provider.Outbound) (provider.Sent, error) {
	psid := ""
	for _, id := range out.To {
		if id.Kind == provider.IdentityMessenger && id.Value != "" {
			psid = id.Value
			break
		}
	}
	if psid == "" {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: "the contact has no Messenger id"}
	}
	if out.Text == "" && len(out.Attachments) == 0 {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: "empty reply"}
	}
	page := ch.Get("page_id", "me")
	u := graphURL(ch, page, "messages") + "?access_token=" + url.QueryEscape(ch.Config["page_access_token"])

	var first string
	record := func(ans msSendAnswer) error {
		if ans.MessageID == "" {
			return &provider.SendError{Permanent: true, Reason: "Messenger accepted the message without a message_id"}
		}
		if first == "" {
			first = ans.MessageID
		}
		return nil
	}
	if out.Text != "" {
		body, _ := json.Marshal(msSend{Recipient: msRecipient{ID: psid}, MessagingType: "RESPONSE", Message: msMessage{Text: out.Text}})
		var ans msSendAnswer
		if err := do(ctx, m.client, http.MethodPost, u, "", "application/json", body, &ans); err != nil {
			return provider.Sent{}, err
		}
		if err := record(ans); err != nil {
			return provider.Sent{}, err
		}
	}
	for _, a := range out.Attachments {
		att := &msAttachment{Type: msAttachmentType(a.ContentType)}
		var ans msSendAnswer
		switch {
		case a.URL != "":
			att.Payload.URL = a.URL
			body, _ := json.Marshal(msSend{Recipient: msRecipient{ID: psid}, MessagingType: "RESPONSE", Message: msMessage{Attachment: att}})
			if err := do(ctx, m.client, http.MethodPost, u, "", "application/json", body, &ans); err != nil {
				return provider.Sent{}, err
			}
		case len(a.Data) > 0:
			body, ct, err := msMultipart(psid, att, a)
			if err != nil {
				return provider.Sent{}, &provider.SendError{Permanent: true, Reason: err.Error()}
			}
			if err := do(ctx, m.client, http.MethodPost, u, "", ct, body, &ans); err != nil {
				return provider.Sent{}, err
			}
		default:
			return provider.Sent{}, &provider.SendError{Permanent: true, Reason: fmt.Sprintf("attachment %q has neither a URL nor data", a.Filename)}
		}
		if err := record(ans); err != nil {
			return provider.Sent{}, err
		}
	}
	return provider.Sent{ProviderID: first}, nil
}

// msMultipart builds the Send API's upload form: recipient and message as JSON fields, the
// bytes as filedata.
func msMultipart(psid string, att *msAttachment, a provider.OutAttachment) ([]byte, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	rcpt, _ := json.Marshal(msRecipient{ID: psid})
	msg, _ := json.Marshal(msMessage{Attachment: att})
	_ = mw.WriteField("recipient", string(rcpt))
	_ = mw.WriteField("messaging_type", "RESPONSE")
	_ = mw.WriteField("message", string(msg))
	ct := firstNonEmpty(a.ContentType, "application/octet-stream")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="filedata"; filename=%q`, firstNonEmpty(a.Filename, "file")))
	h.Set("Content-Type", ct)
	part, err := mw.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	if _, err := part.Write(a.Data); err != nil {
		return nil, "", err
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

// FetchMedia implements provider.MediaFetcher. Messenger attachment URLs are signed, expiring
// CDN links that need no token: the page token is deliberately not sent to them.
func (m *Messenger) FetchMedia(ctx context.Context, ch provider.Channel, md provider.Media) ([]byte, string, error) {
	if md.URL == "" {
		return nil, "", fmt.Errorf("messenger: media without a URL")
	}
	data, ct, err := download(ctx, m.client, md.URL, "")
	if err != nil {
		return nil, "", err
	}
	return data, firstNonEmpty(ct, md.ContentType), nil
}
