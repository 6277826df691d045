// Package wechat is the WeChat Official Account (微信公众号) channel.
//
// Inbound: WeChat POSTs XML to the server URL configured in the account's console. In plain mode
// (明文模式, no encoding_aes_key) the query's `signature` is SHA-1 over the sorted token,
// timestamp and nonce. In safe or compatible mode (安全模式/兼容模式, encoding_aes_key set) the
// body carries <Encrypt>, `msg_signature` covers token, timestamp, nonce and that ciphertext, and
// the plaintext names the AppID it was made for. The webhook answers "success", after which
// WeChat sends no passive reply and does not retry.
//
// Decisions the protocol leaves open:
//   - A channel with encoding_aes_key accepts only encrypted deliveries. The plain-mode signature
//     does not cover the body, and WeChat puts it in the query of safe-mode deliveries too, so
//     anyone who saw one such URL could otherwise post any plain body under it.
//   - Timestamps more than five minutes from the clock are refused. WeChat does not ask for it,
//     but for the same reason (the plain signature binds no body) a captured signature must not
//     stay usable; WeChat's own retries (three within about fifteen seconds) fall well inside.
//   - Events (subscribe, unsubscribe, menu clicks, location reports) are acknowledged and
//     dropped: they carry no MsgId to deduplicate on, and a follow is not a message to answer.
//   - The URL verification (GET) accepts the plain `signature` + echostr in both modes, since
//     that is what the Official Account console sends, and also `msg_signature` + encrypted
//     echostr, the encrypted variant WeChat's libraries (and WeCom) use.
//
// Outbound: customer-service messages (客服消息, /cgi-bin/message/custom/send) with the account's
// access token, which is cached per account and refreshed five minutes before expiry. WeChat
// only delivers them within 48 hours of the customer's last message (errcode 45015 otherwise)
// and assigns them no message id: Sent.ProviderID is WeChat's msgid when an answer carries one,
// and empty otherwise. WeChat sends no delivery statuses for them.
package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// Type is the channel type this adapter serves.
const Type = "wechat"

// DefaultAPIBase is WeChat's API server.
const DefaultAPIBase = "https://api.weixin.qq.com"

// MaxSkew is how far a delivery's timestamp may be from the clock.
const MaxSkew = 5 * time.Minute

const (
	maxAnswerBody = 1 << 20
	maxMedia      = 32 << 20 // videos are at most 10 MB, images 10 MB, voice 2 MB
	maxUpload     = 10 << 20 // WeChat's limit for an uploaded image
)

var tokenRe = regexp.MustCompile(`^[A-Za-z0-9]{3,32}$`)

// WeChat is the adapter. It holds the access-token cache, one entry per account.
type WeChat struct {
	client *http.Client
	now    func() time.Time

	mu     sync.Mutex
	tokens map[string]*tokenEntry
}

// New returns the adapter. client carries every API call (nil: a client with a 30 s timeout);
// now is the clock for token expiry and the timestamp check (nil: time.Now).
func New(client *http.Client, now func() time.Time) *WeChat {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	return &WeChat{client: client, now: now, tokens: map[string]*tokenEntry{}}
}

var (
	_ provider.Provider     = (*WeChat)(nil)
	_ provider.MediaFetcher = (*WeChat)(nil)
)

// Spec describes the configuration.
func (w *WeChat) Spec() provider.Spec {
	return provider.Spec{
		Type:       Type,
		Required:   []string{"app_id", "app_secret", "token"},
		Optional:   []string{"encoding_aes_key", "api_base"},
		Secret:     []string{"app_secret", "token", "encoding_aes_key"},
		Defaults:   map[string]string{"api_base": DefaultAPIBase},
		Identities: []string{provider.IdentityWeChatOpenID},
		// WeChat delivers again only when no answer came within 5 s.
		DeliversOnce: true,
	}
}

