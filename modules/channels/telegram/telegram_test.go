package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

func channel(apiBase string) provider.Channel {
	return provider.Channel{
		ID: uuid.New(), TenantID: uuid.New(), Type: Type, PublicID: "tg-public",
		Config:     Fixture().Config(apiBase),
		WebhookURL: "https://switchboard.example.com/hooks/telegram/tg-public",
	}
}

func signed(ch provider.Channel, body string) provider.Request {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(SecretHeader, ch.Config["secret_token"])
	return provider.Request{Method: http.MethodPost, URL: ch.WebhookURL, Header: h, Body: []byte(body)}
}

// Updates as the Bot API documents and sends them.
const (
	textUpdate = `{"update_id":10000,"message":{"message_id":1365,"from":{"id":1111111,"is_bot":false,
		"first_name":"Ada","last_name":"Lovelace","username":"ada","language_code":"en"},
		"chat":{"id":1111111,"first_name":"Ada","last_name":"Lovelace","username":"ada","type":"private"},
		"date":1441645532,"text":"你好, I need help"}}`
	photoUpdate = `{"update_id":10001,"message":{"message_id":1366,"from":{"id":1111111,"is_bot":false,"first_name":"Ada","language_code":"zh-hans"},
		"chat":{"id":1111111,"first_name":"Ada","type":"private"},"date":1441645600,
		"photo":[{"file_id":"AgAD-s","file_unique_id":"u1","file_size":1300,"width":90,"height":60},
		         {"file_id":"AgAD-l","file_unique_id":"u3","file_size":98000,"width":1280,"height":853},
		         {"file_id":"AgAD-m","file_unique_id":"u2","file_size":21000,"width":320,"height":213}],
		"caption":"broken screen"}}`
	documentUpdate = `{"update_id":10002,"message":{"message_id":1367,"from":{"id":1111111,"is_bot":false,"first_name":"Ada"},
		"chat":{"id":1111111,"first_name":"Ada","type":"private"},"date":1441645700,
		"document":{"file_name":"invoice.pdf","mime_type":"application/pdf","file_id":"BQAD-doc","file_unique_id":"AgAD","file_size":52340}}}`
	editedUpdate = `{"update_id":10003,"edited_message":{"message_id":1365,"from":{"id":1111111,"is_bot":false,"first_name":"Ada","last_name":"Lovelace"},
		"chat":{"id":1111111,"first_name":"Ada","last_name":"Lovelace","type":"private"},
		"date":1441645532,"edit_date":1441645590,"text":"你好, I need help with my order"}}`
	groupUpdate = `{"update_id":10004,"message":{"message_id":77,"from":{"id":2222222,"is_bot":false,"first_name":"Bob","language_code":"de"},
		"chat":{"id":-1001234567890,"title":"Acme support group","type":"supergroup"},"date":1441646000,"text":"anyone?"}}`
	serviceUpdate = `{"update_id":10005,"message":{"message_id":78,"from":{"id":2222222,"is_bot":false,"first_name":"Bob"},
		"chat":{"id":-1001234567890,"title":"Acme support group","type":"supergroup"},"date":1441646001,
		"new_chat_members":[{"id":3333333,"is_bot":false,"first_name":"Eve"}]}}`
	callbackUpdate = `{"update_id":10006,"callback_query":{"id":"4382bfdwdsb323b2d9","from":{"id":1111111,"is_bot":false,"first_name":"Ada"},"data":"yes"}}`
	locationUpdate = `{"update_id":10007,"message":{"message_id":1368,"from":{"id":1111111,"is_bot":false,"first_name":"Ada"},
		"chat":{"id":1111111,"first_name":"Ada","type":"private"},"date":1441645800,"location":{"latitude":31.230416,"longitude":121.473701}}}`
	voiceUpdate = `{"update_id":10008,"message":{"message_id":1369,"from":{"id":1111111,"is_bot":false,"first_name":"Ada"},
		"chat":{"id":1111111,"first_name":"Ada","type":"private"},"date":1441645900,
		"voice":{"duration":3,"mime_type":"audio/ogg","file_id":"AwAD-voice","file_unique_id":"AgADv","file_size":7000}}}`
)

