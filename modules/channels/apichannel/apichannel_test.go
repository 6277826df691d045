package apichannel

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

const testSecret = "whsec_test_secret_0123"

var testNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func testChannel(webhookURL string) provider.Channel {
	return provider.Channel{
		ID: uuid.New(), TenantID: uuid.New(), Type: Type, PublicID: "ch_api",
		Config:     map[string]string{KeySecret: testSecret, KeyWebhookURL: webhookURL},
		WebhookURL: "https://switchboard.example/hooks/api/ch_api",
	}
}

func request(body string, sig string) provider.Request {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if sig != "" {
		h.Set(SignatureHeader, sig)
	}
	return provider.Request{Method: http.MethodPost, URL: "https://switchboard.example/hooks/api/ch_api", Header: h, Body: []byte(body)}
}

// TestSignKnownVector pins the wire format against a value computed outside Go:
// printf '%s' '1700000000.{"message_id":"m-1"}' | openssl dgst -sha256 -hmac 'whsec_test_secret_0123'
func TestSignKnownVector(t *testing.T) {
	got := Sign(testSecret, time.Unix(1700000000, 0), []byte(`{"message_id":"m-1"}`))
	want := "t=1700000000,v1=283e471c991582628236646bcc4db8abb4fbda81cdb15d85608d99e25fd36e66"
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"message_id":"m-1"}`)
	good := Sign(testSecret, testNow, body)
	oldSecret := Sign("the-previous-secret-value", testNow, body)
	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		ok     bool
	}{
		{"valid", testSecret, good, body, true},
		{"valid 299 s old", testSecret, Sign(testSecret, testNow.Add(-299*time.Second), body), body, true},
		{"valid 299 s ahead", testSecret, Sign(testSecret, testNow.Add(299*time.Second), body), body, true},
		{"rotation: old and new v1", testSecret, oldSecret + ",v1=" + strings.TrimPrefix(good, "t="+strconv.FormatInt(testNow.Unix(), 10)+",v1="), body, true},
		{"spaces after commas", testSecret, strings.Replace(good, ",", ", ", 1), body, true},
		{"missing", testSecret, "", body, false},
		{"forged: other secret", testSecret, oldSecret, body, false},
		{"tampered body", testSecret, good, []byte(`{"message_id":"m-2"}`), false},
		{"expired: 301 s old", testSecret, Sign(testSecret, testNow.Add(-301*time.Second), body), body, false},
		{"from the future: 301 s ahead", testSecret, Sign(testSecret, testNow.Add(301*time.Second), body), body, false},
		{"timestamp swapped after signing", testSecret, strings.Replace(good, strconv.FormatInt(testNow.Unix(), 10), strconv.FormatInt(testNow.Unix()-1, 10), 1), body, false},
		{"no timestamp", testSecret, good[strings.Index(good, "v1="):], body, false},
		{"no v1", testSecret, "t=" + strconv.FormatInt(testNow.Unix(), 10), body, false},
		{"v1 not hex", testSecret, "t=" + strconv.FormatInt(testNow.Unix(), 10) + ",v1=zz", body, false},
		{"v0 only", testSecret, strings.Replace(good, "v1=", "v0=", 1), body, false},
		{"channel without secret", "", good, body, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, tt.body, testNow)
			if tt.ok && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !tt.ok && !errors.Is(err, provider.ErrSignature) {
				t.Fatalf("Verify = %v, want ErrSignature", err)
			}
		})
	}
}

func TestWebhookParses(t *testing.T) {
	a := New(nil, func() time.Time { return testNow })
	tests := []struct {
		name string
		body string
		want provider.Batch
	}{
		{
			name: "text with every identity",
			body: `{"message_id":"m-100","contact":{"external_id":"u-42","name":" 李雷 ","email":"Li.Lei@Example.COM","phone":"+86 138-0013-8000"},
				"text":"你好，我的订单还没到","thread_id":"order-7","occurred_at":"2025-03-04T13:00:00+08:00"}`,
			want: provider.Batch{Messages: []provider.InboundMessage{{
				ProviderID: "m-100",
				From: []provider.Identity{
					{Kind: provider.IdentityExternal, Value: "u-42"},
					{Kind: provider.IdentityEmail, Value: "li.lei@example.com"},
					{Kind: provider.IdentityPhone, Value: "+8613800138000"},
				},
				Name: "李雷", ContentType: provider.ContentText, Text: "你好，我的订单还没到", ThreadKey: "order-7",
				OccurredAt: time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC),
			}}},
		},
		{
			name: "type message, phone only, no occurred_at takes the clock",
			body: `{"type":"message","message_id":"m-101","contact":{"phone":"008613800138000"},"text":"hi"}`,
			want: provider.Batch{Messages: []provider.InboundMessage{{
				ProviderID:  "m-101",
				From:        []provider.Identity{{Kind: provider.IdentityPhone, Value: "+8613800138000"}},
				ContentType: provider.ContentText, Text: "hi", OccurredAt: testNow,
			}}},
		},
		{
			name: "image with caption",
			body: `{"message_id":"m-102","contact":{"email":"a@b.example"},"text":"the broken part",
				"attachments":[{"url":"https://cdn.brand.example/u/1.jpg","content_type":"image/jpeg","filename":"1.jpg"},
				{"url":"https://cdn.brand.example/u/r.pdf","content_type":"application/pdf","filename":"receipt.pdf"}],
				"occurred_at":"2025-03-04T05:00:00Z"}`,
			want: provider.Batch{Messages: []provider.InboundMessage{{
				ProviderID:  "m-102",
				From:        []provider.Identity{{Kind: provider.IdentityEmail, Value: "a@b.example"}},
				ContentType: provider.ContentImage, Text: "the broken part",
				Media: []provider.Media{
					{URL: "https://cdn.brand.example/u/1.jpg", ContentType: "image/jpeg", Filename: "1.jpg"},
					{URL: "https://cdn.brand.example/u/r.pdf", ContentType: "application/pdf", Filename: "receipt.pdf"},
				},
				OccurredAt: time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC),
			}}},
		},
		{
			name: "file only",
			body: `{"message_id":"m-103","contact":{"external_id":"u-1"},"attachments":[{"url":"http://files.brand.example/x.bin"}]}`,
			want: provider.Batch{Messages: []provider.InboundMessage{{
				ProviderID: "m-103", From: []provider.Identity{{Kind: provider.IdentityExternal, Value: "u-1"}},
				ContentType: provider.ContentFile, Media: []provider.Media{{URL: "http://files.brand.example/x.bin"}},
				OccurredAt: testNow,
			}}},
		},
		{
			name: "status delivered",
			body: `{"type":"status","message_id":"brand-77","status":"delivered","occurred_at":"2025-03-04T05:06:00Z"}`,
			want: provider.Batch{Statuses: []provider.StatusUpdate{{ProviderID: "brand-77", Status: provider.StatusDelivered, At: time.Date(2025, 3, 4, 5, 6, 0, 0, time.UTC)}}},
		},
		{
			name: "status failed with reason",
			body: `{"type":"status","message_id":"brand-78","status":"failed","reason":"push token expired"}`,
			want: provider.Batch{Statuses: []provider.StatusUpdate{{ProviderID: "brand-78", Status: provider.StatusFailed, Reason: "push token expired", At: testNow}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Webhook(context.Background(), testChannel("https://brand.example/replies"),
				request(tt.body, Sign(testSecret, testNow, []byte(tt.body))))
			if err != nil {
				t.Fatalf("Webhook: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Webhook =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestWebhookRejects(t *testing.T) {
	a := New(nil, func() time.Time { return testNow })
	valid := `{"message_id":"m-1","contact":{"external_id":"u-1"},"text":"hi"}`
	sign := func(b string) string { return Sign(testSecret, testNow, []byte(b)) }
	tests := []struct {
		name string
		body string
		sig  string
		want error
	}{
		{"missing signature", valid, "", provider.ErrSignature},
		{"forged signature", valid, Sign("someone-elses-secret-123", testNow, []byte(valid)), provider.ErrSignature},
		{"expired signature", valid, Sign(testSecret, testNow.Add(-10*time.Minute), []byte(valid)), provider.ErrSignature},
		{"signature of another body", valid, sign(`{"message_id":"m-1"}`), provider.ErrSignature},
		{"not JSON", `hello`, sign(`hello`), provider.ErrPayload},
		{"no message_id", `{"contact":{"external_id":"u-1"},"text":"hi"}`, sign(`{"contact":{"external_id":"u-1"},"text":"hi"}`), provider.ErrPayload},
		{"no identity", `{"message_id":"m","contact":{"name":"x"},"text":"hi"}`, sign(`{"message_id":"m","contact":{"name":"x"},"text":"hi"}`), provider.ErrPayload},
		{"bad email", `{"message_id":"m","contact":{"email":"Li <li@x.example>"},"text":"hi"}`, sign(`{"message_id":"m","contact":{"email":"Li <li@x.example>"},"text":"hi"}`), provider.ErrPayload},
		{"national phone", `{"message_id":"m","contact":{"phone":"13800138000"},"text":"hi"}`, sign(`{"message_id":"m","contact":{"phone":"13800138000"},"text":"hi"}`), provider.ErrPayload},
		{"empty message", `{"message_id":"m","contact":{"external_id":"u"}}`, sign(`{"message_id":"m","contact":{"external_id":"u"}}`), provider.ErrPayload},
		{"attachment not http", `{"message_id":"m","contact":{"external_id":"u"},"attachments":[{"url":"file:///etc/passwd"}]}`, sign(`{"message_id":"m","contact":{"external_id":"u"},"attachments":[{"url":"file:///etc/passwd"}]}`), provider.ErrPayload},
		{"bad occurred_at", `{"message_id":"m","contact":{"external_id":"u"},"text":"x","occurred_at":"yesterday"}`, sign(`{"message_id":"m","contact":{"external_id":"u"},"text":"x","occurred_at":"yesterday"}`), provider.ErrPayload},
		{"unknown type", `{"type":"typing","message_id":"m"}`, sign(`{"type":"typing","message_id":"m"}`), provider.ErrPayload},
		{"unknown status", `{"type":"status","message_id":"m","status":"bounced"}`, sign(`{"type":"status","message_id":"m","status":"bounced"}`), provider.ErrPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Webhook(context.Background(), testChannel("https://brand.example/replies"), request(tt.body, tt.sig))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Webhook = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	a := New(nil, nil)
	tests := []struct {
		name string
		cfg  map[string]string
		ok   bool
	}{
		{"https", map[string]string{KeySecret: testSecret, KeyWebhookURL: "https://brand.example/switchboard"}, true},
		{"http with port", map[string]string{KeySecret: testSecret, KeyWebhookURL: "http://10.0.0.5:8080/hook"}, true},
		{"short secret", map[string]string{KeySecret: "abc", KeyWebhookURL: "https://brand.example/x"}, false},
		{"no webhook_url", map[string]string{KeySecret: testSecret}, false},
		{"relative", map[string]string{KeySecret: testSecret, KeyWebhookURL: "/replies"}, false},
		{"ftp", map[string]string{KeySecret: testSecret, KeyWebhookURL: "ftp://brand.example/x"}, false},
		{"no host", map[string]string{KeySecret: testSecret, KeyWebhookURL: "https:///x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := a.Validate(tt.cfg); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"+8613800138000", "+8613800138000", true},
		{" +86 138 0013 8000 ", "+8613800138000", true},
		{"+1 (415) 867-5309", "+14158675309", true},
		{"0044 20.7946.0000", "+442079460000", true},
		{"tel:+14158675309", "+14158675309", true},
		{"+266696687", "+266696687", true}, // Twilio's "anonymous" caller id
		{"13800138000", "", false},         // national: no country code
		{"+0123456789", "", false},
		{"+1234567890123456", "", false}, // 16 digits
		{"+12345", "", false},
		{"+86 138 0013 8000 ext 5", "", false},
		{"client:alice", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := NormalizePhone(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSendReachesTheBrand(t *testing.T) {
	fa := Fixture().FakeAPI()
	srv := httptest.NewServer(fa.Handler)
	defer srv.Close()
	a := New(srv.Client(), nil)
	ch := testChannel(srv.URL + "/replies")
	ch.Config = Fixture().Config(srv.URL)
	out := provider.Outbound{
		MessageID:      uuid.MustParse("0193a1b2-0000-7000-8000-000000000001"),
		ConversationID: uuid.MustParse("0193a1b2-0000-7000-8000-0000000000c1"),
		To:             []provider.Identity{{Kind: provider.IdentityExternal, Value: "u-42"}, {Kind: provider.IdentityEmail, Value: "li@example.com"}},
		Text:           "您好，已为您重新发货。",
		Attachments: []provider.OutAttachment{
			{Filename: "label.pdf", ContentType: "application/pdf", URL: "https://files.switchboard.example/a/label.pdf", Data: []byte("ignored when a URL is given")},
			{Filename: "note.txt", ContentType: "text/plain", Data: []byte("hello")},
		},
	}
	sent, err := a.Send(context.Background(), ch, out)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if sent.ProviderID != "brand-"+out.MessageID.String() {
		t.Fatalf("ProviderID = %q", sent.ProviderID)
	}
	calls := fa.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls = %d", len(calls))
	}
	c := calls[0]
	if c.Method != http.MethodPost || c.Path != "/replies" {
		t.Fatalf("request = %s %s", c.Method, c.Path)
	}
	if got := c.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := c.Header.Get("Idempotency-Key"); got != out.MessageID.String() {
		t.Errorf("Idempotency-Key = %q", got)
	}
	if err := Verify(ch.Config[KeySecret], c.Header.Get(SignatureHeader), c.Body, time.Now()); err != nil {
		t.Errorf("signature of the reply: %v", err)
	}
	var body map[string]any
	if err := json.Unmarshal(c.Body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"message_id":      out.MessageID.String(),
		"conversation_id": out.ConversationID.String(),
		"to":              []any{map[string]any{"kind": "external", "value": "u-42"}, map[string]any{"kind": "email", "value": "li@example.com"}},
		"text":            "您好，已为您重新发货。",
		"attachments": []any{
			map[string]any{"url": "https://files.switchboard.example/a/label.pdf", "filename": "label.pdf", "content_type": "application/pdf"},
			map[string]any{"filename": "note.txt", "content_type": "text/plain", "data": "aGVsbG8="},
		},
	}
	if !reflect.DeepEqual(body, want) {
		t.Fatalf("body =\n%v\nwant\n%v", body, want)
	}
}

func TestSendErrors(t *testing.T) {
	out := provider.Outbound{MessageID: uuid.New(), ConversationID: uuid.New(), Text: "hi"}

	t.Run("500 is retryable", func(t *testing.T) {
		fa := Fixture().FakeAPI()
		srv := httptest.NewServer(fa.Handler)
		defer srv.Close()
		fa.Fail(true)
		_, err := New(srv.Client(), nil).Send(context.Background(), provider.Channel{Config: Fixture().Config(srv.URL)}, out)
		var se *provider.SendError
		if !errors.As(err, &se) || se.Permanent || se.Status != 500 {
			t.Fatalf("Send = %#v, want retryable 500", err)
		}
	})

	answer := func(status int, body string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
	}
	for _, tt := range []struct {
		status    int
		permanent bool
	}{{400, true}, {404, true}, {401, true}, {408, false}, {429, false}, {503, false}} {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			srv := answer(tt.status, `{"error":"no"}`)
			defer srv.Close()
			_, err := New(srv.Client(), nil).Send(context.Background(), testChannel(srv.URL), out)
			var se *provider.SendError
			if !errors.As(err, &se) || se.Permanent != tt.permanent || se.Status != tt.status || se.Reason != `{"error":"no"}` {
				t.Fatalf("Send = %#v, want permanent=%v", err, tt.permanent)
			}
		})
	}

	t.Run("2xx without an id keeps ours", func(t *testing.T) {
		for _, body := range []string{"", "OK", `{"ok":true}`, `{"id":""}`, `{"id":7}`} {
			srv := answer(http.StatusAccepted, body)
			sent, err := New(srv.Client(), nil).Send(context.Background(), testChannel(srv.URL), out)
			srv.Close()
			if err != nil || sent.ProviderID != out.MessageID.String() {
				t.Fatalf("answer %q: Send = %+v, %v", body, sent, err)
			}
		}
	})

	t.Run("unreachable is retryable", func(t *testing.T) {
		srv := answer(200, "")
		url := srv.URL
		srv.Close()
		_, err := New(nil, nil).Send(context.Background(), testChannel(url), out)
		var se *provider.SendError
		if !errors.As(err, &se) || se.Permanent || se.Status != 0 {
			t.Fatalf("Send = %#v, want retryable transport error", err)
		}
	})

	t.Run("no webhook_url is permanent", func(t *testing.T) {
		_, err := New(nil, nil).Send(context.Background(), provider.Channel{Config: map[string]string{KeySecret: testSecret}}, out)
		if !provider.Permanent(err) {
			t.Fatalf("Send = %v, want permanent", err)
		}
	})
}

func TestFetchMedia(t *testing.T) {
	fa := Fixture().FakeAPI()
	srv := httptest.NewServer(fa.Handler)
	defer srv.Close()
	a := New(srv.Client(), nil)
	data, ct, err := a.FetchMedia(context.Background(), provider.Channel{}, provider.Media{URL: srv.URL + "/media/photo.png", ContentType: "image/jpeg"})
	if err != nil || ct != "image/png" || string(data) != string(FakePNG) {
		t.Fatalf("FetchMedia = %d bytes, %q, %v", len(data), ct, err)
	}
	if _, _, err := a.FetchMedia(context.Background(), provider.Channel{}, provider.Media{URL: srv.URL + "/nothing"}); err == nil {
		t.Fatal("FetchMedia of a 404 succeeded")
	}
	if _, _, err := a.FetchMedia(context.Background(), provider.Channel{}, provider.Media{URL: "file:///etc/passwd"}); err == nil {
		t.Fatal("FetchMedia of a file URL succeeded")
	}
}

// TestFixture checks what the inbox's integration tests rely on: each delivery parses, forgeries
// are refused, and the sender is the identity From names.
func TestFixture(t *testing.T) {
	f := Fixture()
	srv := httptest.NewServer(f.FakeAPI().Handler)
	defer srv.Close()
	ch := provider.Channel{ID: uuid.New(), Type: f.Type, Config: f.Config(srv.URL), WebhookURL: "https://sb.example/hooks/api/p1"}
	a := New(srv.Client(), nil)
	if err := a.Validate(ch.Config); err != nil {
		t.Fatalf("fixture config: %v", err)
	}

	in := f.Inbound(ch, "pm-1", "cust-9", "hello")
	b, err := a.Webhook(context.Background(), ch, in)
	if err != nil || len(b.Messages) != 1 || b.Messages[0].ProviderID != "pm-1" || b.Messages[0].Text != "hello" ||
		!reflect.DeepEqual(b.Messages[0].From, []provider.Identity{f.From("cust-9")}) {
		t.Fatalf("Inbound → %+v, %v", b, err)
	}
	if in.URL != ch.WebhookURL {
		t.Errorf("Inbound URL = %q", in.URL)
	}

	b, err = a.Webhook(context.Background(), ch, f.Media(ch, "pm-2", "cust-9"))
	if err != nil || len(b.Messages) != 1 || b.Messages[0].ContentType != provider.ContentImage || len(b.Messages[0].Media) != 1 {
		t.Fatalf("Media → %+v, %v", b, err)
	}
	data, _, err := a.FetchMedia(context.Background(), ch, b.Messages[0].Media[0])
	if err != nil || string(data) != string(FakePNG) {
		t.Fatalf("fixture media fetch: %v", err)
	}

	b, err = a.Webhook(context.Background(), ch, f.Status(ch, "brand-x", provider.StatusRead))
	if err != nil || !reflect.DeepEqual(b.Statuses, []provider.StatusUpdate{{ProviderID: "brand-x", Status: provider.StatusRead, At: b.Statuses[0].At}}) {
		t.Fatalf("Status → %+v, %v", b, err)
	}

	for _, forged := range []bool{false, true} {
		r := f.Forge(in, forged)
		if _, err := a.Webhook(context.Background(), ch, r); !errors.Is(err, provider.ErrSignature) {
			t.Errorf("Forge(%v) → %v, want ErrSignature", forged, err)
		}
	}
	if _, err := a.Webhook(context.Background(), ch, in); err != nil {
		t.Errorf("Forge changed the original request: %v", err)
	}
}