// Validate checks the formats the WeChat console enforces.
func (w *WeChat) Validate(cfg map[string]string) error {
	if strings.TrimSpace(cfg["app_id"]) == "" || strings.ContainsAny(cfg["app_id"], " \t\r\n") {
		return errors.New("wechat: app_id is required (the AppID from the account's developer settings)")
	}
	if cfg["app_secret"] == "" {
		return errors.New("wechat: app_secret is required")
	}
	if !tokenRe.MatchString(cfg["token"]) {
		return errors.New("wechat: token must be 3-32 letters or digits, as in the account's server settings")
	}
	if k := cfg["encoding_aes_key"]; k != "" {
		if _, err := aesKey(k); err != nil {
			return fmt.Errorf("wechat: %v", err)
		}
	}
	if b := cfg["api_base"]; b != "" {
		u, err := url.Parse(b)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("wechat: api_base %q is not an http(s) URL", b)
		}
	}
	return nil
}

// Setup does nothing: the server URL, token and key are entered in WeChat's console by hand.
func (w *WeChat) Setup(context.Context, provider.Channel) error { return nil }

// inboundXML is a pushed message (接收普通消息), decrypted when it came in safe mode.
type inboundXML struct {
	ToUserName   string `xml:"ToUserName"`
	FromUserName string `xml:"FromUserName"`
	CreateTime   string `xml:"CreateTime"`
	MsgType      string `xml:"MsgType"`
	Content      string `xml:"Content"`
	PicURL       string `xml:"PicUrl"`
	MediaID      string `xml:"MediaId"`
	Format       string `xml:"Format"`
	Recognition  string `xml:"Recognition"`
	LocationX    string `xml:"Location_X"`
	LocationY    string `xml:"Location_Y"`
	Label        string `xml:"Label"`
	Title        string `xml:"Title"`
	Description  string `xml:"Description"`
	URL          string `xml:"Url"`
	MsgID        string `xml:"MsgId"`
	Event        string `xml:"Event"`
	// Official Account pushes do not normally carry the UnionID; some (mini-program customer
	// service, open-platform relays) do, and then it joins the contact across the brand's apps.
	UnionID string `xml:"UnionId"`
}

// envelopeXML is the outer document of a safe-mode delivery.
type envelopeXML struct {
	ToUserName string `xml:"ToUserName"`
	Encrypt    string `xml:"Encrypt"`
}

var success = provider.Response{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: []byte("success")}

// Webhook verifies and parses a delivery or answers the URL verification.
func (w *WeChat) Webhook(_ context.Context, ch provider.Channel, r provider.Request) (provider.Batch, error) {
	q := r.Query
	if q == nil {
		if u, err := url.Parse(r.URL); err == nil {
			q = u.Query()
		}
	}
	token := ch.Config["token"]
	if token == "" {
		return provider.Batch{}, fmt.Errorf("wechat: channel has no token: %w", provider.ErrSignature)
	}
	var key []byte
	if k := ch.Config["encoding_aes_key"]; k != "" {
		var err error
		if key, err = aesKey(k); err != nil {
			return provider.Batch{}, fmt.Errorf("wechat: %v: %w", err, provider.ErrSignature)
		}
	}
	ts, nonce := q.Get("timestamp"), q.Get("nonce")
	if r.Method == http.MethodGet {
		return w.verifyURL(ch, q, token, key, ts, nonce)
	}

	var plain []byte
	switch {
	case q.Get("encrypt_type") == "aes":
		if key == nil {
			// Authenticate before saying anything about the payload.
			if !checkSignature(q.Get("signature"), token, ts, nonce) {
				return provider.Batch{}, fmt.Errorf("wechat: signature: %w", provider.ErrSignature)
			}
			return provider.Batch{}, fmt.Errorf("wechat: encrypted delivery but no encoding_aes_key configured: %w", provider.ErrPayload)
		}
		var env envelopeXML
		if err := xml.Unmarshal(r.Body, &env); err != nil || env.Encrypt == "" {
			if !checkSignature(q.Get("signature"), token, ts, nonce) {
				return provider.Batch{}, fmt.Errorf("wechat: signature: %w", provider.ErrSignature)
			}
			return provider.Batch{}, fmt.Errorf("wechat: no <Encrypt> in the delivery: %w", provider.ErrPayload)
		}
		if !checkSignature(q.Get("msg_signature"), token, ts, nonce, env.Encrypt) {
			return provider.Batch{}, fmt.Errorf("wechat: msg_signature: %w", provider.ErrSignature)
		}
		if err := w.fresh(ts); err != nil {
			return provider.Batch{}, err
		}
		var err error
		if plain, err = decrypt(key, env.Encrypt, ch.Config["app_id"]); err != nil {
			return provider.Batch{}, err
		}
	case key != nil:
		return provider.Batch{}, fmt.Errorf("wechat: plain delivery to a channel in safe mode: %w", provider.ErrSignature)
	default:
		if !checkSignature(q.Get("signature"), token, ts, nonce) {
			return provider.Batch{}, fmt.Errorf("wechat: signature: %w", provider.ErrSignature)
		}
		if err := w.fresh(ts); err != nil {
			return provider.Batch{}, err
		}
		plain = r.Body
	}

	var m inboundXML
	if err := xml.Unmarshal(plain, &m); err != nil {
		return provider.Batch{}, fmt.Errorf("wechat: message XML: %v: %w", err, provider.ErrPayload)
	}
	b := provider.Batch{Response: success}
	in, ok, err := inbound(m)
	if err != nil {
		return provider.Batch{}, err
	}
	if ok {
		b.Messages = []provider.InboundMessage{in}
	}
	return b, nil
}