func TestWebhookParsesUpdates(t *testing.T) {
	tg := New(nil)
	ch := channel(DefaultAPIBase)
	ada := []provider.Identity{{Kind: provider.IdentityTelegram, Value: "1111111"}}
	tests := []struct {
		name string
		body string
		want []provider.InboundMessage
	}{
		{"text", textUpdate, []provider.InboundMessage{{
			ProviderID: "1111111:1365", From: ada, Name: "Ada Lovelace", Locale: "en",
			ContentType: provider.ContentText, Text: "你好, I need help", OccurredAt: time.Unix(1441645532, 0).UTC(),
		}}},
		{"photo takes the largest size", photoUpdate, []provider.InboundMessage{{
			ProviderID: "1111111:1366", From: ada, Name: "Ada", Locale: "zh-hans",
			ContentType: provider.ContentImage, Text: "broken screen",
			Media:      []provider.Media{{Ref: "AgAD-l", ContentType: "image/jpeg", Caption: "broken screen", Size: 98000}},
			OccurredAt: time.Unix(1441645600, 0).UTC(),
		}}},
		{"document", documentUpdate, []provider.InboundMessage{{
			ProviderID: "1111111:1367", From: ada, Name: "Ada", ContentType: provider.ContentFile,
			Media:      []provider.Media{{Ref: "BQAD-doc", ContentType: "application/pdf", Filename: "invoice.pdf", Size: 52340}},
			OccurredAt: time.Unix(1441645700, 0).UTC(),
		}}},
		{"edited message is a new message keyed by its edit date", editedUpdate, []provider.InboundMessage{{
			ProviderID: "1111111:1365:1441645590", From: ada, Name: "Ada Lovelace",
			ContentType: provider.ContentText, Text: "你好, I need help with my order", OccurredAt: time.Unix(1441645590, 0).UTC(),
		}}},
		{"group: the contact is the group", groupUpdate, []provider.InboundMessage{{
			ProviderID: "-1001234567890:77", From: []provider.Identity{{Kind: provider.IdentityTelegram, Value: "-1001234567890"}},
			Name: "Acme support group", ContentType: provider.ContentText, Text: "anyone?", OccurredAt: time.Unix(1441646000, 0).UTC(),
		}}},
		{"location", locationUpdate, []provider.InboundMessage{{
			ProviderID: "1111111:1368", From: ada, Name: "Ada", ContentType: provider.ContentLocation,
			Text: "31.230416,121.473701", OccurredAt: time.Unix(1441645800, 0).UTC(),
		}}},
		{"voice", voiceUpdate, []provider.InboundMessage{{
			ProviderID: "1111111:1369", From: ada, Name: "Ada", ContentType: provider.ContentAudio,
			Media:      []provider.Media{{Ref: "AwAD-voice", ContentType: "audio/ogg", Size: 7000}},
			OccurredAt: time.Unix(1441645900, 0).UTC(),
		}}},
		{"service message is acknowledged, not stored", serviceUpdate, nil},
		{"other update kinds are acknowledged, not stored", callbackUpdate, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tg.Webhook(context.Background(), ch, signed(ch, tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(b.Messages, tt.want) {
				t.Fatalf("messages\n got %+v\nwant %+v", b.Messages, tt.want)
			}
			if len(b.Statuses) != 0 || len(b.Calls) != 0 {
				t.Fatalf("unexpected statuses/calls: %+v", b)
			}
			if !reflect.DeepEqual(b.Response, provider.Response{}) {
				t.Fatalf("response %+v, want the default 200", b.Response)
			}
		})
	}
}

func TestWebhookRejectsBadSecretAndPayload(t *testing.T) {
	tg := New(nil)
	ch := channel(DefaultAPIBase)
	noSecret := ch
	noSecret.Config = map[string]string{"bot_token": FixtureBotToken}
	tests := []struct {
		name string
		ch   provider.Channel
		req  func() provider.Request
		want error
	}{
		{"missing header", ch, func() provider.Request { return Fixture().Forge(signed(ch, textUpdate), false) }, provider.ErrSignature},
		{"forged header", ch, func() provider.Request { return Fixture().Forge(signed(ch, textUpdate), true) }, provider.ErrSignature},
		{"prefix of the secret", ch, func() provider.Request {
			r := signed(ch, textUpdate)
			r.Header.Set(SecretHeader, FixtureSecretToken[:5])
			return r
		}, provider.ErrSignature},
		{"channel without secret_token accepts nothing", noSecret, func() provider.Request {
			r := signed(ch, textUpdate)
			r.Header.Set(SecretHeader, "")
			return r
		}, provider.ErrSignature},
		{"no header map at all", ch, func() provider.Request { return provider.Request{Body: []byte(textUpdate)} }, provider.ErrSignature},
		{"not JSON", ch, func() provider.Request { return signed(ch, `{"update_id":`) }, provider.ErrPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tg.Webhook(context.Background(), tt.ch, tt.req())
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(b.Messages) != 0 {
				t.Fatalf("messages returned with an error: %+v", b.Messages)
			}
		})
	}
}

