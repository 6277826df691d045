package meta

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// TypeWhatsApp is the channel type of the WhatsApp Cloud API.
const TypeWhatsApp = "whatsapp"

// WhatsApp limits that decide how a reply is split into API messages.
const (
	waMaxCaption = 1024
)

// WhatsApp is the WhatsApp Cloud API adapter.
type WhatsApp struct {
	client *http.Client
}

var (
	_ provider.Provider     = (*WhatsApp)(nil)
	_ provider.MediaFetcher = (*WhatsApp)(nil)
)

// NewWhatsApp returns the adapter; a nil client gets one with a 30 s timeout.
func NewWhatsApp(client *http.Client) *WhatsApp {
	return &WhatsApp{client: defaultClient(client)}
}

// Spec implements provider.Provider.
func (w *WhatsApp) Spec() provider.Spec {
	return provider.Spec{
		Type:       TypeWhatsApp,
		Required:   []string{"phone_number_id", "access_token", "app_secret", "verify_token"},
		Optional:   []string{"api_base", "api_version"},
		Secret:     []string{"access_token", "app_secret", "verify_token"},
		Defaults:   map[string]string{"api_base": DefaultAPIBase, "api_version": DefaultAPIVersion},
		Identities: []string{provider.IdentityWhatsApp, provider.IdentityPhone},
	}
}

// Validate implements provider.Provider.
func (w *WhatsApp) Validate(cfg map[string]string) error {
	if v := cfg["phone_number_id"]; v != "" && !digitsRE.MatchString(v) {
		// People paste the display number (+1 555…) here; the API wants the numeric id Meta
		// shows next to it.
		return fmt.Errorf("phone_number_id %q must be the numeric id from the WhatsApp Manager, not the phone number", v)
	}
	return validateCommon(cfg)
}

// Setup implements provider.Provider. Subscribing the app to the WhatsApp Business Account
// needs the account id, which the channel does not know; Meta's dashboard does it when the
// webhook is configured there.
func (w *WhatsApp) Setup(ctx context.Context, ch provider.Channel) error { return nil }

// unixTime is a Unix timestamp in seconds that Meta sends as a JSON string ("1700000000"); a
// number is accepted as well.
type unixTime int64

func (t *unixTime) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*t = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %s: %w", b, err)
	}
	*t = unixTime(n)
	return nil
}

func (t unixTime) time() time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(int64(t), 0).UTC()
}

type waPayload struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string  `json:"field"`
			Value waValue `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

type waValue struct {
	MessagingProduct string `json:"messaging_product"`
	Metadata         struct {
		DisplayPhoneNumber string `json:"display_phone_number"`
		PhoneNumberID      string `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []struct {
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
		WaID string `json:"wa_id"`
	} `json:"contacts"`
	Messages []waMessage `json:"messages"`
	Statuses []waStatus  `json:"statuses"`
}