// verifyURL answers the GET WeChat sends when the server URL is saved in its console.
func (w *WeChat) verifyURL(ch provider.Channel, q url.Values, token string, key []byte, ts, nonce string) (provider.Batch, error) {
	echo := q.Get("echostr")
	if ms := q.Get("msg_signature"); ms != "" && key != nil {
		if !checkSignature(ms, token, ts, nonce, echo) {
			return provider.Batch{}, fmt.Errorf("wechat: URL verification msg_signature: %w", provider.ErrSignature)
		}
		if err := w.fresh(ts); err != nil {
			return provider.Batch{}, err
		}
		plain, err := decrypt(key, echo, ch.Config["app_id"])
		if err != nil {
			return provider.Batch{}, err
		}
		echo = string(plain)
	} else {
		if !checkSignature(q.Get("signature"), token, ts, nonce) {
			return provider.Batch{}, fmt.Errorf("wechat: URL verification signature: %w", provider.ErrSignature)
		}
		if err := w.fresh(ts); err != nil {
			return provider.Batch{}, err
		}
	}
	if echo == "" {
		return provider.Batch{}, fmt.Errorf("wechat: URL verification without echostr: %w", provider.ErrPayload)
	}
	return provider.Batch{Response: provider.Response{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: []byte(echo)}}, nil
}

func (w *WeChat) fresh(ts string) error {
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("wechat: timestamp %q: %w", ts, provider.ErrSignature)
	}
	if d := w.now().Sub(time.Unix(n, 0)); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("wechat: timestamp %s is %s from now: %w", ts, d.Round(time.Second), provider.ErrSignature)
	}
	return nil
}

// inbound turns a pushed message into the neutral form; ok is false for what is not stored.
func inbound(m inboundXML) (provider.InboundMessage, bool, error) {
	if m.MsgType == "event" {
		return provider.InboundMessage{}, false, nil
	}
	if m.FromUserName == "" || m.MsgID == "" {
		return provider.InboundMessage{}, false, fmt.Errorf("wechat: %s message without FromUserName or MsgId: %w", m.MsgType, provider.ErrPayload)
	}
	created, err := strconv.ParseInt(strings.TrimSpace(m.CreateTime), 10, 64)
	if err != nil {
		return provider.InboundMessage{}, false, fmt.Errorf("wechat: CreateTime %q: %w", m.CreateTime, provider.ErrPayload)
	}
	in := provider.InboundMessage{
		ProviderID: strings.TrimSpace(m.MsgID),
		From:       []provider.Identity{{Kind: provider.IdentityWeChatOpenID, Value: m.FromUserName}},
		OccurredAt: time.Unix(created, 0).UTC(),
	}
	if m.UnionID != "" {
		in.From = append(in.From, provider.Identity{Kind: provider.IdentityWeChatUnionID, Value: m.UnionID})
	}
	switch m.MsgType {
	case "text":
		in.ContentType, in.Text = provider.ContentText, m.Content
	case "image":
		in.ContentType = provider.ContentImage
		in.Media = []provider.Media{{Ref: m.MediaID, URL: m.PicURL, ContentType: "image/jpeg"}}
	case "voice":
		in.ContentType = provider.ContentAudio
		// Recognition is WeChat's speech-to-text, present when the account enabled it.
		in.Text = m.Recognition
		in.Media = []provider.Media{{Ref: m.MediaID, ContentType: voiceType(m.Format)}}
	case "video", "shortvideo":
		in.ContentType = provider.ContentVideo
		in.Media = []provider.Media{{Ref: m.MediaID, ContentType: "video/mp4"}}
	case "location":
		in.ContentType = provider.ContentLocation
		in.Text = m.LocationX + "," + m.LocationY
		if m.Label != "" {
			in.Text = m.Label + " (" + in.Text + ")"
		}
	case "link":
		in.ContentType = provider.ContentText
		in.Text = strings.Join(nonEmpty(m.Title, m.Description, m.URL), "\n")
	default:
		// A type this adapter does not know still happened: keep it so nothing is silently lost.
		in.ContentType = provider.ContentText
		in.Text = "[unsupported WeChat message type: " + m.MsgType + "]"
	}
	return in, true, nil
}