func TestFixtureRoundTrip(t *testing.T) {
	tg := New(nil)
	fx := Fixture()
	ch := channel(DefaultAPIBase)
	for _, tc := range []struct{ providerID, from string }{{"42", "555"}, {"wamid.xyz", "+8613800138000"}} {
		r := fx.Inbound(ch, tc.providerID, tc.from, "hello")
		b, err := tg.Webhook(context.Background(), ch, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Messages) != 1 || b.Messages[0].Text != "hello" || !reflect.DeepEqual(b.Messages[0].From, []provider.Identity{fx.From(tc.from)}) {
			t.Fatalf("inbound %+v", b.Messages)
		}
		again, _ := tg.Webhook(context.Background(), ch, fx.Inbound(ch, tc.providerID, tc.from, "hello"))
		if again.Messages[0].ProviderID != b.Messages[0].ProviderID {
			t.Fatalf("redelivery has another id: %q vs %q", again.Messages[0].ProviderID, b.Messages[0].ProviderID)
		}
		other, _ := tg.Webhook(context.Background(), ch, fx.Inbound(ch, tc.providerID+"x", tc.from, "hello"))
		if other.Messages[0].ProviderID == b.Messages[0].ProviderID {
			t.Fatalf("different provider ids collapse to %q", other.Messages[0].ProviderID)
		}
	}
	if got := fx.From("555"); got != (provider.Identity{Kind: provider.IdentityTelegram, Value: "555"}) {
		t.Fatalf("From(555) = %+v", got)
	}
	b, err := tg.Webhook(context.Background(), ch, fx.Media(ch, "43", "555"))
	if err != nil {
		t.Fatal(err)
	}
	m := b.Messages[0]
	if m.ProviderID != "555:43" || m.ContentType != provider.ContentImage || len(m.Media) != 1 || m.Media[0].Ref != "AgACAgIAAxkBAAIBc2large" {
		t.Fatalf("media %+v", m)
	}
	if fx.Status != nil {
		t.Fatal("Telegram sends no statuses; the fixture must say so with a nil Status")
	}
}

type sendCase struct {
	name     string
	out      provider.Outbound
	wantID   string
	wantPath []string
	check    func(t *testing.T, calls []provider.Call)
}

func jsonBody(t *testing.T, c provider.Call) map[string]any {
	t.Helper()
	if ct := c.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q", c.Path, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(c.Body, &m); err != nil {
		t.Fatalf("%s: body %q: %v", c.Path, c.Body, err)
	}
	return m
}

