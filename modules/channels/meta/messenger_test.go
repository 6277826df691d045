package meta

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

// msBody wraps messaging events in a page entry for pageID.
func msBody(pageID string, events ...string) string {
	return `{"object":"page","entry":[{"id":"` + pageID + `","time":1700000000999,"messaging":[` + strings.Join(events, ",") + `]}]}`
}

const psid = "7253318391401234"

func msEv(rest string) string {
	return `{"sender":{"id":"` + psid + `"},"recipient":{"id":"` + FixtureMessengerPageID + `"},"timestamp":1700000000123,` + rest + `}`
}

var (
	tMS      = time.UnixMilli(1700000000123).UTC()
	msSender = []provider.Identity{{Kind: "messenger", Value: psid}}
)

func TestMessengerWebhook(t *testing.T) {
	m := NewMessenger(nil)
	ch := channelFor(MessengerFixture(), "http://unused.invalid")
	page := FixtureMessengerPageID
	for _, tc := range []struct {
		name string
		body string
		want provider.Batch
	}{
		{
			name: "text",
			body: msBody(page, msEv(`"message":{"mid":"m_TEXT1","text":"Bonjour, où est ma commande ?"}`)),
			want: provider.Batch{Messages: []provider.InboundMessage{{ProviderID: "m_TEXT1", From: msSender, ContentType: "text", Text: "Bonjour, où est ma commande ?", OccurredAt: tMS}}},
		},
		{
			name: "quick reply",
			body: msBody(page, msEv(`"message":{"mid":"m_QR1","text":"Red","quick_reply":{"payload":"COLOR_RED"}}`)),
			want: provider.Batch{Messages: []provider.InboundMessage{{ProviderID: "m_QR1", From: msSender, ContentType: "text", Text: "Red", OccurredAt: tMS}}},
		},
		{
			name: "image",
			body: msBody(page, msEv(`"message":{"mid":"m_IMG1","attachments":[{"type":"image","payload":{"url":"https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg?_nc_cat=1&oh=abc"}}]}`)),
			want: provider.Batch{Messages: []provider.InboundMessage{{ProviderID: "m_IMG1", From: msSender, ContentType: "image", OccurredAt: tMS,
				Media: []provider.Media{{URL: "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg?_nc_cat=1&oh=abc"}}}}},
		},
		{
			name: "two files",
			body: msBody(page, msEv(`"message":{"mid":"m_FILES","attachments":[{"type":"file","payload":{"url":"https://cdn.fbsbx.com/a.pdf"}},{"type":"video","payload":{"url":"https://video.xx.fbcdn.net/b.mp4"}}]}`)),
			want: provider.Batch{Messages: []provider.InboundMessage{{ProviderID: "m_FILES", From: msSender, ContentType: "file", OccurredAt: tMS,
				Media: []provider.Media{{URL: "https://cdn.fbsbx.com/a.pdf"}, {URL: "https://video.xx.fbcdn.net/b.mp4"}}}}},
		},
		{
			name: "sticker",
			body: msBody(page, msEv(`"message":{"mid":"m_STK1","sticker_id":369239263222822,"attachments":[{"type":"image","payload":{"url":"https://scontent.xx.fbcdn.net/thumbsup.png","sticker_id":369239263222822}}]}`)),
			want: provider.Batch{Messages: []provider.InboundMessage{{ProviderID: "m_STK1", From: msSender, ContentType: "sticker", OccurredAt: tMS,
				Media: []provider.Media{{URL: "https://scontent.xx.fbcdn.net/thumbsup.png"}}}}},
		},
		{
			name: "shared link",
			body: msBody(page, msEv(`"message":{"mid":"m_LNK1","text":"look","attachments":[{"type":"fallback","payload":{"url":"https://shop.example/item/42","title":"Blue kettle"}}]}`)),
			want: provider.Batch{Messages: []provider.InboundMessage{{ProviderID: "m_LNK1", From: msSender, ContentType: "text", OccurredAt: tMS,
				Text: "look\nBlue kettle\nhttps://shop.example/item/42"}}},
		},
		{
			name: "location",
			body: msBody(page, msEv(`"message":{"mid":"m_LOC1","attachments":[{"title":"Jane's Location","url":"https://l.facebook.com/l.php?u=maps","type":"location","payload":{"coordinates":{"lat":48.8584,"long":2.2945}}}]}`)),
			want: provider.Batch{Messages: []provider.InboundMessage{{ProviderID: "m_LOC1", From: msSender, ContentType: "location", OccurredAt: tMS,
				Text: "Jane's Location\ngeo:48.8584,2.2945"}}},
		},
		{
			name: "postback",
			body: msBody(page, msEv(`"postback":{"title":"Talk to an agent","payload":"AGENT","mid":"m_PB1"}`)),
			want: provider.Batch{Messages: []provider.InboundMessage{{ProviderID: "m_PB1", From: msSender, ContentType: "text", Text: "Talk to an agent", OccurredAt: tMS}}},
		},
		{
			name: "postback without mid",
			body: msBody(page, msEv(`"postback":{"title":"Get Started","payload":"GET_STARTED"}`)),
			want: provider.Batch{Messages: []provider.InboundMessage{{ProviderID: "postback:" + psid + ":1700000000123", From: msSender, ContentType: "text", Text: "Get Started", OccurredAt: tMS}}},
		},
		{
			name: "echo of the page's own message is skipped",
			body: msBody(page, `{"sender":{"id":"`+page+`"},"recipient":{"id":"`+psid+`"},"timestamp":1700000000123,"message":{"is_echo":true,"app_id":1517776481860111,"mid":"m_ECHO","text":"agent reply"}}`),
			want: provider.Batch{},
		},
		{
			name: "delivery",
			body: msBody(page, `{"sender":{"id":"`+psid+`"},"recipient":{"id":"`+page+`"},"timestamp":1700000000123,"delivery":{"mids":["m_OUT1","m_OUT2"],"watermark":1700000000000}}`),
			want: provider.Batch{Statuses: []provider.StatusUpdate{{ProviderID: "m_OUT1", Status: "delivered", At: tMS}, {ProviderID: "m_OUT2", Status: "delivered", At: tMS}}},
		},
		{
			name: "delivery without mids names no message",
			body: msBody(page, `{"sender":{"id":"`+psid+`"},"recipient":{"id":"`+page+`"},"delivery":{"watermark":1700000000000}}`),
			want: provider.Batch{Statuses: []provider.StatusUpdate{{Status: "delivered", At: time.UnixMilli(1700000000000).UTC()}}},
		},
		{
			name: "read is a watermark without a message id",
			body: msBody(page, msEv(`"read":{"watermark":1700000000000}`)),
			want: provider.Batch{Statuses: []provider.StatusUpdate{{Status: "read", At: time.UnixMilli(1700000000000).UTC()}}},
		},
		{
			name: "two messages and a delivery in one POST",
			body: msBody(page,
				msEv(`"message":{"mid":"m_A","text":"first"}`),
				`{"sender":{"id":"`+psid+`"},"recipient":{"id":"`+page+`"},"timestamp":1700000000500,"message":{"mid":"m_B","text":"second"}}`,
				`{"sender":{"id":"`+psid+`"},"recipient":{"id":"`+page+`"},"timestamp":1700000000123,"delivery":{"mids":["m_OUT9"],"watermark":1700000000000}}`),
			want: provider.Batch{
				Messages: []provider.InboundMessage{
					{ProviderID: "m_A", From: msSender, ContentType: "text", Text: "first", OccurredAt: tMS},
					{ProviderID: "m_B", From: msSender, ContentType: "text", Text: "second", OccurredAt: time.UnixMilli(1700000000500).UTC()},
				},
				Statuses: []provider.StatusUpdate{{ProviderID: "m_OUT9", Status: "delivered", At: tMS}},
			},
		},
		{
			name: "another page of the app yields nothing",
			body: msBody("555555555555555", msEv(`"message":{"mid":"m_OTHER","text":"not ours"}`)),
			want: provider.Batch{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := m.Webhook(context.Background(), ch, signed(ch, tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(b, tc.want) {
				got, _ := json.MarshalIndent(b, "", " ")
				want, _ := json.MarshalIndent(tc.want, "", " ")
				t.Fatalf("batch\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestMessengerFixture(t *testing.T) {
	fx := MessengerFixture()
	m := NewMessenger(nil)
	fa := fx.FakeAPI()
	srv := httptest.NewServer(fa.Handler)
	defer srv.Close()
	ch := channelFor(fx, srv.URL)

	b, err := m.Webhook(context.Background(), ch, fx.Inbound(ch, "m_FX1", psid, "hello"))
	if err != nil || len(b.Messages) != 1 {
		t.Fatalf("inbound %+v %v", b, err)
	}
	if in := b.Messages[0]; in.ProviderID != "m_FX1" || in.Text != "hello" || !reflect.DeepEqual(in.From, []provider.Identity{fx.From(psid)}) || in.OccurredAt.IsZero() {
		t.Fatalf("inbound parsed as %+v", in)
	}

	b, err = m.Webhook(context.Background(), ch, fx.Media(ch, "m_FX2", psid))
	if err != nil || len(b.Messages) != 1 || b.Messages[0].ContentType != "image" || len(b.Messages[0].Media) != 1 {
		t.Fatalf("media %+v %v", b, err)
	}
	// The fixture's media URL is served by the fake, so the inbox's fetch works end to end.
	data, ct, err := m.FetchMedia(context.Background(), ch, b.Messages[0].Media[0])
	if err != nil || string(data) != FixtureImage || ct != "image/jpeg" {
		t.Fatalf("fetch %q %s %v", data, ct, err)
	}
	calls := fa.Calls()
	if len(calls) != 1 || calls[0].Path != "/messenger-cdn/m_FX2.jpg" || calls[0].Header.Get("Authorization") != "" || calls[0].Query != "" {
		t.Fatalf("CDN call %+v: the page token must not go to the CDN", calls)
	}

	b, err = m.Webhook(context.Background(), ch, fx.Status(ch, "m_OUT", "delivered"))
	if err != nil || !reflect.DeepEqual(b.Statuses, []provider.StatusUpdate{{ProviderID: "m_OUT", Status: "delivered", At: b.Statuses[0].At}}) || b.Statuses[0].At.IsZero() {
		t.Fatalf("delivered %+v %v", b, err)
	}
	b, err = m.Webhook(context.Background(), ch, fx.Status(ch, "m_OUT", "read"))
	if err != nil || len(b.Statuses) != 1 || b.Statuses[0].Status != "read" || b.Statuses[0].ProviderID != "" {
		t.Fatalf("read %+v %v", b, err)
	}
}

func TestMessengerFetchExpiredURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "URL signature expired", http.StatusForbidden)
	}))
	defer srv.Close()
	_, _, err := NewMessenger(nil).FetchMedia(context.Background(), channelFor(MessengerFixture(), srv.URL), provider.Media{URL: srv.URL + "/x.jpg"})
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("%v", err)
	}
	if _, _, err := NewMessenger(nil).FetchMedia(context.Background(), channelFor(MessengerFixture(), srv.URL), provider.Media{Ref: "1"}); err == nil {
		t.Fatal("media without URL fetched")
	}
}

func msFake(t *testing.T) (*provider.FakeAPI, provider.Channel) {
	t.Helper()
	fx := MessengerFixture()
	fa := fx.FakeAPI()
	srv := httptest.NewServer(fa.Handler)
	t.Cleanup(srv.Close)
	return fa, channelFor(fx, srv.URL)
}

func msOut(text string, atts ...provider.OutAttachment) provider.Outbound {
	return provider.Outbound{
		MessageID:   uuid.New(),
		To:          []provider.Identity{{Kind: "messenger", Value: psid}},
		Text:        text,
		Attachments: atts,
	}
}

func TestMessengerSend(t *testing.T) {
	m := NewMessenger(nil)

	t.Run("text", func(t *testing.T) {
		fa, ch := msFake(t)
		sent, err := m.Send(context.Background(), ch, msOut("We refunded you today."))
		if err != nil {
			t.Fatal(err)
		}
		calls := fa.Calls()
		if len(calls) != 1 {
			t.Fatalf("%d calls", len(calls))
		}
		c := calls[0]
		if c.Method != "POST" || c.Path != "/v21.0/"+FixtureMessengerPageID+"/messages" || c.Query != "access_token="+FixtureMessengerToken ||
			c.Header.Get("Content-Type") != "application/json" || c.Header.Get("Authorization") != "" {
			t.Fatalf("request %s %s?%s %v", c.Method, c.Path, c.Query, c.Header)
		}
		want := map[string]any{"recipient": map[string]any{"id": psid}, "messaging_type": "RESPONSE", "message": map[string]any{"text": "We refunded you today."}}
		if got := decode(t, c.Body); !reflect.DeepEqual(got, want) {
			t.Fatalf("body %v, want %v", got, want)
		}
		if !strings.HasPrefix(sent.ProviderID, "m_") || !strings.HasSuffix(sent.ProviderID, "000001") {
			t.Fatalf("id %q", sent.ProviderID)
		}
	})

	t.Run("text, image by URL, uploaded file", func(t *testing.T) {
		fa, ch := msFake(t)
		sent, err := m.Send(context.Background(), ch, msOut("see attached",
			provider.OutAttachment{Filename: "map.png", ContentType: "image/png", URL: "https://files.example/map.png"},
			provider.OutAttachment{Filename: "guide.pdf", ContentType: "application/pdf", Data: []byte("%PDF guide")}))
		if err != nil {
			t.Fatal(err)
		}
		calls := fa.Calls()
		if len(calls) != 3 {
			t.Fatalf("%d calls", len(calls))
		}
		if got := decode(t, calls[1].Body); !reflect.DeepEqual(got, map[string]any{
			"recipient": map[string]any{"id": psid}, "messaging_type": "RESPONSE",
			"message": map[string]any{"attachment": map[string]any{"type": "image", "payload": map[string]any{"url": "https://files.example/map.png", "is_reusable": false}}},
		}) {
			t.Fatalf("image body %v", got)
		}
		up := calls[2]
		if up.Query != "access_token="+FixtureMessengerToken {
			t.Fatalf("upload query %q", up.Query)
		}
		_, params, _ := mime.ParseMediaType(up.Header.Get("Content-Type"))
		form, err := multipart.NewReader(strings.NewReader(string(up.Body)), params["boundary"]).ReadForm(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := form.File["filedata"][0].Open()
		data, _ := io.ReadAll(f)
		if form.Value["recipient"][0] != `{"id":"`+psid+`"}` || form.Value["message"][0] != `{"attachment":{"type":"file","payload":{"is_reusable":false}}}` ||
			string(data) != "%PDF guide" || form.File["filedata"][0].Header.Get("Content-Type") != "application/pdf" {
			t.Fatalf("upload form %v %q", form.Value, data)
		}
		if !strings.HasSuffix(sent.ProviderID, "000001") {
			t.Fatalf("id %q, want the text message's", sent.ProviderID)
		}
	})

	t.Run("500 is retryable", func(t *testing.T) {
		fa, ch := msFake(t)
		fa.Fail(true)
		_, err := m.Send(context.Background(), ch, msOut("hi"))
		var se *provider.SendError
		if !errors.As(err, &se) || se.Permanent || se.Status != 500 {
			t.Fatalf("%#v", err)
		}
	})

	t.Run("400 is permanent", func(t *testing.T) {
		_, ch := msFake(t)
		_, err := m.Send(context.Background(), ch, msOut(strings.Repeat("é", 2001)))
		var se *provider.SendError
		if !errors.As(err, &se) || !se.Permanent || se.Status != 400 || !strings.Contains(se.Reason, "2000") {
			t.Fatalf("%#v", err)
		}
	})

	t.Run("transport error is retryable and does not leak the token", func(t *testing.T) {
		ch := channelFor(MessengerFixture(), closedServer())
		_, err := m.Send(context.Background(), ch, msOut("hi"))
		var se *provider.SendError
		if !errors.As(err, &se) || se.Permanent || strings.Contains(se.Reason, FixtureMessengerToken) {
			t.Fatalf("%#v", err)
		}
	})

	t.Run("no PSID is permanent", func(t *testing.T) {
		fa, ch := msFake(t)
		out := msOut("hi")
		out.To = []provider.Identity{{Kind: "whatsapp", Value: "16315551234"}}
		if _, err := m.Send(context.Background(), ch, out); !provider.Permanent(err) || len(fa.Calls()) != 0 {
			t.Fatalf("%v", err)
		}
	})
}