func voiceType(format string) string {
	switch strings.ToLower(format) {
	case "amr":
		return "audio/amr"
	case "speex":
		return "audio/speex"
	case "mp3":
		return "audio/mpeg"
	}
	return "application/octet-stream"
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Send delivers a reply as customer-service messages: the text (followed by the links of
// attachments that have only a URL) and one image message per image attachment. Images are
// uploaded first, so a failed upload sends nothing. WeChat has no file message; a non-image
// attachment without a URL is refused before anything is sent.
func (w *WeChat) Send(ctx context.Context, ch provider.Channel, out provider.Outbound) (provider.Sent, error) {
	openID := ""
	for _, id := range out.To {
		if id.Kind == provider.IdentityWeChatOpenID && id.Value != "" {
			openID = id.Value
			break
		}
	}
	if openID == "" {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: "wechat: the contact has no wechat_openid identity"}
	}
	text := out.Text
	var images []provider.OutAttachment
	for _, a := range out.Attachments {
		switch {
		case len(a.Data) > 0 && uploadable(a.ContentType):
			if len(a.Data) > maxUpload {
				return provider.Sent{}, &provider.SendError{Permanent: true, Reason: fmt.Sprintf("wechat: image %q is larger than 10 MB", a.Filename)}
			}
			images = append(images, a)
		case a.URL != "":
			link := a.URL
			if a.Filename != "" {
				link = a.Filename + ": " + a.URL
			}
			text = strings.TrimLeft(text+"\n"+link, "\n")
		default:
			return provider.Sent{}, &provider.SendError{Permanent: true, Reason: fmt.Sprintf("wechat: customer-service messages cannot carry %q (%s) without a URL", a.Filename, a.ContentType)}
		}
	}
	var msgs []map[string]any
	if text != "" {
		msgs = append(msgs, map[string]any{"touser": openID, "msgtype": "text", "text": map[string]string{"content": text}})
	}
	for _, img := range images {
		id, err := w.upload(ctx, ch, img)
		if err != nil {
			return provider.Sent{}, err
		}
		msgs = append(msgs, map[string]any{"touser": openID, "msgtype": "image", "image": map[string]string{"media_id": id}})
	}
	if len(msgs) == 0 {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: "wechat: empty message"}
	}
	var first string
	for _, m := range msgs {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		// WeChat shows \u003c escapes literally in some clients; send the characters as they are.
		enc.SetEscapeHTML(false)
		_ = enc.Encode(m)
		body := buf.Bytes()
		answer, _, err := w.do(ctx, ch, "custom send", func(tok string) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.endpoint(ch, "/cgi-bin/message/custom/send", tok, nil), bytes.NewReader(body))
			if err == nil {
				req.Header.Set("Content-Type", "application/json; charset=utf-8")
			}
			return req, err
		})
		if err != nil {
			return provider.Sent{}, err
		}
		if first == "" {
			var a struct {
				MsgID json.RawMessage `json:"msgid"`
			}
			if json.Unmarshal(answer, &a) == nil && len(a.MsgID) > 0 && string(a.MsgID) != "null" {
				first = strings.Trim(string(a.MsgID), `"`)
			}
		}
	}
	return provider.Sent{ProviderID: first}, nil
}

