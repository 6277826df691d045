package meta

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// Credentials of the fixtures' channels; the fake APIs accept only these, as Meta accepts only
// the channel's own token.
const (
	FixtureWhatsAppPhoneNumberID = "106540352242922"
	FixtureWhatsAppToken         = "EAAfixtureWhatsAppAccessToken"
	FixtureMessengerPageID       = "102938475610293"
	FixtureMessengerToken        = "EAAfixtureMessengerPageToken"
	FixtureAppSecret             = "fixture-meta-app-secret"
	FixtureVerifyToken           = "fixture-meta-verify-token"

	// FixtureImage is the image every fake media download answers: the first and last bytes of
	// a JPEG, enough for a content sniffer.
	FixtureImage = "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"

	waMaxText = 4096 // WhatsApp's limit on a text body
	msMaxText = 2000 // Messenger's limit on message.text
)

// Fixtures returns both Meta fixtures.
func Fixtures() []provider.Fixture { return []provider.Fixture{WhatsAppFixture(), MessengerFixture()} }

// metaRequest wraps a JSON body as Meta delivers it: a POST signed with the app secret.
func metaRequest(ch provider.Channel, body []byte) provider.Request {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "facebookexternalua")
	h.Set(SignatureHeader, Sign(ch.Config["app_secret"], body))
	q := url.Values{}
	if u, err := url.Parse(ch.WebhookURL); err == nil {
		q = u.Query()
	}
	return provider.Request{Method: http.MethodPost, URL: ch.WebhookURL, Query: q, Header: h, Body: body}
}

func forge(r provider.Request, forged bool) provider.Request {
	r.Header = r.Header.Clone()
	if r.Header == nil {
		r.Header = http.Header{}
	}
	if forged {
		r.Header.Set(SignatureHeader, Sign("not-the-app-secret", r.Body))
	} else {
		r.Header.Del(SignatureHeader)
	}
	return r
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// WhatsAppFixture drives the WhatsApp adapter with Cloud API payloads. from is a phone number in
// any notation; the sender becomes whatsapp:<digits>.
func WhatsAppFixture() provider.Fixture {
	envelope := func(ch provider.Channel, value map[string]any) []byte {
		value["messaging_product"] = "whatsapp"
		value["metadata"] = map[string]any{
			"display_phone_number": "15550783881",
			"phone_number_id":      ch.Config["phone_number_id"],
		}
		return mustJSON(map[string]any{
			"object": "whatsapp_business_account",
			"entry": []any{map[string]any{
				"id":      "102290129340398",
				"changes": []any{map[string]any{"field": "messages", "value": value}},
			}},
		})
	}
	message := func(ch provider.Channel, from string, msg map[string]any) provider.Request {
		wa := digits(from)
		msg["from"] = wa
		msg["timestamp"] = strconv.FormatInt(time.Now().Unix(), 10)
		return metaRequest(ch, envelope(ch, map[string]any{
			"contacts": []any{map[string]any{"profile": map[string]any{"name": "Fixture Customer"}, "wa_id": wa}},
			"messages": []any{msg},
		}))
	}
	sum := sha256.Sum256([]byte(FixtureImage))
	return provider.Fixture{
		Type: TypeWhatsApp,
		Config: func(apiBase string) map[string]string {
			return map[string]string{
				"phone_number_id": FixtureWhatsAppPhoneNumberID,
				"access_token":    FixtureWhatsAppToken,
				"app_secret":      FixtureAppSecret,
				"verify_token":    FixtureVerifyToken,
				"api_base":        apiBase,
			}
		},
		Inbound: func(ch provider.Channel, providerID, from, text string) provider.Request {
			return message(ch, from, map[string]any{"id": providerID, "type": "text", "text": map[string]any{"body": text}})
		},
		Media: func(ch provider.Channel, providerID, from string) provider.Request {
			return message(ch, from, map[string]any{"id": providerID, "type": "image", "image": map[string]any{
				"caption":   "photo of the receipt",
				"mime_type": "image/jpeg",
				"sha256":    base64.StdEncoding.EncodeToString(sum[:]),
				"id":        "1479537139650973",
			}})
		},
		Status: func(ch provider.Channel, providerMessageID, status string) provider.Request {
			st := map[string]any{
				"id":           providerMessageID,
				"status":       status,
				"timestamp":    strconv.FormatInt(time.Now().Unix(), 10),
				"recipient_id": "16315551234",
			}
			if status == provider.StatusFailed {
				st["errors"] = []any{map[string]any{
					"code":       131047,
					"title":      "Re-engagement message",
					"message":    "Re-engagement message",
					"error_data": map[string]any{"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
				}}
			}
			return metaRequest(ch, envelope(ch, map[string]any{"statuses": []any{st}}))
		},
		Forge: forge,
		From: func(from string) provider.Identity {
			return provider.Identity{Kind: provider.IdentityWhatsApp, Value: digits(from)}
		},
		FakeAPI: fakeWhatsApp,
	}
}

// MessengerFixture drives the Messenger adapter with Messenger Platform payloads. from is a
// PSID. Messenger reports per message only deliveries; Status with "read" builds the real read
// event, which names no message (see Messenger.Webhook), and any other status a delivery.
func MessengerFixture() provider.Fixture {
	envelope := func(ch provider.Channel, ev map[string]any) provider.Request {
		now := time.Now().UnixMilli()
		if _, ok := ev["timestamp"]; !ok {
			ev["timestamp"] = now
		}
		return metaRequest(ch, mustJSON(map[string]any{
			"object": "page",
			"entry":  []any{map[string]any{"id": ch.Config["page_id"], "time": now, "messaging": []any{ev}}},
		}))
	}
	event := func(ch provider.Channel, psid string, msg map[string]any) provider.Request {
		return envelope(ch, map[string]any{
			"sender":    map[string]any{"id": psid},
			"recipient": map[string]any{"id": ch.Config["page_id"]},
			"message":   msg,
		})
	}
	return provider.Fixture{
		Type: TypeMessenger,
		Config: func(apiBase string) map[string]string {
			return map[string]string{
				"page_id":           FixtureMessengerPageID,
				"page_access_token": FixtureMessengerToken,
				"app_secret":        FixtureAppSecret,
				"verify_token":      FixtureVerifyToken,
				"api_base":          apiBase,
			}
		},
		Inbound: func(ch provider.Channel, providerID, from, text string) provider.Request {
			return event(ch, from, map[string]any{"mid": providerID, "text": text})
		},
		Media: func(ch provider.Channel, providerID, from string) provider.Request {
			cdn := strings.TrimRight(ch.Get("api_base", DefaultAPIBase), "/") + "/messenger-cdn/" + url.PathEscape(providerID) + ".jpg"
			return event(ch, from, map[string]any{"mid": providerID, "attachments": []any{
				map[string]any{"type": "image", "payload": map[string]any{"url": cdn}},
			}})
		},
		Status: func(ch provider.Channel, providerMessageID, status string) provider.Request {
			ev := map[string]any{
				"sender":    map[string]any{"id": "fixture-psid"},
				"recipient": map[string]any{"id": ch.Config["page_id"]},
			}
			if status == provider.StatusRead {
				ev["read"] = map[string]any{"watermark": time.Now().UnixMilli()}
			} else {
				ev["delivery"] = map[string]any{"mids": []string{providerMessageID}, "watermark": time.Now().UnixMilli()}
			}
			return envelope(ch, ev)
		},
		Forge: forge,
		From: func(from string) provider.Identity {
			return provider.Identity{Kind: provider.IdentityMessenger, Value: from}
		},
		FakeAPI: fakeMessenger,
	}
}

// graphErr writes Graph's error envelope.
func graphErr(w http.ResponseWriter, status, code int, transient bool, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": msg, "type": "OAuthException", "code": code, "is_transient": transient, "fbtrace_id": "AfixtureTrace",
	}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// recorder reads the request, records it and reports whether the handler may go on (false: it
// has already answered 500 as Graph does when it is down).
func recorder(fa *provider.FakeAPI, w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if fa.Record(provider.Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}) {
		graphErr(w, http.StatusInternalServerError, 2, true, "An unexpected error has occurred. Please retry your request later.")
		return nil, false
	}
	return body, true
}

// graphPath splits /{version}/{rest...} and reports whether the version looks like Graph's.
func graphPath(p string) []string {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) < 2 || !versionRE.MatchString(parts[0]) {
		return nil
	}
	return parts[1:]
}

