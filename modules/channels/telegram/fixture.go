package telegram

import (
	"encoding/json"
	"hash/fnv"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// The fixture's bot. The fake API accepts only this token, as the real one accepts only a bot's
// own.
const (
	FixtureBotToken    = "7012345678:AAFixtureTokenForSwitchboardTests-xyz"
	FixtureSecretToken = "switchboard-fixture-secret_1"
	fixtureBotID       = 7012345678
)

// fakeJPEG is what the fake file server hands out: the JPEG magic numbers, enough for content
// sniffing.
var fakeJPEG = []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9")

// Fixture drives the adapter with real Bot API updates.
//
// Telegram's message ids are integers unique per chat, so Inbound maps its arguments onto them:
// from becomes the chat id (itself when numeric, else a stable hash, see From) and providerID the
// message_id (the number after its last colon, or itself when numeric, else a stable hash). The stored ProviderID is
// therefore "<chat id>:<message_id>", and the same arguments always give the same delivery.
func Fixture() provider.Fixture {
	return provider.Fixture{
		Type: Type,
		Config: func(apiBase string) map[string]string {
			return map[string]string{"bot_token": FixtureBotToken, "secret_token": FixtureSecretToken, "api_base": apiBase}
		},
		Inbound: func(ch provider.Channel, providerID, from, text string) provider.Request {
			m := fixtureMessage(providerID, from)
			m["text"] = text
			return fixtureUpdate(ch, providerID, m)
		},
		Media: func(ch provider.Channel, providerID, from string) provider.Request {
			m := fixtureMessage(providerID, from)
			m["caption"] = "photo"
			m["photo"] = []map[string]any{
				{"file_id": "AgACAgIAAxkBAAIBc2" + "small", "file_unique_id": "AQADs", "file_size": 1205, "width": 90, "height": 67},
				{"file_id": "AgACAgIAAxkBAAIBc2" + "medium", "file_unique_id": "AQADm", "file_size": 15502, "width": 320, "height": 240},
				{"file_id": "AgACAgIAAxkBAAIBc2" + "large", "file_unique_id": "AQADl", "file_size": 60124, "width": 1280, "height": 960},
			}
			return fixtureUpdate(ch, providerID, m)
		},
		Status: nil, // Telegram tells bots nothing about delivery
		Forge: func(r provider.Request, forged bool) provider.Request {
			r.Header = r.Header.Clone()
			if r.Header == nil {
				r.Header = http.Header{}
			}
			if forged {
				r.Header.Set(SecretHeader, "forged-"+r.Header.Get(SecretHeader))
			} else {
				r.Header.Del(SecretHeader)
			}
			return r
		},
		From: func(from string) provider.Identity {
			return provider.Identity{Kind: provider.IdentityTelegram, Value: strconv.FormatInt(fixtureChatID(from), 10)}
		},
		FakeAPI: newFakeAPI,
	}
}

func fixtureMessage(providerID, from string) map[string]any {
	chatID := fixtureChatID(from)
	return map[string]any{
		"message_id": fixtureMessageID(providerID),
		"from": map[string]any{"id": chatID, "is_bot": false, "first_name": "Test", "last_name": "Customer",
			"username": "test_customer", "language_code": "en"},
		"chat": map[string]any{"id": chatID, "type": "private", "first_name": "Test", "last_name": "Customer",
			"username": "test_customer"},
		"date": time.Now().Unix(),
	}
}

func fixtureUpdate(ch provider.Channel, providerID string, m map[string]any) provider.Request {
	body, _ := json.Marshal(map[string]any{"update_id": 500000000 + fixtureHash(providerID)%100000000, "message": m})
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(SecretHeader, ch.Config["secret_token"])
	return provider.Request{Method: http.MethodPost, URL: ch.WebhookURL, Query: url.Values{}, Header: h, Body: body}
}

func fixtureChatID(from string) int64 {
	if n, err := strconv.ParseInt(from, 10, 64); err == nil && n != 0 {
		return n
	}
	return 100000000 + fixtureHash(from)%900000000
}

func fixtureMessageID(providerID string) int64 {
	tail := providerID[strings.LastIndexByte(providerID, ':')+1:]
	if n, err := strconv.ParseInt(tail, 10, 32); err == nil && n > 0 {
		return n
	}
	return 1 + fixtureHash(providerID)%(1<<31-1)
}

func fixtureHash(s string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return int64(h.Sum64() >> 1)
}

// newFakeAPI is a local Bot API: sendMessage, sendPhoto, sendDocument, setWebhook, getFile and
// the file server, with Telegram's answer envelopes and errors (401 for another bot's token, 400
// "chat not found" for a chat id that is neither numeric nor @username).
func newFakeAPI() *provider.FakeAPI {
	fa := &provider.FakeAPI{}
	var mu sync.Mutex
	nextID := int64(1000)
	fa.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if fa.Record(provider.Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}) {
			answer(w, http.StatusInternalServerError, map[string]any{"ok": false, "error_code": 500, "description": "Internal Server Error"})
			return
		}
		if rest, ok := strings.CutPrefix(r.URL.Path, "/file/bot"); ok {
			token, _, _ := strings.Cut(rest, "/")
			if token != FixtureBotToken {
				http.Error(w, `{"ok":false,"error_code":404,"description":"Not Found"}`, http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(fakeJPEG)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
		token, method, _ := strings.Cut(rest, "/")
		if !ok || token != FixtureBotToken {
			answer(w, http.StatusUnauthorized, map[string]any{"ok": false, "error_code": 401, "description": "Unauthorized"})
			return
		}
		params, files := fakeParams(r, body)
		bad := func(desc string) {
			answer(w, http.StatusBadRequest, map[string]any{"ok": false, "error_code": 400, "description": "Bad Request: " + desc})
		}
		msg := func(extra map[string]any) {
			chatID := params["chat_id"]
			n, err := strconv.ParseInt(chatID, 10, 64)
			if (err != nil || n == 0) && !strings.HasPrefix(chatID, "@") {
				bad("chat not found")
				return
			}
			mu.Lock()
			nextID++
			id := nextID
			mu.Unlock()
			m := map[string]any{
				"message_id": id,
				"from":       map[string]any{"id": fixtureBotID, "is_bot": true, "first_name": "Switchboard", "username": "switchboard_fixture_bot"},
				"chat":       map[string]any{"id": n, "type": "private"},
				"date":       time.Now().Unix(),
			}
			if c := params["caption"]; c != "" {
				m["caption"] = c
			}
			for k, v := range extra {
				m[k] = v
			}
			answer(w, http.StatusOK, map[string]any{"ok": true, "result": m})
		}
		switch method {
		case "sendMessage":
			if params["text"] == "" {
				bad("message text is empty")
				return
			}
			msg(map[string]any{"text": params["text"]})
		case "sendPhoto":
			if params["photo"] == "" && !files["photo"] {
				bad("there is no photo in the request")
				return
			}
			msg(map[string]any{"photo": []map[string]any{{"file_id": "AgACAgIAAxkDAAI-sent", "file_unique_id": "AQADsent", "width": 800, "height": 600, "file_size": 42000}}})
		case "sendDocument":
			if params["document"] == "" && !files["document"] {
				bad("there is no document in the request")
				return
			}
			msg(map[string]any{"document": map[string]any{"file_id": "BQACAgIAAxkDAAI-sent", "file_unique_id": "AgADsent"}})
		case "setWebhook":
			if params["url"] == "" {
				bad("bad webhook: An HTTPS URL must be provided for webhook")
				return
			}
			answer(w, http.StatusOK, map[string]any{"ok": true, "result": true, "description": "Webhook was set"})
		case "getFile":
			id := params["file_id"]
			if id == "" {
				bad("invalid file_id")
				return
			}
			answer(w, http.StatusOK, map[string]any{"ok": true, "result": map[string]any{
				"file_id": id, "file_unique_id": "AQAD" + strconv.FormatInt(fixtureHash(id)%100000, 10),
				"file_size": len(fakeJPEG), "file_path": "photos/file_" + strconv.FormatInt(fixtureHash(id)%1000, 10) + ".jpg",
			}})
		default:
			answer(w, http.StatusNotFound, map[string]any{"ok": false, "error_code": 404, "description": "Not Found"})
		}
	})
	return fa
}

// fakeParams reads Bot API parameters the three ways Telegram accepts them: query string,
// JSON body, and URL-encoded or multipart form.
func fakeParams(r *http.Request, body []byte) (map[string]string, map[string]bool) {
	params := map[string]string{}
	files := map[string]bool{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	mt, mp, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			for k, v := range m {
				switch v := v.(type) {
				case string:
					params[k] = v
				case float64:
					params[k] = strconv.FormatFloat(v, 'f', -1, 64)
				default:
					b, _ := json.Marshal(v)
					params[k] = string(b)
				}
			}
		}
	case "application/x-www-form-urlencoded":
		if q, err := url.ParseQuery(string(body)); err == nil {
			for k, v := range q {
				params[k] = v[0]
			}
		}
	case "multipart/form-data":
		mr := multipart.NewReader(strings.NewReader(string(body)), mp["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			data, _ := io.ReadAll(p)
			if p.FileName() != "" {
				files[p.FormName()] = len(data) > 0
			} else {
				params[p.FormName()] = string(data)
			}
		}
	}
	return params, files
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