func TestSend(t *testing.T) {
	to := []provider.Identity{{Kind: provider.IdentityEmail, Value: "x@example.com"}, {Kind: provider.IdentityTelegram, Value: "1111111"}}
	long := strings.Repeat("这是一段很长的回复。", 500) // 5000 runes, all in the BMP
	tests := []sendCase{
		{
			name: "text", out: provider.Outbound{To: to, Text: "您好，我们已收到"},
			wantID: "1111111:1001", wantPath: []string{"/bot" + FixtureBotToken + "/sendMessage"},
			check: func(t *testing.T, calls []provider.Call) {
				m := jsonBody(t, calls[0])
				if !reflect.DeepEqual(m, map[string]any{"chat_id": float64(1111111), "text": "您好，我们已收到"}) {
					t.Fatalf("body %v", m)
				}
			},
		},
		{
			name: "long text is split at 4096", out: provider.Outbound{To: to, Text: long},
			wantID:   "1111111:1001",
			wantPath: []string{"/bot" + FixtureBotToken + "/sendMessage", "/bot" + FixtureBotToken + "/sendMessage"},
			check: func(t *testing.T, calls []provider.Call) {
				a, b := jsonBody(t, calls[0])["text"].(string), jsonBody(t, calls[1])["text"].(string)
				if a+b != long || utf16Len(a) > 4096 || utf16Len(b) > 4096 {
					t.Fatalf("split into %d + %d units", utf16Len(a), utf16Len(b))
				}
			},
		},
		{
			name: "photo by URL with the text as caption",
			out: provider.Outbound{To: to, Text: "see attached", Attachments: []provider.OutAttachment{
				{Filename: "a.png", ContentType: "image/png", URL: "https://files.example.com/a.png"}}},
			wantID: "1111111:1001", wantPath: []string{"/bot" + FixtureBotToken + "/sendPhoto"},
			check: func(t *testing.T, calls []provider.Call) {
				m := jsonBody(t, calls[0])
				want := map[string]any{"chat_id": float64(1111111), "photo": "https://files.example.com/a.png", "caption": "see attached"}
				if !reflect.DeepEqual(m, want) {
					t.Fatalf("body %v", m)
				}
			},
		},
		{
			name: "photo upload is multipart",
			out: provider.Outbound{To: to, Text: "here", Attachments: []provider.OutAttachment{
				{Filename: "shot.jpg", ContentType: "image/jpeg", Data: fakeJPEG}}},
			wantID: "1111111:1001", wantPath: []string{"/bot" + FixtureBotToken + "/sendPhoto"},
			check: func(t *testing.T, calls []provider.Call) {
				fields, files := multipartOf(t, calls[0])
				if !reflect.DeepEqual(fields, map[string]string{"chat_id": "1111111", "caption": "here"}) {
					t.Fatalf("fields %v", fields)
				}
				if f := files["photo"]; f.name != "shot.jpg" || f.ct != "image/jpeg" || string(f.data) != string(fakeJPEG) {
					t.Fatalf("photo part %+v", f)
				}
			},
		},
		{
			name: "two attachments: text first, then each file",
			out: provider.Outbound{To: to, Text: "two files", Attachments: []provider.OutAttachment{
				{Filename: "report.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4")},
				{Filename: "b.jpg", ContentType: "image/jpeg", URL: "https://files.example.com/b.jpg"}}},
			wantID: "1111111:1001",
			wantPath: []string{"/bot" + FixtureBotToken + "/sendMessage", "/bot" + FixtureBotToken + "/sendDocument",
				"/bot" + FixtureBotToken + "/sendPhoto"},
			check: func(t *testing.T, calls []provider.Call) {
				if m := jsonBody(t, calls[0]); m["text"] != "two files" {
					t.Fatalf("text %v", m)
				}
				fields, files := multipartOf(t, calls[1])
				if fields["chat_id"] != "1111111" || fields["caption"] != "" || files["document"].name != "report.pdf" {
					t.Fatalf("document %v %+v", fields, files)
				}
				if m := jsonBody(t, calls[2]); m["photo"] != "https://files.example.com/b.jpg" || m["caption"] != nil {
					t.Fatalf("photo %v", m)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := Fixture().FakeAPI()
			srv := httptest.NewServer(fa.Handler)
			defer srv.Close()
			sent, err := New(srv.Client()).Send(context.Background(), channel(srv.URL), tt.out)
			if err != nil {
				t.Fatal(err)
			}
			if sent.ProviderID != tt.wantID {
				t.Fatalf("ProviderID %q, want %q", sent.ProviderID, tt.wantID)
			}
			calls := fa.Calls()
			var paths []string
			for _, c := range calls {
				if c.Method != http.MethodPost {
					t.Fatalf("%s %s", c.Method, c.Path)
				}
				paths = append(paths, c.Path)
			}
			if !reflect.DeepEqual(paths, tt.wantPath) {
				t.Fatalf("paths %v, want %v", paths, tt.wantPath)
			}
			tt.check(t, calls)
		})
	}
}

type part struct {
	name, ct string
	data     []byte
}