type waMedia struct {
	ID       string `json:"id"`
	MimeType string `json:"mime_type"`
	SHA256   string `json:"sha256"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
	Voice    bool   `json:"voice"`
	Animated bool   `json:"animated"`
}

type waError struct {
	Code      int    `json:"code"`
	Title     string `json:"title"`
	Message   string `json:"message"`
	ErrorData struct {
		Details string `json:"details"`
	} `json:"error_data"`
}

type waMessage struct {
	From      string   `json:"from"`
	ID        string   `json:"id"`
	Timestamp unixTime `json:"timestamp"`
	Type      string   `json:"type"`
	Text      struct {
		Body string `json:"body"`
	} `json:"text"`
	Image    *waMedia `json:"image"`
	Audio    *waMedia `json:"audio"`
	Video    *waMedia `json:"video"`
	Document *waMedia `json:"document"`
	Sticker  *waMedia `json:"sticker"`
	Location struct {
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
		Name      string  `json:"name"`
		Address   string  `json:"address"`
	} `json:"location"`
	Interactive struct {
		Type        string `json:"type"`
		ButtonReply struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"button_reply"`
		ListReply struct {
			ID          string `json:"id"`
			Title       string `json:"title"`
			Description string `json:"description"`
		} `json:"list_reply"`
		NFMReply struct {
			Name         string `json:"name"`
			Body         string `json:"body"`
			ResponseJSON string `json:"response_json"`
		} `json:"nfm_reply"`
	} `json:"interactive"`
	Button struct {
		Payload string `json:"payload"`
		Text    string `json:"text"`
	} `json:"button"`
	Reaction struct {
		MessageID string `json:"message_id"`
		Emoji     string `json:"emoji"`
	} `json:"reaction"`
	Contacts []struct {
		Name struct {
			FormattedName string `json:"formatted_name"`
		} `json:"name"`
		Phones []struct {
			Phone string `json:"phone"`
			WaID  string `json:"wa_id"`
		} `json:"phones"`
	} `json:"contacts"`
	System struct {
		Body string `json:"body"`
	} `json:"system"`
	Errors []waError `json:"errors"`
}

type waStatus struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"`
	Timestamp   unixTime  `json:"timestamp"`
	RecipientID string    `json:"recipient_id"`
	Errors      []waError `json:"errors"`
}

// Webhook implements provider.Provider. A GET is the verification handshake; a POST carries
// entry[].changes[].value with the messages customers sent and the statuses of ours. Changes for
// another phone number of the same business account are skipped: one Meta app can serve several
// numbers, each its own channel, and every one of them receives the others' deliveries.
func (w *WhatsApp) Webhook(ctx context.Context, ch provider.Channel, r provider.Request) (provider.Batch, error) {
	if r.Method == http.MethodGet {
		return handshake(ch, r)
	}
	if err := verify(ch, r); err != nil {
		return provider.Batch{}, err
	}
	var p waPayload
	if err := json.Unmarshal(r.Body, &p); err != nil {
		return provider.Batch{}, fmt.Errorf("whatsapp: %v: %w", err, provider.ErrPayload)
	}
	var b provider.Batch
	if p.Object != "whatsapp_business_account" {
		// Correctly signed but for another product of the app (a page, Instagram): nothing for
		// this channel, and an error would only make Meta retry it.
		return b, nil
	}
	own := ch.Config["phone_number_id"]
	for _, e := range p.Entry {
		for _, c := range e.Changes {
			if c.Field != "" && c.Field != "messages" {
				continue
			}
			v := c.Value
			if v.Metadata.PhoneNumberID != own {
				continue
			}
			names := map[string]string{}
			for _, ct := range v.Contacts {
				names[ct.WaID] = ct.Profile.Name
			}
			for _, m := range v.Messages {
				if in, ok := waInbound(m, names); ok {
					b.Messages = append(b.Messages, in)
				}
			}
			for _, s := range v.Statuses {
				if su, ok := waStatusUpdate(s); ok {
					b.Statuses = append(b.Statuses, su)
				}
			}
		}
	}
	return b, nil
}

