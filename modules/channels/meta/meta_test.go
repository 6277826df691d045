package meta

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

const webhookURL = "https://switchboard.example/hooks/%s/ch_fixture"

func channelFor(fx provider.Fixture, apiBase string) provider.Channel {
	return provider.Channel{
		ID:         uuid.New(),
		TenantID:   uuid.New(),
		Type:       fx.Type,
		PublicID:   "ch_fixture",
		Name:       "fixture " + fx.Type,
		Config:     fx.Config(apiBase),
		WebhookURL: strings.Replace(webhookURL, "%s", fx.Type, 1),
	}
}

// signed builds a POST as Meta delivers it, signed with the fixture's app secret.
func signed(ch provider.Channel, body string) provider.Request {
	return metaRequest(ch, []byte(body))
}

func get(ch provider.Channel, q url.Values) provider.Request {
	return provider.Request{Method: http.MethodGet, URL: ch.WebhookURL + "?" + q.Encode(), Query: q, Header: http.Header{}}
}

// TestHandshake covers the GET verification Meta runs when the webhook URL is saved, for both
// providers.
func TestHandshake(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    provider.Provider
		fx   provider.Fixture
	}{
		{"whatsapp", NewWhatsApp(nil), WhatsAppFixture()},
		{"messenger", NewMessenger(nil), MessengerFixture()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := channelFor(tc.fx, "http://unused.invalid")
			q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {FixtureVerifyToken}, "hub.challenge": {"1158201444"}}
			b, err := tc.p.Webhook(context.Background(), ch, get(ch, q))
			if err != nil {
				t.Fatalf("right token: %v", err)
			}
			if b.Response.Status != 200 || string(b.Response.Body) != "1158201444" || !strings.HasPrefix(b.Response.ContentType, "text/plain") {
				t.Fatalf("right token answered %+v", b.Response)
			}
			if len(b.Messages)+len(b.Statuses)+len(b.Calls) != 0 {
				t.Fatalf("handshake produced events: %+v", b)
			}

			// The query may also be only in the URL.
			r := get(ch, q)
			r.Query = nil
			if b, err := tc.p.Webhook(context.Background(), ch, r); err != nil || string(b.Response.Body) != "1158201444" {
				t.Fatalf("query from URL: %+v %v", b.Response, err)
			}

			bad := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"guess"}, "hub.challenge": {"1158201444"}}
			if _, err := tc.p.Webhook(context.Background(), ch, get(ch, bad)); !errors.Is(err, provider.ErrSignature) {
				t.Fatalf("wrong token: %v, want ErrSignature", err)
			}
			none := url.Values{"hub.mode": {"subscribe"}, "hub.challenge": {"1158201444"}}
			if _, err := tc.p.Webhook(context.Background(), ch, get(ch, none)); !errors.Is(err, provider.ErrSignature) {
				t.Fatalf("no token: %v, want ErrSignature", err)
			}
			if _, err := tc.p.Webhook(context.Background(), ch, get(ch, url.Values{"hub.verify_token": {FixtureVerifyToken}})); !errors.Is(err, provider.ErrPayload) {
				t.Fatalf("no hub.mode/challenge: %v, want ErrPayload", err)
			}
			noToken := ch
			noToken.Config = map[string]string{"app_secret": FixtureAppSecret}
			empty := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {""}, "hub.challenge": {"1"}}
			if _, err := tc.p.Webhook(context.Background(), noToken, get(noToken, empty)); !errors.Is(err, provider.ErrSignature) {
				t.Fatalf("channel without verify_token accepted an empty token: %v", err)
			}
		})
	}
}