func multipartOf(t *testing.T, c provider.Call) (map[string]string, map[string]part) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(c.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("%s: Content-Type %q", c.Path, c.Header.Get("Content-Type"))
	}
	fields, files := map[string]string{}, map[string]part{}
	mr := multipart.NewReader(strings.NewReader(string(c.Body)), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(p)
		if p.FileName() != "" {
			files[p.FormName()] = part{p.FileName(), p.Header.Get("Content-Type"), data}
		} else {
			fields[p.FormName()] = string(data)
		}
	}
	return fields, files
}

func TestSendErrors(t *testing.T) {
	to := []provider.Identity{{Kind: provider.IdentityTelegram, Value: "1111111"}}
	telegramAnswer := func(status int, body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		})
	}
	tests := []struct {
		name      string
		handler   func(fa *provider.FakeAPI) http.Handler
		to        []provider.Identity
		permanent bool
		status    int
		reason    string
	}{
		{"500 from the fake is retryable", func(fa *provider.FakeAPI) http.Handler { fa.Fail(true); return fa.Handler },
			to, false, 500, "Internal Server Error"},
		{"400 chat not found is permanent", func(fa *provider.FakeAPI) http.Handler { return fa.Handler },
			[]provider.Identity{{Kind: provider.IdentityTelegram, Value: "not-a-chat"}}, true, 400, "chat not found"},
		{"403 blocked by the user is permanent", func(*provider.FakeAPI) http.Handler {
			return telegramAnswer(403, `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`)
		}, to, true, 403, "bot was blocked by the user"},
		{"429 is retryable", func(*provider.FakeAPI) http.Handler {
			return telegramAnswer(429, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}`)
		}, to, false, 429, "retry after 7 s"},
		{"502 from a proxy without JSON is retryable", func(*provider.FakeAPI) http.Handler {
			return telegramAnswer(502, `<html>Bad Gateway</html>`)
		}, to, false, 502, "Bad Gateway"},
		{"no telegram identity is permanent", func(fa *provider.FakeAPI) http.Handler { return fa.Handler },
			[]provider.Identity{{Kind: provider.IdentityEmail, Value: "a@b.c"}}, true, 0, "no telegram identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := Fixture().FakeAPI()
			srv := httptest.NewServer(tt.handler(fa))
			defer srv.Close()
			_, err := New(srv.Client()).Send(context.Background(), channel(srv.URL), provider.Outbound{To: tt.to, Text: "hi"})
			var se *provider.SendError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a SendError", err)
			}
			if se.Permanent != tt.permanent || se.Status != tt.status || !strings.Contains(se.Reason, tt.reason) {
				t.Fatalf("got %+v, want permanent=%v status=%d reason~%q", se, tt.permanent, tt.status, tt.reason)
			}
			if strings.Contains(se.Reason, FixtureBotToken) {
				t.Fatalf("reason leaks the bot token: %s", se.Reason)
			}
		})
	}
}

func TestSendTransportErrorIsRetryableAndHidesToken(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens any more
	_, err := New(&http.Client{Timeout: 2 * time.Second}).Send(context.Background(), channel(base),
		provider.Outbound{To: []provider.Identity{{Kind: provider.IdentityTelegram, Value: "1"}}, Text: "hi"})
	var se *provider.SendError
	if !errors.As(err, &se) || se.Permanent {
		t.Fatalf("err = %v, want a retryable SendError", err)
	}
	if strings.Contains(se.Reason, FixtureBotToken) || !strings.Contains(se.Reason, "<bot_token>") {
		t.Fatalf("reason %q: the token must be redacted", se.Reason)
	}
}

func TestSetup(t *testing.T) {
	fa := Fixture().FakeAPI()
	srv := httptest.NewServer(fa.Handler)
	defer srv.Close()
	ch := channel(srv.URL)
	if err := New(srv.Client()).Setup(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	calls := fa.Calls()
	if len(calls) != 1 || calls[0].Method != http.MethodPost || calls[0].Path != "/bot"+FixtureBotToken+"/setWebhook" {
		t.Fatalf("calls %+v", calls)
	}
	want := map[string]any{"url": ch.WebhookURL, "secret_token": FixtureSecretToken,
		"allowed_updates": []any{"message", "edited_message"}}
	if m := jsonBody(t, calls[0]); !reflect.DeepEqual(m, want) {
		t.Fatalf("body %v, want %v", m, want)
	}

	refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"ok":false,"error_code":400,"description":"Bad Request: bad webhook: HTTPS url must be provided for webhook"}`)
	}))
	defer refused.Close()
	err := New(refused.Client()).Setup(context.Background(), channel(refused.URL))
	if err == nil || !strings.Contains(err.Error(), "telegram: setWebhook refused (400): Bad Request: bad webhook: HTTPS url must be provided") {
		t.Fatalf("err = %v", err)
	}
	noURL := channel(srv.URL)
	noURL.WebhookURL = ""
	if err := New(srv.Client()).Setup(context.Background(), noURL); err == nil {
		t.Fatal("Setup without a webhook URL succeeded")
	}
}