func waInbound(m waMessage, names map[string]string) (provider.InboundMessage, bool) {
	if m.ID == "" || m.From == "" {
		return provider.InboundMessage{}, false
	}
	waID := m.From
	in := provider.InboundMessage{
		ProviderID: m.ID,
		From: []provider.Identity{
			{Kind: provider.IdentityWhatsApp, Value: waID},
			{Kind: provider.IdentityPhone, Value: "+" + waID},
		},
		Name:        names[waID],
		ContentType: provider.ContentText,
		OccurredAt:  m.Timestamp.time(),
	}
	media := func(ct string, md *waMedia) {
		in.ContentType = ct
		if md == nil {
			return
		}
		in.Text = md.Caption
		in.Media = []provider.Media{{Ref: md.ID, ContentType: md.MimeType, Filename: md.Filename, Caption: md.Caption}}
	}
	switch m.Type {
	case "text":
		in.Text = m.Text.Body
	case "image":
		media(provider.ContentImage, m.Image)
	case "audio":
		media(provider.ContentAudio, m.Audio)
	case "video":
		media(provider.ContentVideo, m.Video)
	case "document":
		media(provider.ContentFile, m.Document)
	case "sticker":
		media(provider.ContentSticker, m.Sticker)
	case "location":
		in.ContentType = provider.ContentLocation
		in.Text = waLocation(m)
	case "interactive":
		// The customer tapped a reply button or picked a list row of an earlier message: the
		// title is what they saw and "said".
		in.Text = firstNonEmpty(m.Interactive.ButtonReply.Title, m.Interactive.ListReply.Title,
			m.Interactive.NFMReply.Body, m.Interactive.NFMReply.ResponseJSON)
	case "button":
		// A quick-reply button of a template message.
		in.Text = firstNonEmpty(m.Button.Text, m.Button.Payload)
	case "reaction":
		if m.Reaction.Emoji == "" {
			// A reaction being removed: nothing the agent needs to read.
			return provider.InboundMessage{}, false
		}
		in.Text = m.Reaction.Emoji
	case "contacts":
		var lines []string
		for _, c := range m.Contacts {
			line := c.Name.FormattedName
			for _, ph := range c.Phones {
				line = strings.TrimSpace(line + " " + ph.Phone)
			}
			lines = append(lines, line)
		}
		in.Text = strings.Join(lines, "\n")
	case "system":
		in.Text = m.System.Body
	default:
		// "unsupported" (polls, view-once media…), "order", or a type newer than this code: the
		// message must still reach the agent rather than vanish.
		in.Text = "[unsupported WhatsApp message: " + m.Type + "]"
		if len(m.Errors) > 0 {
			in.Text = "[unsupported WhatsApp message: " + m.Type + ": " + waReason(m.Errors) + "]"
		}
	}
	return in, true
}

// waLocation renders a shared location as text: the neutral message has no coordinates, so the
// place name, address and an RFC 5870 geo URI an agent's client can open.
func waLocation(m waMessage) string {
	var lines []string
	for _, s := range []string{m.Location.Name, m.Location.Address} {
		if s != "" {
			lines = append(lines, s)
		}
	}
	lines = append(lines, "geo:"+strconv.FormatFloat(m.Location.Latitude, 'f', -1, 64)+","+
		strconv.FormatFloat(m.Location.Longitude, 'f', -1, 64))
	return strings.Join(lines, "\n")
}

func waStatusUpdate(s waStatus) (provider.StatusUpdate, bool) {
	switch s.Status {
	case provider.StatusSent, provider.StatusDelivered, provider.StatusRead, provider.StatusFailed:
	default:
		// "deleted" and "warning" are not delivery states of the neutral model.
		return provider.StatusUpdate{}, false
	}
	if s.ID == "" {
		return provider.StatusUpdate{}, false
	}
	su := provider.StatusUpdate{ProviderID: s.ID, Status: s.Status, At: s.Timestamp.time()}
	if s.Status == provider.StatusFailed {
		su.Reason = waReason(s.Errors)
	}
	return su, true
}

func waReason(errs []waError) string {
	var parts []string
	for _, e := range errs {
		p := firstNonEmpty(e.Title, e.Message)
		if e.Code != 0 {
			p += fmt.Sprintf(" (#%d)", e.Code)
		}
		if d := firstNonEmpty(e.ErrorData.Details, e.Message); d != "" && d != firstNonEmpty(e.Title, e.Message) {
			p += ": " + d
		}
		parts = append(parts, strings.TrimSpace(p))
	}
	return strings.Join(parts, "; ")
}