// TestSignature covers X-Hub-Signature-256 for both providers: only the exact HMAC of the raw
// body with the app secret passes.
func TestSignature(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    provider.Provider
		fx   provider.Fixture
	}{
		{"whatsapp", NewWhatsApp(nil), WhatsAppFixture()},
		{"messenger", NewMessenger(nil), MessengerFixture()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := channelFor(tc.fx, "http://unused.invalid")
			good := tc.fx.Inbound(ch, "mid.1", "15551234567", "hello")
			if b, err := tc.p.Webhook(context.Background(), ch, good); err != nil || len(b.Messages) != 1 {
				t.Fatalf("valid signature: %v %+v", err, b)
			}
			tampered := good
			tampered.Body = []byte(strings.Replace(string(good.Body), "hello", "hellO", 1))
			upper := good
			upper.Header = good.Header.Clone()
			upper.Header.Set(SignatureHeader, "sha256="+strings.ToUpper(strings.TrimPrefix(good.Header.Get(SignatureHeader), "sha256=")))
			if _, err := tc.p.Webhook(context.Background(), ch, upper); err != nil {
				t.Fatalf("upper-case hex digest refused: %v", err)
			}
			for name, r := range map[string]provider.Request{
				"missing":   tc.fx.Forge(good, false),
				"forged":    tc.fx.Forge(good, true),
				"tampered":  tampered,
				"sha1":      withSig(good, "sha1="+strings.TrimPrefix(good.Header.Get(SignatureHeader), "sha256=")),
				"not hex":   withSig(good, "sha256=zz"),
				"bare hex":  withSig(good, strings.TrimPrefix(good.Header.Get(SignatureHeader), "sha256=")),
				"truncated": withSig(good, good.Header.Get(SignatureHeader)[:20]),
			} {
				if _, err := tc.p.Webhook(context.Background(), ch, r); !errors.Is(err, provider.ErrSignature) {
					t.Errorf("%s: %v, want ErrSignature", name, err)
				}
			}
			noSecret := ch
			noSecret.Config = map[string]string{}
			for k, v := range ch.Config {
				noSecret.Config[k] = v
			}
			delete(noSecret.Config, "app_secret")
			if _, err := tc.p.Webhook(context.Background(), noSecret, withSig(good, Sign("", good.Body))); !errors.Is(err, provider.ErrSignature) {
				t.Errorf("channel without app_secret accepted an empty-key signature: %v", err)
			}
			if _, err := tc.p.Webhook(context.Background(), ch, signed(ch, `{"object":`)); !errors.Is(err, provider.ErrPayload) {
				t.Errorf("truncated JSON: %v, want ErrPayload", err)
			}
			// A signed delivery for another Meta product is acknowledged with nothing in it.
			if b, err := tc.p.Webhook(context.Background(), ch, signed(ch, `{"object":"instagram","entry":[]}`)); err != nil || len(b.Messages)+len(b.Statuses) != 0 {
				t.Errorf("other object: %+v %v", b, err)
			}
		})
	}
}

func withSig(r provider.Request, sig string) provider.Request {
	r.Header = r.Header.Clone()
	r.Header.Set(SignatureHeader, sig)
	return r
}

