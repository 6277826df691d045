// Package telegram is the Telegram Bot API channel: updates arrive on the webhook registered by
// setWebhook and are authenticated by the secret_token Telegram echoes in
// X-Telegram-Bot-Api-Secret-Token; replies go out through sendMessage, sendPhoto and
// sendDocument.
//
// Identities: a contact is the chat (telegram:<chat.id>), because that is where a reply must go.
// In a private chat the chat id is the user's id; in a group the whole group is one contact.
//
// ProviderID of an inbound message is "<chat.id>:<message_id>" because message_id is only unique
// within a chat. An edited message (edited_message) is stored as a new message with the id
// "<chat.id>:<message_id>:<edit_date>": the agent sees what the customer corrected, and every
// further edit is its own delivery, while a redelivery of the same edit is still recognised.
// Telegram sends no delivery or read statuses to bots.
package telegram

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// Type is the channel type this adapter serves.
const Type = "telegram"

// DefaultAPIBase is the real Bot API server.
const DefaultAPIBase = "https://api.telegram.org"

// SecretHeader carries the secret_token given to setWebhook on every update.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// Limits of the Bot API: texts are cut at 4096 UTF-16 units, captions at 1024, and bots may
// download files of at most 20 MB.
const (
	maxText       = 4096
	maxCaption    = 1024
	maxDownload   = 20 << 20
	maxAnswerBody = 1 << 20
)

// allowedUpdates are the update kinds the adapter understands; asking Telegram for only these
// keeps callback queries, polls and member updates from reaching the webhook at all.
var allowedUpdates = []string{"message", "edited_message"}

var (
	botTokenRe    = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]+$`)
	secretTokenRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
)

// Telegram is the adapter.
type Telegram struct {
	client *http.Client
}

// New returns the adapter; client carries every Bot API call (nil: a client with a 30 s timeout).
func New(client *http.Client) *Telegram {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Telegram{client: client}
}

var (
	_ provider.Provider     = (*Telegram)(nil)
	_ provider.MediaFetcher = (*Telegram)(nil)
)

// Spec describes the configuration.
func (t *Telegram) Spec() provider.Spec {
	return provider.Spec{
		Type:       Type,
		Required:   []string{"bot_token", "secret_token"},
		Optional:   []string{"api_base"},
		Secret:     []string{"bot_token", "secret_token"},
		Defaults:   map[string]string{"api_base": DefaultAPIBase},
		Identities: []string{provider.IdentityTelegram},
	}
}

// Validate checks the formats Telegram itself enforces, so a typo fails at creation rather than
// at the first setWebhook.
func (t *Telegram) Validate(cfg map[string]string) error {
	if !botTokenRe.MatchString(cfg["bot_token"]) {
		return errors.New("telegram: bot_token must look like 123456789:AA… (from @BotFather)")
	}
	if !secretTokenRe.MatchString(cfg["secret_token"]) {
		return errors.New("telegram: secret_token must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
	}
	if b := cfg["api_base"]; b != "" {
		u, err := url.Parse(b)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("telegram: api_base %q is not an http(s) URL", b)
		}
	}
	return nil
}

// Setup registers the channel's webhook URL with Telegram, together with the secret_token
// Telegram will send back on every update.
func (t *Telegram) Setup(ctx context.Context, ch provider.Channel) error {
	if ch.WebhookURL == "" {
		return errors.New("telegram: setWebhook: the channel has no webhook URL")
	}
	body, _ := json.Marshal(map[string]any{
		"url":             ch.WebhookURL,
		"secret_token":    ch.Config["secret_token"],
		"allowed_updates": allowedUpdates,
	})
	if _, err := t.call(ctx, ch, "setWebhook", "application/json", body); err != nil {
		var se *provider.SendError
		if errors.As(err, &se) {
			reason := strings.TrimPrefix(se.Reason, "telegram: setWebhook: ")
			if se.Status != 0 {
				return fmt.Errorf("telegram: setWebhook refused (%d): %s", se.Status, reason)
			}
			return fmt.Errorf("telegram: setWebhook: %s", reason)
		}
		return fmt.Errorf("telegram: setWebhook: %w", err)
	}
	return nil
}

// Wire format of an update (https://core.telegram.org/bots/api#update), the fields used here.
type update struct {
	UpdateID      int64    `json:"update_id"`
	Message       *message `json:"message"`
	EditedMessage *message `json:"edited_message"`
}

type message struct {
	MessageID int64       `json:"message_id"`
	From      *user       `json:"from"`
	Chat      chat        `json:"chat"`
	Date      int64       `json:"date"`
	EditDate  int64       `json:"edit_date"`
	Text      string      `json:"text"`
	Caption   string      `json:"caption"`
	Photo     []photoSize `json:"photo"`
	Document  *file       `json:"document"`
	Audio     *file       `json:"audio"`
	Voice     *file       `json:"voice"`
	Video     *file       `json:"video"`
	Sticker   *sticker    `json:"sticker"`
	Location  *location   `json:"location"`
}

type user struct {
	ID           int64  `json:"id"`
	IsBot        bool   `json:"is_bot"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	Username     string `json:"username"`
	LanguageCode string `json:"language_code"`
}