// waOutMedia is the media object of an outbound message: a public link or an uploaded media id.
type waOutMedia struct {
	ID       string `json:"id,omitempty"`
	Link     string `json:"link,omitempty"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
}

type waOutText struct {
	// PreviewURL stays false: a preview of a link an agent pasted is WhatsApp fetching a URL
	// on the customer's behalf, which the agent did not ask for.
	PreviewURL bool   `json:"preview_url"`
	Body       string `json:"body"`
}

type waOutMessage struct {
	MessagingProduct string      `json:"messaging_product"`
	RecipientType    string      `json:"recipient_type"`
	To               string      `json:"to"`
	Type             string      `json:"type"`
	Text             *waOutText  `json:"text,omitempty"`
	Image            *waOutMedia `json:"image,omitempty"`
	Video            *waOutMedia `json:"video,omitempty"`
	Audio            *waOutMedia `json:"audio,omitempty"`
	Document         *waOutMedia `json:"document,omitempty"`
}

type waSendAnswer struct {
	Messages []struct {
		ID string `json:"id"`
	} `json:"messages"`
}

// waRecipient picks the wa_id to send to: the WhatsApp identity, else a phone number (the Cloud
// API takes the number without the +).
func waRecipient(to []provider.Identity) string {
	for _, id := range to {
		if id.Kind != provider.IdentityWhatsApp && id.Kind != provider.IdentityPhone {
			continue
		}
		var d strings.Builder
		for _, r := range id.Value {
			if r >= '0' && r <= '9' {
				d.WriteRune(r)
			}
		}
		if d.Len() > 0 {
			return d.String()
		}
	}
	return ""
}

// waMediaType maps an attachment to the WhatsApp message type that can carry it. WhatsApp
// accepts only JPEG and PNG as images; any other file goes as a document, which keeps its name.
func waMediaType(contentType string) string {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	switch {
	case ct == "image/jpeg" || ct == "image/png":
		return "image"
	case strings.HasPrefix(ct, "video/"):
		return "video"
	case strings.HasPrefix(ct, "audio/"):
		return "audio"
	default:
		return "document"
	}
}

// Send implements provider.Provider. Text goes as a text message; each attachment as its own
// media message (by link when it has a URL, otherwise uploaded first), with the text as the
// caption of the first one when WhatsApp allows a caption there, so a photo with a line of text
// arrives as one message as the agent wrote it. The returned id is the first message's: that is
// the one whose statuses the conversation shows.
func (w *WhatsApp) Send(ctx context.Context, ch provider.Channel, out provider.Outbound) (provider.Sent, error) {
	to := waRecipient(out.To)
	if to == "" {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: "the contact has no WhatsApp id or phone number"}
	}
	token := ch.Config["access_token"]
	base := waOutMessage{MessagingProduct: "whatsapp", RecipientType: "individual", To: to}

	var msgs []waOutMessage
	text := out.Text
	for i, a := range out.Attachments {
		m := base
		m.Type = waMediaType(a.ContentType)
		md := &waOutMedia{Link: a.URL}
		if m.Type == "document" {
			md.Filename = a.Filename
		}
		if i == 0 && text != "" && m.Type != "audio" && len([]rune(text)) <= waMaxCaption {
			md.Caption, text = text, ""
		}
		if md.Link == "" {
			if len(a.Data) == 0 {
				return provider.Sent{}, &provider.SendError{Permanent: true, Reason: fmt.Sprintf("attachment %q has neither a URL nor data", a.Filename)}
			}
			id, err := w.upload(ctx, ch, a)
			if err != nil {
				return provider.Sent{}, err
			}
			md.ID = id
		}
		switch m.Type {
		case "image":
			m.Image = md
		case "video":
			m.Video = md
		case "audio":
			m.Audio = md
		default:
			m.Document = md
		}
		msgs = append(msgs, m)
	}
	if text != "" {
		m := base
		m.Type = "text"
		m.Text = &waOutText{Body: text}
		// The text comes first: it usually introduces the files.
		msgs = append([]waOutMessage{m}, msgs...)
	}
	if len(msgs) == 0 {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: "empty reply"}
	}

	var first string
	u := graphURL(ch, ch.Config["phone_number_id"], "messages")
	for _, m := range msgs {
		body, err := json.Marshal(m)
		if err != nil {
			return provider.Sent{}, &provider.SendError{Permanent: true, Reason: err.Error()}
		}
		var ans waSendAnswer
		if err := do(ctx, w.client, http.MethodPost, u, token, "application/json", body, &ans); err != nil {
			return provider.Sent{}, err
		}
		if len(ans.Messages) == 0 || ans.Messages[0].ID == "" {
			return provider.Sent{}, &provider.SendError{Permanent: true, Reason: "WhatsApp accepted the message without a message id"}
		}
		if first == "" {
			first = ans.Messages[0].ID
		}
	}
	return provider.Sent{ProviderID: first}, nil
}

// upload stores an attachment's bytes with WhatsApp (POST /{phone_number_id}/media) and returns
// the media id a message can refer to.
func (w *WhatsApp) upload(ctx context.Context, ch provider.Channel, a provider.OutAttachment) (string, error) {
	ct := a.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("messaging_product", "whatsapp")
	_ = mw.WriteField("type", ct)
	h := textproto.MIMEHeader{}
	name := firstNonEmpty(a.Filename, "file")
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	h.Set("Content-Type", ct)
	part, err := mw.CreatePart(h)
	if err != nil {
		return "", &provider.SendError{Permanent: true, Reason: err.Error()}
	}
	_, _ = part.Write(a.Data)
	if err := mw.Close(); err != nil {
		return "", &provider.SendError{Permanent: true, Reason: err.Error()}
	}
	var ans struct {
		ID string `json:"id"`
	}
	u := graphURL(ch, ch.Config["phone_number_id"], "media")
	if err := do(ctx, w.client, http.MethodPost, u, ch.Config["access_token"], mw.FormDataContentType(), buf.Bytes(), &ans); err != nil {
		return "", err
	}
	if ans.ID == "" {
		return "", &provider.SendError{Permanent: true, Reason: "WhatsApp stored the media without an id"}
	}
	return ans.ID, nil
}

// FetchMedia implements provider.MediaFetcher. A webhook carries only a media id: the Graph API
// turns it into a short-lived URL, which needs the same bearer token to download.
func (w *WhatsApp) FetchMedia(ctx context.Context, ch provider.Channel, m provider.Media) ([]byte, string, error) {
	token := ch.Config["access_token"]
	if m.Ref == "" {
		return nil, "", fmt.Errorf("whatsapp: media without an id")
	}
	var info struct {
		URL      string `json:"url"`
		MimeType string `json:"mime_type"`
		SHA256   string `json:"sha256"`
	}
	if err := do(ctx, w.client, http.MethodGet, graphURL(ch, m.Ref), token, "", nil, &info); err != nil {
		return nil, "", fmt.Errorf("whatsapp: media %s: %w", m.Ref, err)
	}
	if info.URL == "" {
		return nil, "", fmt.Errorf("whatsapp: media %s: no download URL", m.Ref)
	}
	data, ct, err := download(ctx, w.client, info.URL, token)
	if err != nil {
		return nil, "", err
	}
	if want := decodeSHA256(info.SHA256); want != nil {
		if sum := sha256.Sum256(data); !bytes.Equal(sum[:], want) {
			return nil, "", fmt.Errorf("whatsapp: media %s: sha256 does not match (truncated download?)", m.Ref)
		}
	}
	return data, firstNonEmpty(info.MimeType, m.ContentType, ct), nil
}

// decodeSHA256 reads the digest Meta reports, seen both hex and base64 encoded; nil when it is
// neither, and the download is then taken as it is.
func decodeSHA256(s string) []byte {
	if b, err := hex.DecodeString(s); err == nil && len(b) == sha256.Size {
		return b
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == sha256.Size {
		return b
	}
	return nil
}