func TestValidate(t *testing.T) {
	wa, ms := NewWhatsApp(nil), NewMessenger(nil)
	for _, tc := range []struct {
		name string
		p    provider.Provider
		cfg  map[string]string
		ok   bool
	}{
		{"wa fixture", wa, WhatsAppFixture().Config("http://127.0.0.1:1"), true},
		{"wa display number", wa, map[string]string{"phone_number_id": "+1 555 0100"}, false},
		{"wa bad base", wa, map[string]string{"api_base": "graph.facebook.com"}, false},
		{"wa ftp base", wa, map[string]string{"api_base": "ftp://graph.facebook.com"}, false},
		{"wa version", wa, map[string]string{"api_version": "v22.0"}, true},
		{"wa bad version", wa, map[string]string{"api_version": "22"}, false},
		{"ms fixture", ms, MessengerFixture().Config("https://graph.facebook.com"), true},
		{"ms vanity page", ms, map[string]string{"page_id": "acme"}, false},
		{"ms bad version", ms, map[string]string{"api_version": "v21"}, false},
	} {
		if err := tc.p.Validate(tc.cfg); (err == nil) != tc.ok {
			t.Errorf("%s: Validate = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestSpec(t *testing.T) {
	wa := NewWhatsApp(nil).Spec()
	if wa.Type != "whatsapp" || wa.Defaults["api_base"] != "https://graph.facebook.com" || wa.Defaults["api_version"] != "v21.0" ||
		strings.Join(wa.Required, ",") != "phone_number_id,access_token,app_secret,verify_token" ||
		strings.Join(wa.Secret, ",") != "access_token,app_secret,verify_token" ||
		strings.Join(wa.Identities, ",") != "whatsapp,phone" {
		t.Errorf("whatsapp spec %+v", wa)
	}
	ms := NewMessenger(nil).Spec()
	if ms.Type != "messenger" || ms.Defaults["api_base"] != "https://graph.facebook.com" ||
		strings.Join(ms.Required, ",") != "page_id,page_access_token,app_secret,verify_token" ||
		strings.Join(ms.Secret, ",") != "page_access_token,app_secret,verify_token" ||
		strings.Join(ms.Identities, ",") != "messenger" {
		t.Errorf("messenger spec %+v", ms)
	}
	for _, fx := range Fixtures() {
		cfg := fx.Config("http://x")
		var spec provider.Spec
		if fx.Type == TypeWhatsApp {
			spec = wa
		} else {
			spec = ms
		}
		for _, k := range spec.Required {
			if cfg[k] == "" {
				t.Errorf("%s fixture config lacks %s", fx.Type, k)
			}
		}
	}
}

func TestSendErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		permanent bool
		reason    string
	}{
		{"500", 500, `{"error":{"message":"An unexpected error has occurred.","code":2,"is_transient":true}}`, false, "An unexpected error has occurred. (#2)"},
		{"bad param", 400, `{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100}}`, true, "(#100) Invalid parameter (#100)"},
		{"throughput", 400, `{"error":{"message":"(#130429) Rate limit hit","code":130429,"error_data":{"details":"Cloud API message throughput has been reached."}}}`, false, "(#130429) Rate limit hit (#130429): Cloud API message throughput has been reached."},
		{"transient flag", 400, `{"error":{"message":"Temporary","code":9999,"is_transient":true}}`, false, "Temporary (#9999)"},
		{"429", 429, `{}`, false, "{}"},
		{"not json", 403, `Forbidden`, true, "Forbidden"},
	} {
		se := sendError(tc.status, []byte(tc.body))
		if se.Permanent != tc.permanent || se.Status != tc.status || se.Reason != tc.reason {
			t.Errorf("%s: %+v, want permanent=%v reason=%q", tc.name, se, tc.permanent, tc.reason)
		}
	}
}

func TestRedact(t *testing.T) {
	got := redact(`Post "http://127.0.0.1:1/v21.0/1/messages?access_token=EAAsecret&x=1": dial tcp: refused`)
	if strings.Contains(got, "EAAsecret") || !strings.Contains(got, "access_token=REDACTED&x=1") {
		t.Errorf("redact: %s", got)
	}
}

// closedServer returns the URL of a server that is no longer listening: a transport error.
func closedServer() string {
	s := httptest.NewServer(http.NotFoundHandler())
	s.Close()
	return s.URL
}

// TestFixturesContract walks both fixtures the way the inbox's integration tests do: every
// delivery they build verifies, each forged variant is refused, and a reply reaches the fake,
// which can be made to fail.
func TestFixturesContract(t *testing.T) {
	providers := map[string]provider.Provider{TypeWhatsApp: NewWhatsApp(nil), TypeMessenger: NewMessenger(nil)}
	for _, fx := range Fixtures() {
		t.Run(fx.Type, func(t *testing.T) {
			p := providers[fx.Type]
			fa := fx.FakeAPI()
			srv := httptest.NewServer(fa.Handler)
			defer srv.Close()
			ch := channelFor(fx, srv.URL)
			if err := p.Validate(ch.Config); err != nil {
				t.Fatalf("fixture config invalid: %v", err)
			}
			if err := p.Setup(context.Background(), ch); err != nil {
				t.Fatal(err)
			}
			from := "16315551234"
			reqs := map[string]provider.Request{
				"inbound": fx.Inbound(ch, "id-1", from, "hello"),
				"media":   fx.Media(ch, "id-2", from),
				"status":  fx.Status(ch, "out-1", provider.StatusDelivered),
			}
			for name, r := range reqs {
				if r.URL != ch.WebhookURL || r.Method != http.MethodPost {
					t.Fatalf("%s: %s %s", name, r.Method, r.URL)
				}
				if _, err := p.Webhook(context.Background(), ch, r); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, forged := range []bool{false, true} {
					if _, err := p.Webhook(context.Background(), ch, fx.Forge(r, forged)); !errors.Is(err, provider.ErrSignature) {
						t.Fatalf("%s forged=%v: %v", name, forged, err)
					}
				}
				if r.Header.Get(SignatureHeader) == "" {
					t.Fatalf("%s: Forge changed the original request", name)
				}
			}
			b, _ := p.Webhook(context.Background(), ch, reqs["inbound"])
			if len(b.Messages) != 1 || b.Messages[0].From[0] != fx.From(from) {
				t.Fatalf("inbound from %+v, want %+v", b.Messages, fx.From(from))
			}
			out := provider.Outbound{MessageID: uuid.New(), To: []provider.Identity{fx.From(from)}, Text: "reply"}
			sent, err := p.Send(context.Background(), ch, out)
			if err != nil || sent.ProviderID == "" || len(fa.Calls()) != 1 {
				t.Fatalf("send: %+v %v %d calls", sent, err, len(fa.Calls()))
			}
			fa.Fail(true)
			if _, err := p.Send(context.Background(), ch, out); err == nil || provider.Permanent(err) {
				t.Fatalf("send to failing fake: %v", err)
			}
		})
	}
}
