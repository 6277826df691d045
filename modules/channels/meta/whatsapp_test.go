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

// waBody wraps change values in the Cloud API envelope; each value is a JSON object literal
// without its metadata, which is filled for phone number id pnid.
func waBody(pnid string, values ...string) string {
	var changes []string
	for _, v := range values {
		changes = append(changes, `{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"`+pnid+`"},`+strings.TrimPrefix(v, "{")+`}`)
	}
	return `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[` + strings.Join(changes, ",") + `]}]}`
}

const waContact = `"contacts":[{"profile":{"name":"Kerry Fisher"},"wa_id":"16315551234"}]`

func waFrom() []provider.Identity {
	return []provider.Identity{{Kind: "whatsapp", Value: "16315551234"}, {Kind: "phone", Value: "+16315551234"}}
}

var t0 = time.Unix(1700000000, 0).UTC()

func TestWhatsAppWebhook(t *testing.T) {
	wa := NewWhatsApp(nil)
	ch := channelFor(WhatsAppFixture(), "http://unused.invalid")
	own := FixtureWhatsAppPhoneNumberID
	msg := func(in provider.InboundMessage) provider.InboundMessage {
		in.From = waFrom()
		in.Name = "Kerry Fisher"
		in.OccurredAt = t0
		return in
	}
	for _, tc := range []struct {
		name string
		body string
		want provider.Batch
	}{
		{
			name: "text",
			body: waBody(own, `{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.TEXT1","timestamp":"1700000000","type":"text","text":{"body":"你好, is my order shipped?"}}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.TEXT1", ContentType: "text", Text: "你好, is my order shipped?"})}},
		},
		{
			name: "image",
			body: waBody(own, `{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.IMG1","timestamp":"1700000000","type":"image","image":{"caption":"the receipt","mime_type":"image/jpeg","sha256":"IQ8Zs0T3Xnj2vcEx8tBIDYdsWkK4K2AlqGXTpBH9zp8=","id":"1479537139650973"}}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.IMG1", ContentType: "image", Text: "the receipt",
				Media: []provider.Media{{Ref: "1479537139650973", ContentType: "image/jpeg", Caption: "the receipt"}}})}},
		},
		{
			name: "document",
			body: waBody(own, `{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.DOC1","timestamp":"1700000000","type":"document","document":{"filename":"invoice.pdf","mime_type":"application/pdf","sha256":"x","id":"2001"}}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.DOC1", ContentType: "file",
				Media: []provider.Media{{Ref: "2001", ContentType: "application/pdf", Filename: "invoice.pdf"}}})}},
		},
		{
			name: "voice note",
			body: waBody(own, `{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.AUD1","timestamp":"1700000000","type":"audio","audio":{"mime_type":"audio/ogg; codecs=opus","sha256":"x","id":"2002","voice":true}}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.AUD1", ContentType: "audio",
				Media: []provider.Media{{Ref: "2002", ContentType: "audio/ogg; codecs=opus"}}})}},
		},
		{
			name: "sticker",
			body: waBody(own, `{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.STK1","timestamp":"1700000000","type":"sticker","sticker":{"mime_type":"image/webp","sha256":"x","id":"2003","animated":false}}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.STK1", ContentType: "sticker",
				Media: []provider.Media{{Ref: "2003", ContentType: "image/webp"}}})}},
		},
		{
			name: "video",
			body: waBody(own, `{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.VID1","timestamp":"1700000000","type":"video","video":{"caption":"unboxing","mime_type":"video/mp4","sha256":"x","id":"2004"}}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.VID1", ContentType: "video", Text: "unboxing",
				Media: []provider.Media{{Ref: "2004", ContentType: "video/mp4", Caption: "unboxing"}}})}},
		},
		{
			name: "location",
			body: waBody(own, `{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.LOC1","timestamp":"1700000000","type":"location","location":{"latitude":31.2304,"longitude":121.4737,"name":"People's Square","address":"Huangpu, Shanghai"}}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.LOC1", ContentType: "location",
				Text: "People's Square\nHuangpu, Shanghai\ngeo:31.2304,121.4737"})}},
		},
		{
			name: "interactive button reply",
			body: waBody(own, `{`+waContact+`,"messages":[{"context":{"from":"15550783881","id":"wamid.OUT"},"from":"16315551234","id":"wamid.INT1","timestamp":"1700000000","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"yes","title":"Yes, refund me"}}}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.INT1", ContentType: "text", Text: "Yes, refund me"})}},
		},
		{
			name: "interactive list reply",
			body: waBody(own, `{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.INT2","timestamp":"1700000000","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"r2","title":"Billing","description":"Invoices and payments"}}}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.INT2", ContentType: "text", Text: "Billing"})}},
		},
		{
			name: "template quick reply button",
			body: waBody(own, `{`+waContact+`,"messages":[{"context":{"from":"15550783881","id":"wamid.TPL"},"from":"16315551234","id":"wamid.BTN1","timestamp":"1700000000","type":"button","button":{"text":"Stop promotions","payload":"STOP"}}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.BTN1", ContentType: "text", Text: "Stop promotions"})}},
		},
		{
			name: "reaction",
			body: waBody(own, `{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.REA1","timestamp":"1700000000","type":"reaction","reaction":{"message_id":"wamid.OUT","emoji":"👍"}}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.REA1", ContentType: "text", Text: "👍"})}},
		},
		{
			name: "reaction removed",
			body: waBody(own, `{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.REA2","timestamp":"1700000000","type":"reaction","reaction":{"message_id":"wamid.OUT","emoji":""}}]}`),
			want: provider.Batch{},
		},
		{
			name: "unsupported",
			body: waBody(own, `{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.UNS1","timestamp":"1700000000","type":"unsupported","errors":[{"code":131051,"title":"Message type unknown","message":"Message type unknown","error_data":{"details":"Message type is currently not supported."}}]}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.UNS1", ContentType: "text",
				Text: "[unsupported WhatsApp message: unsupported: Message type unknown (#131051): Message type is currently not supported.]"})}},
		},
		{
			name: "shared contact card",
			body: waBody(own, `{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.VCF1","timestamp":"1700000000","type":"contacts","contacts":[{"name":{"formatted_name":"John Smith","first_name":"John"},"phones":[{"phone":"+1 (940) 555-1234","type":"HOME","wa_id":"19405551234"}]}]}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.VCF1", ContentType: "text", Text: "John Smith +1 (940) 555-1234"})}},
		},
		{
			name: "number change notice",
			body: waBody(own, `{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.SYS1","timestamp":"1700000000","type":"system","system":{"body":"Kerry changed from 16315551234 to 16315559999","wa_id":"16315559999","type":"user_changed_number"}}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.SYS1", ContentType: "text", Text: "Kerry changed from 16315551234 to 16315559999"})}},
		},
		{
			name: "status delivered",
			body: waBody(own, `{"statuses":[{"id":"wamid.OUT1","status":"delivered","timestamp":"1700000000","recipient_id":"16315551234","conversation":{"id":"c1","origin":{"type":"service"}},"pricing":{"billable":true,"pricing_model":"CBP","category":"service"}}]}`),
			want: provider.Batch{Statuses: []provider.StatusUpdate{{ProviderID: "wamid.OUT1", Status: "delivered", At: t0}}},
		},
		{
			name: "status failed",
			body: waBody(own, `{"statuses":[{"id":"wamid.OUT2","status":"failed","timestamp":"1700000000","recipient_id":"16315551234","errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message","error_data":{"details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]}]}`),
			want: provider.Batch{Statuses: []provider.StatusUpdate{{ProviderID: "wamid.OUT2", Status: "failed", At: t0,
				Reason: "Re-engagement message (#131047): Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}},
		},
		{
			name: "status deleted is not a delivery state",
			body: waBody(own, `{"statuses":[{"id":"wamid.OUT3","status":"deleted","timestamp":"1700000000","recipient_id":"16315551234"}]}`),
			want: provider.Batch{},
		},
		{
			name: "two messages and a status in one delivery",
			body: waBody(own,
				`{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.A","timestamp":"1700000000","type":"text","text":{"body":"first"}},{"from":"16315551234","id":"wamid.B","timestamp":"1700000005","type":"text","text":{"body":"second"}}]}`,
				`{"statuses":[{"id":"wamid.OUT4","status":"read","timestamp":"1700000003","recipient_id":"16315551234"}]}`),
			want: provider.Batch{
				Messages: []provider.InboundMessage{
					msg(provider.InboundMessage{ProviderID: "wamid.A", ContentType: "text", Text: "first"}),
					{ProviderID: "wamid.B", From: waFrom(), Name: "Kerry Fisher", ContentType: "text", Text: "second", OccurredAt: t0.Add(5 * time.Second)},
				},
				Statuses: []provider.StatusUpdate{{ProviderID: "wamid.OUT4", Status: "read", At: t0.Add(3 * time.Second)}},
			},
		},
		{
			name: "another phone number of the account yields nothing",
			body: waBody("999999999999999",
				`{`+waContact+`,"messages":[{"from":"16315551234","id":"wamid.OTHER","timestamp":"1700000000","type":"text","text":{"body":"not for us"}}]}`,
				`{"statuses":[{"id":"wamid.OTHEROUT","status":"read","timestamp":"1700000000","recipient_id":"16315551234"}]}`),
			want: provider.Batch{},
		},
		{
			name: "mixed numbers keep only ours",
			body: `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[` +
				`{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"999"},` + waContact + `,"messages":[{"from":"16315551234","id":"wamid.THEIRS","timestamp":"1700000000","type":"text","text":{"body":"theirs"}}]}},` +
				`{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"` + own + `"},` + waContact + `,"messages":[{"from":"16315551234","id":"wamid.OURS","timestamp":"1700000000","type":"text","text":{"body":"ours"}}]}}]}]}`,
			want: provider.Batch{Messages: []provider.InboundMessage{msg(provider.InboundMessage{ProviderID: "wamid.OURS", ContentType: "text", Text: "ours"})}},
		},
		{
			name: "other webhook fields are skipped",
			body: `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"message_template_status_update","value":{"event":"APPROVED","message_template_id":1}}]}]}`,
			want: provider.Batch{},
		},
		{
			name: "sender without a contacts entry has no name",
			body: waBody(own, `{"messages":[{"from":"4915112345678","id":"wamid.NONAME","timestamp":1700000000,"type":"text","text":{"body":"hallo"}}]}`),
			want: provider.Batch{Messages: []provider.InboundMessage{{ProviderID: "wamid.NONAME", ContentType: "text", Text: "hallo", OccurredAt: t0,
				From: []provider.Identity{{Kind: "whatsapp", Value: "4915112345678"}, {Kind: "phone", Value: "+4915112345678"}}}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := wa.Webhook(context.Background(), ch, signed(ch, tc.body))
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

	t.Run("bad timestamp is unreadable", func(t *testing.T) {
		body := waBody(own, `{"messages":[{"from":"1","id":"wamid.X","timestamp":"yesterday","type":"text","text":{"body":"x"}}]}`)
		if _, err := wa.Webhook(context.Background(), ch, signed(ch, body)); !errors.Is(err, provider.ErrPayload) {
			t.Fatalf("%v, want ErrPayload", err)
		}
	})
}

// TestWhatsAppFixture checks that the exported fixture's deliveries parse into what it promises.
func TestWhatsAppFixture(t *testing.T) {
	fx := WhatsAppFixture()
	wa := NewWhatsApp(nil)
	ch := channelFor(fx, "http://unused.invalid")
	before := time.Now().Add(-time.Second)

	b, err := wa.Webhook(context.Background(), ch, fx.Inbound(ch, "wamid.FX1", "+1 (631) 555-1234", "hello"))
	if err != nil || len(b.Messages) != 1 {
		t.Fatalf("inbound: %+v %v", b, err)
	}
	m := b.Messages[0]
	if m.ProviderID != "wamid.FX1" || m.Text != "hello" || m.ContentType != "text" || m.From[0] != fx.From("+1 (631) 555-1234") ||
		m.From[1] != (provider.Identity{Kind: "phone", Value: "+16315551234"}) || m.Name != "Fixture Customer" || m.OccurredAt.Before(before.Truncate(time.Second)) {
		t.Fatalf("inbound parsed as %+v", m)
	}
	if b.Response.Status != 0 && b.Response.Status != 200 {
		t.Fatalf("response %+v", b.Response)
	}

	b, err = wa.Webhook(context.Background(), ch, fx.Media(ch, "wamid.FX2", "16315551234"))
	if err != nil || len(b.Messages) != 1 || b.Messages[0].ContentType != "image" || len(b.Messages[0].Media) != 1 || b.Messages[0].Media[0].Ref == "" {
		t.Fatalf("media: %+v %v", b, err)
	}

	for _, st := range []string{"sent", "delivered", "read", "failed"} {
		b, err = wa.Webhook(context.Background(), ch, fx.Status(ch, "wamid.OUT", st))
		if err != nil || len(b.Statuses) != 1 || b.Statuses[0].ProviderID != "wamid.OUT" || b.Statuses[0].Status != st {
			t.Fatalf("status %s: %+v %v", st, b, err)
		}
		if (st == "failed") != (b.Statuses[0].Reason != "") {
			t.Fatalf("status %s reason %q", st, b.Statuses[0].Reason)
		}
	}
}

func waFake(t *testing.T) (*provider.FakeAPI, provider.Channel) {
	t.Helper()
	fx := WhatsAppFixture()
	fa := fx.FakeAPI()
	srv := httptest.NewServer(fa.Handler)
	t.Cleanup(srv.Close)
	return fa, channelFor(fx, srv.URL)
}

func waOut(text string, atts ...provider.OutAttachment) provider.Outbound {
	return provider.Outbound{
		MessageID:      uuid.New(),
		ConversationID: uuid.New(),
		To:             []provider.Identity{{Kind: "whatsapp", Value: "16315551234"}, {Kind: "phone", Value: "+16315551234"}},
		Text:           text,
		Attachments:    atts,
	}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return m
}

func TestWhatsAppSend(t *testing.T) {
	wa := NewWhatsApp(nil)

	t.Run("text", func(t *testing.T) {
		fa, ch := waFake(t)
		sent, err := wa.Send(context.Background(), ch, waOut("Your parcel left the warehouse 📦"))
		if err != nil {
			t.Fatal(err)
		}
		calls := fa.Calls()
		if len(calls) != 1 {
			t.Fatalf("%d calls", len(calls))
		}
		c := calls[0]
		if c.Method != "POST" || c.Path != "/v21.0/"+FixtureWhatsAppPhoneNumberID+"/messages" || c.Header.Get("Authorization") != "Bearer "+FixtureWhatsAppToken ||
			c.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("request %s %s %v", c.Method, c.Path, c.Header)
		}
		want := map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16315551234", "type": "text",
			"text": map[string]any{"body": "Your parcel left the warehouse 📦", "preview_url": false}}
		if got := decode(t, c.Body); !reflect.DeepEqual(got, want) {
			t.Fatalf("body %v, want %v", got, want)
		}
		if sent.ProviderID != "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI000001" {
			t.Fatalf("provider id %q", sent.ProviderID)
		}
	})

	t.Run("phone identity and pinned version", func(t *testing.T) {
		fa, ch := waFake(t)
		ch.Config["api_version"] = "v23.0"
		out := waOut("hi")
		out.To = []provider.Identity{{Kind: "email", Value: "k@example.com"}, {Kind: "phone", Value: "+49 151 1234 5678"}}
		if _, err := wa.Send(context.Background(), ch, out); err != nil {
			t.Fatal(err)
		}
		c := fa.Calls()[0]
		if c.Path != "/v23.0/"+FixtureWhatsAppPhoneNumberID+"/messages" || decode(t, c.Body)["to"] != "4915112345678" {
			t.Fatalf("%s %s", c.Path, c.Body)
		}
	})

	t.Run("image by link carries the text as caption", func(t *testing.T) {
		fa, ch := waFake(t)
		sent, err := wa.Send(context.Background(), ch, waOut("here is the label", provider.OutAttachment{Filename: "label.png", ContentType: "image/png", URL: "https://files.example/label.png"}))
		if err != nil {
			t.Fatal(err)
		}
		calls := fa.Calls()
		if len(calls) != 1 {
			t.Fatalf("%d calls", len(calls))
		}
		want := map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16315551234", "type": "image",
			"image": map[string]any{"link": "https://files.example/label.png", "caption": "here is the label"}}
		if got := decode(t, calls[0].Body); !reflect.DeepEqual(got, want) {
			t.Fatalf("body %v, want %v", got, want)
		}
		if !strings.HasPrefix(sent.ProviderID, "wamid.") {
			t.Fatalf("id %q", sent.ProviderID)
		}
	})

	t.Run("text then audio and an uploaded document", func(t *testing.T) {
		fa, ch := waFake(t)
		sent, err := wa.Send(context.Background(), ch, waOut("two files",
			provider.OutAttachment{Filename: "hello.mp3", ContentType: "audio/mpeg", URL: "https://files.example/hello.mp3"},
			provider.OutAttachment{Filename: "terms.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4 terms")}))
		if err != nil {
			t.Fatal(err)
		}
		calls := fa.Calls()
		if len(calls) != 4 {
			t.Fatalf("%d calls, want upload + 3 messages", len(calls))
		}
		up := calls[0]
		if up.Path != "/v21.0/"+FixtureWhatsAppPhoneNumberID+"/media" || up.Header.Get("Authorization") != "Bearer "+FixtureWhatsAppToken {
			t.Fatalf("upload %s %v", up.Path, up.Header)
		}
		_, params, _ := mime.ParseMediaType(up.Header.Get("Content-Type"))
		form, err := multipart.NewReader(strings.NewReader(string(up.Body)), params["boundary"]).ReadForm(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := form.File["file"][0].Open()
		data, _ := io.ReadAll(f)
		if form.Value["messaging_product"][0] != "whatsapp" || form.Value["type"][0] != "application/pdf" || string(data) != "%PDF-1.4 terms" ||
			form.File["file"][0].Filename != "terms.pdf" {
			t.Fatalf("upload form %v %q", form.Value, data)
		}
		bodies := []map[string]any{decode(t, calls[1].Body), decode(t, calls[2].Body), decode(t, calls[3].Body)}
		if bodies[0]["type"] != "text" || bodies[0]["text"].(map[string]any)["body"] != "two files" {
			t.Fatalf("first %v", bodies[0])
		}
		if bodies[1]["type"] != "audio" || !reflect.DeepEqual(bodies[1]["audio"], map[string]any{"link": "https://files.example/hello.mp3"}) {
			t.Fatalf("second %v", bodies[1])
		}
		if bodies[2]["type"] != "document" || !reflect.DeepEqual(bodies[2]["document"], map[string]any{"id": "4490709327384034", "filename": "terms.pdf"}) {
			t.Fatalf("third %v", bodies[2])
		}
		if sent.ProviderID != "wamid.HBgLMTYzMTU1NTEyMzQVAgARGBI000002" {
			t.Fatalf("id %q, want the text message's", sent.ProviderID)
		}
	})

	t.Run("500 is retryable", func(t *testing.T) {
		fa, ch := waFake(t)
		fa.Fail(true)
		_, err := wa.Send(context.Background(), ch, waOut("hi"))
		var se *provider.SendError
		if !errors.As(err, &se) || se.Permanent || se.Status != 500 {
			t.Fatalf("%#v", err)
		}
		fa.Fail(false)
		if _, err := wa.Send(context.Background(), ch, waOut("hi")); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
	})

	t.Run("400 is permanent", func(t *testing.T) {
		_, ch := waFake(t)
		_, err := wa.Send(context.Background(), ch, waOut(strings.Repeat("x", 4097)))
		var se *provider.SendError
		if !errors.As(err, &se) || !se.Permanent || se.Status != 400 || !strings.Contains(se.Reason, "4096") {
			t.Fatalf("%#v", err)
		}
	})

	t.Run("wrong token is permanent", func(t *testing.T) {
		_, ch := waFake(t)
		ch.Config["access_token"] = "expired"
		_, err := wa.Send(context.Background(), ch, waOut("hi"))
		if !provider.Permanent(err) || !strings.Contains(err.Error(), "#190") {
			t.Fatalf("%v", err)
		}
	})

	t.Run("throughput limit answered 400 is retryable", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			graphErr(w, http.StatusBadRequest, 130429, false, "(#130429) Rate limit hit")
		}))
		defer srv.Close()
		ch := channelFor(WhatsAppFixture(), srv.URL)
		_, err := wa.Send(context.Background(), ch, waOut("hi"))
		var se *provider.SendError
		if !errors.As(err, &se) || se.Permanent || se.Status != 400 {
			t.Fatalf("%#v", err)
		}
	})

	t.Run("transport error is retryable", func(t *testing.T) {
		ch := channelFor(WhatsAppFixture(), closedServer())
		_, err := wa.Send(context.Background(), ch, waOut("hi"))
		var se *provider.SendError
		if !errors.As(err, &se) || se.Permanent || se.Status != 0 {
			t.Fatalf("%#v", err)
		}
	})

	t.Run("no WhatsApp identity is permanent without a call", func(t *testing.T) {
		fa, ch := waFake(t)
		out := waOut("hi")
		out.To = []provider.Identity{{Kind: "email", Value: "k@example.com"}}
		if _, err := wa.Send(context.Background(), ch, out); !provider.Permanent(err) {
			t.Fatalf("%v", err)
		}
		if n := len(fa.Calls()); n != 0 {
			t.Fatalf("%d calls", n)
		}
	})
}

func TestWhatsAppFetchMedia(t *testing.T) {
	wa := NewWhatsApp(nil)
	fa, ch := waFake(t)
	data, ct, err := wa.FetchMedia(context.Background(), ch, provider.Media{Ref: "1479537139650973", ContentType: "image/jpeg"})
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != FixtureImage || ct != "image/jpeg" {
		t.Fatalf("%q %s", data, ct)
	}
	calls := fa.Calls()
	if len(calls) != 2 || calls[0].Method != "GET" || calls[0].Path != "/v21.0/1479537139650973" || calls[1].Path != "/whatsapp-media/1479537139650973" {
		t.Fatalf("calls %+v", calls)
	}
	for _, c := range calls {
		if c.Header.Get("Authorization") != "Bearer "+FixtureWhatsAppToken {
			t.Fatalf("%s without the bearer token", c.Path)
		}
	}

	t.Run("digest mismatch", func(t *testing.T) {
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/bytes" {
				_, _ = io.WriteString(w, "truncated")
				return
			}
			writeJSON(w, map[string]any{"url": srv.URL + "/bytes", "mime_type": "image/jpeg", "sha256": strings.Repeat("ab", 32), "file_size": "9", "id": "1"})
		}))
		defer srv.Close()
		if _, _, err := wa.FetchMedia(context.Background(), channelFor(WhatsAppFixture(), srv.URL), provider.Media{Ref: "1"}); err == nil || !strings.Contains(err.Error(), "sha256") {
			t.Fatalf("%v", err)
		}
	})

	t.Run("expired media id", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			graphErr(w, http.StatusBadRequest, 100, false, "Unsupported get request. Object with ID '1' does not exist")
		}))
		defer srv.Close()
		if _, _, err := wa.FetchMedia(context.Background(), channelFor(WhatsAppFixture(), srv.URL), provider.Media{Ref: "1"}); err == nil {
			t.Fatal("no error")
		}
	})

	t.Run("fake fails", func(t *testing.T) {
		fa.Fail(true)
		defer fa.Fail(false)
		if _, _, err := wa.FetchMedia(context.Background(), ch, provider.Media{Ref: "1"}); err == nil {
			t.Fatal("no error")
		}
	})
}