// fakeWhatsApp fakes the Cloud API endpoints the adapter uses: send, media upload, media URL
// and the authenticated media download.
func fakeWhatsApp() *provider.FakeAPI {
	fa := &provider.FakeAPI{}
	var seq atomic.Int64
	sum := sha256.Sum256([]byte(FixtureImage))
	fa.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := recorder(fa, w, r)
		if !ok {
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+FixtureWhatsAppToken {
			graphErr(w, http.StatusUnauthorized, 190, false, "Invalid OAuth access token - Cannot parse access token")
			return
		}
		if strings.HasPrefix(r.URL.Path, "/whatsapp-media/") && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "image/jpeg")
			_, _ = io.WriteString(w, FixtureImage)
			return
		}
		parts := graphPath(r.URL.Path)
		switch {
		case r.Method == http.MethodPost && len(parts) == 2 && parts[1] == "messages":
			if parts[0] != FixtureWhatsAppPhoneNumberID {
				graphErr(w, http.StatusBadRequest, 100, false, "Unsupported post request. Object with ID '"+parts[0]+"' does not exist")
				return
			}
			var m waOutMessage
			if err := json.Unmarshal(body, &m); err != nil || m.MessagingProduct != "whatsapp" || m.To == "" || digits(m.To) != m.To {
				graphErr(w, http.StatusBadRequest, 100, false, "(#100) Invalid parameter")
				return
			}
			switch m.Type {
			case "text":
				if m.Text == nil || m.Text.Body == "" || utf8.RuneCountInString(m.Text.Body) > waMaxText {
					graphErr(w, http.StatusBadRequest, 100, false, "(#100) Param text['body'] must be at most 4096 characters long.")
					return
				}
			case "image", "video", "audio", "document":
				md := map[string]*waOutMedia{"image": m.Image, "video": m.Video, "audio": m.Audio, "document": m.Document}[m.Type]
				if md == nil || (md.ID == "") == (md.Link == "") {
					graphErr(w, http.StatusBadRequest, 100, false, "(#100) Invalid parameter: "+m.Type+" needs exactly one of id and link")
					return
				}
			default:
				graphErr(w, http.StatusBadRequest, 100, false, "(#100) Param type must be one of {AUDIO, CONTACTS, DOCUMENT, IMAGE, INTERACTIVE, LOCATION, REACTION, STICKER, TEMPLATE, TEXT, VIDEO}")
				return
			}
			writeJSON(w, map[string]any{
				"messaging_product": "whatsapp",
				"contacts":          []any{map[string]any{"input": m.To, "wa_id": m.To}},
				"messages":          []any{map[string]any{"id": fmt.Sprintf("wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI%06d", seq.Add(1))}},
			})
		case r.Method == http.MethodPost && len(parts) == 2 && parts[1] == "media":
			mr, err := multipartOf(r, body)
			if err != nil {
				graphErr(w, http.StatusBadRequest, 100, false, "(#100) "+err.Error())
				return
			}
			form, err := mr.ReadForm(32 << 20)
			if err != nil || form.Value["messaging_product"] == nil || form.File["file"] == nil {
				graphErr(w, http.StatusBadRequest, 100, false, "(#100) The parameter messaging_product and file are required.")
				return
			}
			writeJSON(w, map[string]any{"id": strconv.FormatInt(4490709327384033+seq.Add(1), 10)})
		case r.Method == http.MethodGet && len(parts) == 1:
			writeJSON(w, map[string]any{
				"messaging_product": "whatsapp",
				"url":               "http://" + r.Host + "/whatsapp-media/" + url.PathEscape(parts[0]),
				"mime_type":         "image/jpeg",
				"sha256":            hex.EncodeToString(sum[:]),
				"file_size":         len(FixtureImage),
				"id":                parts[0],
			})
		default:
			graphErr(w, http.StatusBadRequest, 100, false, "Unsupported "+r.Method+" request.")
		}
	})
	return fa
}