func uploadable(ct string) bool {
	switch strings.ToLower(ct) {
	case "image/jpeg", "image/jpg", "image/png", "image/gif", "image/bmp":
		return true
	}
	return false
}

// upload makes an image a temporary media (/cgi-bin/media/upload, kept three days) and returns
// its media_id.
func (w *WeChat) upload(ctx context.Context, ch provider.Channel, a provider.OutAttachment) (string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	name := a.Filename
	if name == "" {
		name = "image." + strings.TrimPrefix(strings.ToLower(a.ContentType), "image/")
	}
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name="media"; filename=%q`, name)}
	h["Content-Type"] = []string{a.ContentType}
	pw, _ := mw.CreatePart(h)
	_, _ = pw.Write(a.Data)
	_ = mw.Close()
	body, ct := buf.Bytes(), mw.FormDataContentType()
	answer, _, err := w.do(ctx, ch, "media upload", func(tok string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.endpoint(ch, "/cgi-bin/media/upload", tok, url.Values{"type": {"image"}}), bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", ct)
		}
		return req, err
	})
	if err != nil {
		return "", err
	}
	var r struct {
		MediaID string `json:"media_id"`
	}
	if json.Unmarshal(answer, &r) != nil || r.MediaID == "" {
		return "", &provider.SendError{Reason: "wechat: media upload answered no media_id: " + string(answer)}
	}
	return r.MediaID, nil
}

// FetchMedia downloads a customer's image, voice or video by its MediaId (/cgi-bin/media/get;
// WeChat keeps them three days). Videos come back as a JSON video_url to fetch. When the
// media id has expired, an image's PicUrl still works and is used instead.
func (w *WeChat) FetchMedia(ctx context.Context, ch provider.Channel, m provider.Media) ([]byte, string, error) {
	if m.Ref == "" {
		if m.URL == "" {
			return nil, "", &provider.SendError{Permanent: true, Reason: "wechat: media has neither MediaId nor URL"}
		}
		return w.download(ctx, m.URL, m.ContentType)
	}
	body, hdr, err := w.do(ctx, ch, "media get", func(tok string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, w.endpoint(ch, "/cgi-bin/media/get", tok, url.Values{"media_id": {m.Ref}}), nil)
	})
	if err != nil {
		if m.URL != "" && provider.Permanent(err) {
			return w.download(ctx, m.URL, m.ContentType)
		}
		return nil, "", err
	}
	if isJSON(hdr, body) {
		var v struct {
			VideoURL string `json:"video_url"`
		}
		if json.Unmarshal(body, &v) == nil && v.VideoURL != "" {
			ct := m.ContentType
			if ct == "" {
				ct = "video/mp4"
			}
			return w.download(ctx, v.VideoURL, ct)
		}
		return nil, "", &provider.SendError{Reason: "wechat: media get answered JSON without media: " + string(body)}
	}
	ct := m.ContentType
	if ct == "" {
		ct = hdr.Get("Content-Type")
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	return body, ct, nil
}

func (w *WeChat) download(ctx context.Context, u, ct string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", &provider.SendError{Permanent: true, Reason: "wechat: media URL: " + redact(err)}
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, "", &provider.SendError{Reason: "wechat: media download: " + redact(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMedia+1))
	if err != nil {
		return nil, "", &provider.SendError{Reason: "wechat: media download: " + redact(err)}
	}
	if resp.StatusCode/100 != 2 {
		return nil, "", provider.HTTPSendError(resp.StatusCode, "wechat: media download")
	}
	if len(data) > maxMedia {
		return nil, "", &provider.SendError{Permanent: true, Reason: "wechat: media larger than 32 MB"}
	}
	if ct == "" {
		ct = resp.Header.Get("Content-Type")
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	return data, ct, nil
}

func (w *WeChat) endpoint(ch provider.Channel, path, token string, q url.Values) string {
	v := url.Values{"access_token": {token}}
	for k, vs := range q {
		v[k] = vs
	}
	return strings.TrimRight(ch.Get("api_base", DefaultAPIBase), "/") + path + "?" + v.Encode()
}

// Error codes WeChat answers in a 200 (全局返回码).
const (
	errBusy          = -1
	errInvalidToken  = 40001 // invalid credential: the token is wrong or was retired by a newer one
	errInvalidToken2 = 40014 // invalid access_token
	errExpiredToken  = 42001 // access_token expired
	errDailyQuota    = 45009
	errMinuteQuota   = 45011
	errOutOfWindow   = 45015 // the customer has not written within 48 hours
)

func tokenRejected(code int) bool {
	return code == errInvalidToken || code == errInvalidToken2 || code == errExpiredToken
}

// do runs one access-token API call. When WeChat calls the token invalid or expired (another
// process fetched a newer one, or the clock drifted), the cached token is dropped and the call
// made once more with a fresh one. A JSON answer with a non-zero errcode is an error even in a
// 200.
func (w *WeChat) do(ctx context.Context, ch provider.Channel, what string, build func(token string) (*http.Request, error)) ([]byte, http.Header, error) {
	for attempt := 0; ; attempt++ {
		tok, err := w.accessToken(ctx, ch)
		if err != nil {
			return nil, nil, err
		}
		req, err := build(tok)
		if err != nil {
			return nil, nil, &provider.SendError{Permanent: true, Reason: "wechat: " + what + ": " + redact(err)}
		}
		resp, err := w.client.Do(req)
		if err != nil {
			return nil, nil, &provider.SendError{Reason: "wechat: " + what + ": " + redact(err)}
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxMedia+1))
		resp.Body.Close()
		if err != nil {
			return nil, nil, &provider.SendError{Reason: "wechat: " + what + ": " + redact(err)}
		}
		if resp.StatusCode/100 != 2 {
			return nil, nil, provider.HTTPSendError(resp.StatusCode, "wechat: "+what+": "+string(body))
		}
		if isJSON(resp.Header, body) {
			var a struct {
				ErrCode int    `json:"errcode"`
				ErrMsg  string `json:"errmsg"`
			}
			if err := json.Unmarshal(body, &a); err != nil {
				return nil, nil, &provider.SendError{Reason: "wechat: " + what + ": unreadable answer: " + string(body)}
			}
			if a.ErrCode != 0 {
				if tokenRejected(a.ErrCode) && attempt == 0 {
					w.dropToken(ch, tok)
					continue
				}
				return nil, nil, apiError(what, a.ErrCode, a.ErrMsg)
			}
		}
		return body, resp.Header, nil
	}
}

// isJSON tells an API answer from media bytes: WeChat labels its JSON application/json or
// text/plain depending on the endpoint.
func isJSON(h http.Header, body []byte) bool {
	ct := strings.ToLower(h.Get("Content-Type"))
	if ct != "" && !strings.Contains(ct, "json") && !strings.HasPrefix(ct, "text/plain") {
		return false
	}
	return len(bytes.TrimSpace(body)) > 0 && bytes.TrimSpace(body)[0] == '{'
}

// apiError classifies an errcode: busy, quota and token trouble can pass with time; everything
// else (a wrong openid, the 48-hour window, a bad secret, an IP not on the whitelist) needs a
// person.
func apiError(what string, code int, msg string) *provider.SendError {
	reason := fmt.Sprintf("wechat: %s: errcode %d: %s", what, code, msg)
	switch code {
	case errOutOfWindow:
		reason += " (the customer has not written in the last 48 hours)"
	case 40164:
		reason += " (add this server's IP address to the account's IP whitelist)"
	}
	switch code {
	case errBusy, errDailyQuota, errMinuteQuota, errInvalidToken, errInvalidToken2, errExpiredToken:
		return &provider.SendError{Reason: reason}
	}
	return &provider.SendError{Permanent: true, Reason: reason}
}

// redact keeps the access token and app secret, which travel in query strings, out of error
// texts: SendError reasons are shown to agents.
func redact(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		u := ue.URL
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return ue.Op + " " + u + ": " + ue.Err.Error()
	}
	return err.Error()
}