type chat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title"`
	Username  string `json:"username"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

type photoSize struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	FileSize     int64  `json:"file_size"`
}

type file struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileName     string `json:"file_name"`
	MimeType     string `json:"mime_type"`
	FileSize     int64  `json:"file_size"`
}

type sticker struct {
	FileID     string `json:"file_id"`
	Emoji      string `json:"emoji"`
	IsAnimated bool   `json:"is_animated"`
	IsVideo    bool   `json:"is_video"`
	FileSize   int64  `json:"file_size"`
}

type location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

// Webhook checks the secret token and parses one update. Update kinds other than message and
// edited_message, and service messages without content (a member joined, a title changed),
// yield an empty batch: acknowledged so Telegram stops redelivering them, stored nowhere.
func (t *Telegram) Webhook(_ context.Context, ch provider.Channel, r provider.Request) (provider.Batch, error) {
	want := ch.Config["secret_token"]
	got := r.Header.Get(SecretHeader)
	if want == "" || got == "" {
		return provider.Batch{}, fmt.Errorf("telegram: no %s: %w", SecretHeader, provider.ErrSignature)
	}
	if !hmac.Equal([]byte(got), []byte(want)) {
		return provider.Batch{}, fmt.Errorf("telegram: wrong %s: %w", SecretHeader, provider.ErrSignature)
	}
	var u update
	if err := json.Unmarshal(r.Body, &u); err != nil {
		return provider.Batch{}, fmt.Errorf("telegram: update: %v: %w", err, provider.ErrPayload)
	}
	var b provider.Batch
	if u.Message != nil {
		if m, ok := inbound(u.Message, false); ok {
			b.Messages = append(b.Messages, m)
		}
	}
	if u.EditedMessage != nil {
		if m, ok := inbound(u.EditedMessage, true); ok {
			b.Messages = append(b.Messages, m)
		}
	}
	return b, nil
}

func inbound(m *message, edited bool) (provider.InboundMessage, bool) {
	if m.MessageID == 0 || m.Chat.ID == 0 {
		return provider.InboundMessage{}, false
	}
	chatID := strconv.FormatInt(m.Chat.ID, 10)
	in := provider.InboundMessage{
		ProviderID: chatID + ":" + strconv.FormatInt(m.MessageID, 10),
		From:       []provider.Identity{{Kind: provider.IdentityTelegram, Value: chatID}},
		Name:       chatName(m),
		OccurredAt: time.Unix(m.Date, 0).UTC(),
	}
	if edited {
		at := m.EditDate
		if at == 0 {
			at = m.Date
		}
		in.ProviderID += ":" + strconv.FormatInt(at, 10)
		in.OccurredAt = time.Unix(at, 0).UTC()
	}
	// The language of a group says nothing about the contact, who is the whole group.
	if m.From != nil && m.Chat.Type == "private" {
		in.Locale = m.From.LanguageCode
	}
	switch {
	case len(m.Photo) > 0:
		best := m.Photo[0]
		for _, p := range m.Photo[1:] {
			if p.Width*p.Height > best.Width*best.Height ||
				(p.Width*p.Height == best.Width*best.Height && p.FileSize > best.FileSize) {
				best = p
			}
		}
		// Telegram re-encodes every photo as JPEG.
		in.ContentType = provider.ContentImage
		in.Text = m.Caption
		in.Media = []provider.Media{{Ref: best.FileID, ContentType: "image/jpeg", Caption: m.Caption, Size: best.FileSize}}
	case m.Document != nil:
		in.ContentType = provider.ContentFile
		if strings.HasPrefix(m.Document.MimeType, "image/") {
			in.ContentType = provider.ContentImage
		}
		in.Text = m.Caption
		in.Media = []provider.Media{fileMedia(m.Document, m.Caption)}
	case m.Voice != nil:
		in.ContentType = provider.ContentAudio
		in.Text = m.Caption
		in.Media = []provider.Media{fileMedia(m.Voice, m.Caption)}
	case m.Audio != nil:
		in.ContentType = provider.ContentAudio
		in.Text = m.Caption
		in.Media = []provider.Media{fileMedia(m.Audio, m.Caption)}
	case m.Video != nil:
		in.ContentType = provider.ContentVideo
		in.Text = m.Caption
		in.Media = []provider.Media{fileMedia(m.Video, m.Caption)}
	case m.Sticker != nil:
		ct := "image/webp"
		switch {
		case m.Sticker.IsAnimated:
			ct = "application/x-tgsticker"
		case m.Sticker.IsVideo:
			ct = "video/webm"
		}
		in.ContentType = provider.ContentSticker
		in.Text = m.Sticker.Emoji
		in.Media = []provider.Media{{Ref: m.Sticker.FileID, ContentType: ct, Size: m.Sticker.FileSize}}
	case m.Location != nil:
		in.ContentType = provider.ContentLocation
		in.Text = strconv.FormatFloat(m.Location.Latitude, 'f', -1, 64) + "," + strconv.FormatFloat(m.Location.Longitude, 'f', -1, 64)
	case m.Text != "":
		in.ContentType = provider.ContentText
		in.Text = m.Text
	default:
		return provider.InboundMessage{}, false
	}
	return in, true
}

func fileMedia(f *file, caption string) provider.Media {
	return provider.Media{Ref: f.FileID, ContentType: f.MimeType, Filename: f.FileName, Caption: caption, Size: f.FileSize}
}

// chatName names the contact, who is the chat: the person in a private chat, the group's title
// otherwise.
func chatName(m *message) string {
	if m.Chat.Type != "" && m.Chat.Type != "private" && m.Chat.Title != "" {
		return m.Chat.Title
	}
	first, last := m.Chat.FirstName, m.Chat.LastName
	if m.From != nil && first == "" && last == "" {
		first, last = m.From.FirstName, m.From.LastName
	}
	return strings.TrimSpace(first + " " + last)
}

// Send delivers a reply to the contact's chat. With one attachment and a text short enough for a
// caption, they travel as one message; otherwise the text goes first (split at Telegram's 4096
// limit) and each attachment follows. Sent.ProviderID is "<chat_id>:<message_id>" of the first
// message sent.
func (t *Telegram) Send(ctx context.Context, ch provider.Channel, out provider.Outbound) (provider.Sent, error) {
	chatID := ""
	for _, id := range out.To {
		if id.Kind == provider.IdentityTelegram && id.Value != "" {
			chatID = id.Value
			break
		}
	}
	if chatID == "" {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: "telegram: the contact has no telegram identity"}
	}
	for _, a := range out.Attachments {
		if len(a.Data) == 0 && a.URL == "" {
			return provider.Sent{}, &provider.SendError{Permanent: true, Reason: fmt.Sprintf("telegram: attachment %q has neither data nor URL", a.Filename)}
		}
	}
	if out.Text == "" && len(out.Attachments) == 0 {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: "telegram: empty message"}
	}
	caption := ""
	text := out.Text
	if len(out.Attachments) == 1 && utf16Len(text) <= maxCaption {
		caption, text = text, ""
	}
	var first string
	note := func(result json.RawMessage) {
		if first != "" {
			return
		}
		var m message
		if json.Unmarshal(result, &m) == nil && m.MessageID != 0 {
			cid := chatID
			if m.Chat.ID != 0 {
				cid = strconv.FormatInt(m.Chat.ID, 10)
			}
			first = cid + ":" + strconv.FormatInt(m.MessageID, 10)
		}
	}
	for _, part := range splitText(text, maxText) {
		body, _ := json.Marshal(map[string]any{"chat_id": chatIDValue(chatID), "text": part})
		res, err := t.call(ctx, ch, "sendMessage", "application/json", body)
		if err != nil {
			return provider.Sent{}, err
		}
		note(res)
	}
	for i, a := range out.Attachments {
		c := ""
		if i == 0 {
			c = caption
		}
		res, err := t.sendFile(ctx, ch, chatID, a, c)
		if err != nil {
			return provider.Sent{}, err
		}
		note(res)
	}
	return provider.Sent{ProviderID: first}, nil
}

// sendFile sends an image as a photo (Telegram shows it inline) and anything else as a document.
// A file with bytes is uploaded; one with only a URL is fetched by Telegram itself.
func (t *Telegram) sendFile(ctx context.Context, ch provider.Channel, chatID string, a provider.OutAttachment, caption string) (json.RawMessage, error) {
	method, field := "sendDocument", "document"
	switch strings.ToLower(a.ContentType) {
	case "image/jpeg", "image/png", "image/webp":
		method, field = "sendPhoto", "photo"
	}
	if len(a.Data) == 0 {
		params := map[string]any{"chat_id": chatIDValue(chatID), field: a.URL}
		if caption != "" {
			params["caption"] = caption
		}
		body, _ := json.Marshal(params)
		return t.call(ctx, ch, method, "application/json", body)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("chat_id", chatID)
	if caption != "" {
		_ = mw.WriteField("caption", caption)
	}
	name := a.Filename
	if name == "" {
		name = field
		if exts, _ := mime.ExtensionsByType(a.ContentType); len(exts) > 0 {
			name += exts[0]
		}
	}
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name=%q; filename=%q`, field, name)}
	ct := a.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h["Content-Type"] = []string{ct}
	w, _ := mw.CreatePart(h)
	_, _ = w.Write(a.Data)
	_ = mw.Close()
	return t.call(ctx, ch, method, mw.FormDataContentType(), buf.Bytes())
}