func TestFetchMedia(t *testing.T) {
	fa := Fixture().FakeAPI()
	srv := httptest.NewServer(fa.Handler)
	defer srv.Close()
	tg := New(srv.Client())
	for _, tc := range []struct {
		name, ct, wantCT string
	}{{"type from the message", "image/jpeg", "image/jpeg"}, {"type from the file path", "", "image/jpeg"}} {
		t.Run(tc.name, func(t *testing.T) {
			data, ct, err := tg.FetchMedia(context.Background(), channel(srv.URL), provider.Media{Ref: "AgAD-l", ContentType: tc.ct})
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != string(fakeJPEG) || ct != tc.wantCT {
				t.Fatalf("got %d bytes of %q", len(data), ct)
			}
		})
	}
	calls := fa.Calls()
	if len(calls) != 4 || calls[0].Path != "/bot"+FixtureBotToken+"/getFile" || jsonBody(t, calls[0])["file_id"] != "AgAD-l" ||
		calls[1].Method != http.MethodGet || !strings.HasPrefix(calls[1].Path, "/file/bot"+FixtureBotToken+"/photos/file_") {
		t.Fatalf("calls %+v", calls)
	}
	fa.Fail(true)
	if _, _, err := tg.FetchMedia(context.Background(), channel(srv.URL), provider.Media{Ref: "AgAD-l"}); err == nil || provider.Permanent(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
}

func TestValidate(t *testing.T) {
	tg := New(nil)
	good := Fixture().Config("https://api.telegram.org")
	if err := tg.Validate(good); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(map[string]string){
		"bot token without id":  func(c map[string]string) { c["bot_token"] = "AAFixture" },
		"secret with spaces":    func(c map[string]string) { c["secret_token"] = "has spaces" },
		"secret too long":       func(c map[string]string) { c["secret_token"] = strings.Repeat("a", 257) },
		"api_base not a URL":    func(c map[string]string) { c["api_base"] = "api.telegram.org" },
		"secret missing":        func(c map[string]string) { delete(c, "secret_token") },
		"api_base ftp":          func(c map[string]string) { c["api_base"] = "ftp://api.telegram.org" },
		"bot token with spaces": func(c map[string]string) { c["bot_token"] = "123: abc" },
	} {
		c := Fixture().Config("https://api.telegram.org")
		mutate(c)
		if err := tg.Validate(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	spec := tg.Spec()
	if spec.Type != "telegram" || spec.Defaults["api_base"] != "https://api.telegram.org" ||
		!reflect.DeepEqual(spec.Secret, []string{"bot_token", "secret_token"}) ||
		!reflect.DeepEqual(spec.Identities, []string{provider.IdentityTelegram}) {
		t.Fatalf("spec %+v", spec)
	}
}

func TestSplitText(t *testing.T) {
	emoji := strings.Repeat("😀", 3000) // 2 UTF-16 units each: 6000 units
	parts := splitText(emoji, maxText)
	if len(parts) != 2 || strings.Join(parts, "") != emoji || utf16Len(parts[0]) != 4096 {
		t.Fatalf("emoji split: %d parts, first %d units", len(parts), utf16Len(parts[0]))
	}
	words := strings.Repeat("word ", 1000) // 5000 units
	parts = splitText(words, maxText)
	if len(parts) != 2 || !strings.HasSuffix(parts[0], " ") || strings.Join(parts, "") != words {
		t.Fatalf("word split: %q…", parts[0][len(parts[0])-10:])
	}
}