func multipartOf(r *http.Request, body []byte) (*multipart.Reader, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		return nil, fmt.Errorf("expected multipart/form-data")
	}
	return multipart.NewReader(strings.NewReader(string(body)), params["boundary"]), nil
}

// fakeMessenger fakes the Send API (JSON and multipart upload) and the attachment CDN.
func fakeMessenger() *provider.FakeAPI {
	fa := &provider.FakeAPI{}
	var seq atomic.Int64
	fa.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := recorder(fa, w, r)
		if !ok {
			return
		}
		if strings.HasPrefix(r.URL.Path, "/messenger-cdn/") && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "image/jpeg")
			_, _ = io.WriteString(w, FixtureImage)
			return
		}
		parts := graphPath(r.URL.Path)
		if r.Method != http.MethodPost || len(parts) != 2 || parts[1] != "messages" ||
			(parts[0] != "me" && parts[0] != FixtureMessengerPageID) {
			graphErr(w, http.StatusBadRequest, 100, false, "Unsupported "+r.Method+" request.")
			return
		}
		if r.URL.Query().Get("access_token") != FixtureMessengerToken {
			graphErr(w, http.StatusBadRequest, 190, false, "Invalid OAuth access token - Cannot parse access token")
			return
		}
		var req msSend
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); strings.HasPrefix(mt, "multipart/") {
			mr, err := multipartOf(r, body)
			if err == nil {
				var form *multipart.Form
				if form, err = mr.ReadForm(32 << 20); err == nil {
					if form.File["filedata"] == nil {
						err = fmt.Errorf("filedata missing")
					} else {
						_ = json.Unmarshal([]byte(strings.Join(form.Value["recipient"], "")), &req.Recipient)
						_ = json.Unmarshal([]byte(strings.Join(form.Value["message"], "")), &req.Message)
					}
				}
			}
			if err != nil || req.Message.Attachment == nil {
				graphErr(w, http.StatusBadRequest, 100, false, "(#100) Upload attachment failure.")
				return
			}
		} else if err := json.Unmarshal(body, &req); err != nil {
			graphErr(w, http.StatusBadRequest, 100, false, "(#100) Invalid JSON for postbody")
			return
		}
		switch {
		case req.Recipient.ID == "":
			graphErr(w, http.StatusBadRequest, 100, false, "(#100) The parameter recipient is required")
		case req.Message.Text == "" && req.Message.Attachment == nil:
			graphErr(w, http.StatusBadRequest, 100, false, "(#100) Must send either message or state")
		case utf8.RuneCountInString(req.Message.Text) > msMaxText:
			graphErr(w, http.StatusBadRequest, 100, false, "(#100) Length of param message[text] must be less than or equal to 2000")
		default:
			writeJSON(w, map[string]any{
				"recipient_id": req.Recipient.ID,
				"message_id":   fmt.Sprintf("m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_%06d", seq.Add(1)),
			})
		}
	})
	return fa
}