// chatIDValue sends a numeric chat id as a JSON number, as the Bot API documents it, and
// anything else (an @channelusername) as a string.
func chatIDValue(id string) any {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		return n
	}
	return id
}

// FetchMedia downloads a file the customer sent: getFile resolves the file_id to a file_path
// that is valid for an hour, then the file server hands out the bytes.
func (t *Telegram) FetchMedia(ctx context.Context, ch provider.Channel, m provider.Media) ([]byte, string, error) {
	if m.Ref == "" {
		return nil, "", &provider.SendError{Permanent: true, Reason: "telegram: media has no file_id"}
	}
	body, _ := json.Marshal(map[string]string{"file_id": m.Ref})
	res, err := t.call(ctx, ch, "getFile", "application/json", body)
	if err != nil {
		return nil, "", err
	}
	var f struct {
		FilePath string `json:"file_path"`
	}
	if err := json.Unmarshal(res, &f); err != nil || f.FilePath == "" {
		return nil, "", &provider.SendError{Reason: "telegram: getFile answered no file_path"}
	}
	token := ch.Config["bot_token"]
	u := strings.TrimRight(ch.Get("api_base", DefaultAPIBase), "/") + "/file/bot" + token + "/" + f.FilePath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", &provider.SendError{Permanent: true, Reason: redact(err.Error(), token)}
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, "", transportError(err, token)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDownload+1))
	if err != nil {
		return nil, "", transportError(err, token)
	}
	if resp.StatusCode/100 != 2 {
		return nil, "", provider.HTTPSendError(resp.StatusCode, "telegram: file download: "+string(data))
	}
	if len(data) > maxDownload {
		return nil, "", &provider.SendError{Permanent: true, Reason: "telegram: file larger than 20 MB"}
	}
	ct := m.ContentType
	if ct == "" {
		ct = resp.Header.Get("Content-Type")
		if ct == "" || strings.HasPrefix(ct, "application/octet-stream") {
			if byExt := mime.TypeByExtension(path.Ext(f.FilePath)); byExt != "" {
				ct = byExt
			}
		}
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	return data, ct, nil
}

// apiAnswer is the envelope of every Bot API answer.
type apiAnswer struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  *struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// call POSTs one Bot API method and returns its result. Failures are SendErrors classified by
// Telegram's error_code (400 and 403 permanent, 429 and 5xx retryable); the bot token, which is
// part of every URL, is kept out of their text because SendError reasons are shown to agents.
func (t *Telegram) call(ctx context.Context, ch provider.Channel, method, contentType string, body []byte) (json.RawMessage, error) {
	token := ch.Config["bot_token"]
	if token == "" {
		return nil, &provider.SendError{Permanent: true, Reason: "telegram: no bot_token configured"}
	}
	u := strings.TrimRight(ch.Get("api_base", DefaultAPIBase), "/") + "/bot" + token + "/" + method
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, &provider.SendError{Permanent: true, Reason: redact(err.Error(), token)}
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, transportError(err, token)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody))
	if err != nil {
		return nil, transportError(err, token)
	}
	var a apiAnswer
	jsonErr := json.Unmarshal(raw, &a)
	if resp.StatusCode/100 == 2 && jsonErr == nil && a.OK {
		return a.Result, nil
	}
	status := resp.StatusCode
	if jsonErr == nil && a.ErrorCode != 0 {
		status = a.ErrorCode
	}
	reason := strings.TrimSpace(string(raw))
	if jsonErr == nil && a.Description != "" {
		reason = a.Description
		if a.Parameters != nil && a.Parameters.RetryAfter > 0 {
			reason += fmt.Sprintf(" (retry after %d s)", a.Parameters.RetryAfter)
		}
	}
	if status/100 == 2 {
		// ok=false without an error code: nothing says a retry cannot help.
		return nil, &provider.SendError{Status: resp.StatusCode, Reason: "telegram: " + method + ": " + redact(reason, token)}
	}
	return nil, provider.HTTPSendError(status, "telegram: "+method+": "+redact(reason, token))
}

func transportError(err error, token string) *provider.SendError {
	return &provider.SendError{Reason: "telegram: " + redact(err.Error(), token)}
}

func redact(s, token string) string {
	if token == "" {
		return s
	}
	s = strings.ReplaceAll(s, token, "<bot_token>")
	return strings.ReplaceAll(s, url.PathEscape(token), "<bot_token>")
}

// utf16Len measures text the way Telegram's limits do.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// splitText cuts s into parts of at most max UTF-16 units, preferring the last line break or
// space of each part so words stay whole.
func splitText(s string, max int) []string {
	if s == "" {
		return nil
	}
	var parts []string
	for utf16Len(s) > max {
		n, cut := 0, 0
		lastBreak := -1
		for i, r := range s {
			w := utf16.RuneLen(r)
			if n+w > max {
				cut = i
				break
			}
			n += w
			if r == '\n' || r == ' ' {
				lastBreak = i + 1
			}
		}
		if lastBreak > 0 && lastBreak > cut/2 {
			cut = lastBreak
		}
		parts = append(parts, s[:cut])
		s = s[cut:]
	}
	return append(parts, s)
}
