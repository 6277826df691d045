package voice

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

const (
	testSecret  = "voice-test-secret-0123456789"
	testToken   = "fedcba9876543210fedcba9876543210"
	testAccount = "ACfedcba9876543210fedcba9876543210"
	hookURL     = "https://switchboard.example/hooks/voice/ch_voice?tenant=acme"
)

var testNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func testChannel() provider.Channel {
	return provider.Channel{
		ID: uuid.New(), TenantID: uuid.New(), Type: Type, PublicID: "ch_voice",
		Config:     map[string]string{KeySecret: testSecret, KeyAuthToken: testToken, KeyAccountSID: testAccount},
		WebhookURL: hookURL,
	}
}

func newVoice() *Voice { return New(nil, func() time.Time { return testNow }) }

// TestTwilioSignaturePublishedExamples checks the algorithm against the examples Twilio publishes
// for its request validators (auth token 12345, URL https://mycompany.com/myapp.php?foo=1&bar=2,
// POST params CallSid, Caller, Digits, From, To), in github.com/TwilioDevEd/api-snippets,
// security/signature_validation/: signature_validation.2.x.js gives RSOYDt4T1cUTdK1PDd93/VVr8B8=
// for caller +14158675309; signature_validation.3.x.js and signature_validation.5.x.php give
// GvWf1cFY/Q7PnoempGyD5oXAezc= for caller +14158675310.
func TestTwilioSignaturePublishedExamples(t *testing.T) {
	for _, tt := range []struct{ caller, want string }{
		{"+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{"+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="},
	} {
		params := url.Values{
			"CallSid": {"CA1234567890ABCDE"},
			"Caller":  {tt.caller},
			"Digits":  {"1234"},
			"From":    {tt.caller},
			"To":      {"+18005551212"},
		}
		const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
		if got := TwilioSignature("12345", u, params); got != tt.want {
			t.Errorf("TwilioSignature(caller %s) = %s, want %s", tt.caller, got, tt.want)
		}
		if !ValidTwilioSignature("12345", u, params, tt.want) {
			t.Errorf("ValidTwilioSignature rejects Twilio's own example for caller %s", tt.caller)
		}
		if ValidTwilioSignature("54321", u, params, tt.want) {
			t.Errorf("ValidTwilioSignature accepts the example under another token")
		}
	}
}

func TestValidTwilioSignatureVariants(t *testing.T) {
	params := url.Values{"CallSid": {"CA1"}, "From": {"+14158675309"}}
	signedWithout := TwilioSignature(testToken, "https://sb.example/hooks/voice/x", params)
	signedWith := TwilioSignature(testToken, "https://sb.example:443/hooks/voice/x", params)
	tests := []struct {
		name, url, sig string
		ok             bool
	}{
		{"as signed", "https://sb.example/hooks/voice/x", signedWithout, true},
		{"we see :443, Twilio signed without", "https://sb.example:443/hooks/voice/x", signedWithout, true},
		{"we see no port, Twilio signed :443", "https://sb.example/hooks/voice/x", signedWith, true},
		{"other path", "https://sb.example/hooks/voice/y", signedWithout, false},
		{"other query", "https://sb.example/hooks/voice/x?a=1", signedWithout, false},
		{"empty", "https://sb.example/hooks/voice/x", "", false},
		{"not base64", "https://sb.example/hooks/voice/x", "%%%", false},
	}
	for _, tt := range tests {
		if got := ValidTwilioSignature(testToken, tt.url, params, tt.sig); got != tt.ok {
			t.Errorf("%s: ValidTwilioSignature = %v", tt.name, got)
		}
	}
	// A parameter Twilio sends twice is signed with its values sorted.
	multi := url.Values{"B": {"2", "1"}, "A": {"x"}}
	if TwilioSignature("k", "u", multi) != TwilioSignature("k", "u", url.Values{"A": {"x"}, "B": {"1", "2"}}) {
		t.Error("repeated values are not sorted")
	}
}

// twilioRequest is a webhook as Twilio posts it: form encoded, signed over the full URL.
func twilioRequest(params url.Values) provider.Request {
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("I-Twilio-Idempotency-Token", "a5b1e37b-0000-0000-0000-000000000000")
	h.Set(TwilioSignatureHeader, TwilioSignature(testToken, hookURL, params))
	return provider.Request{Method: http.MethodPost, URL: hookURL, Header: h, Body: []byte(params.Encode())}
}

// incomingCall is the request Twilio makes when a call reaches the number (Twilio's voice webhook
// parameters: the call, the parties and their geographic data).
func incomingCall() url.Values {
	return url.Values{
		"AccountSid": {testAccount}, "ApiVersion": {"2010-04-01"},
		"CallSid": {"CA5f1c3b2a0000000000000000000000aa"}, "CallStatus": {"ringing"},
		"Called": {"+14155550100"}, "CalledCity": {"SAN FRANCISCO"}, "CalledCountry": {"US"}, "CalledState": {"CA"}, "CalledZip": {"94105"},
		"Caller": {"+8613800138000"}, "CallerCountry": {"CN"},
		"Direction": {"inbound"},
		"From":      {"+8613800138000"}, "FromCountry": {"CN"},
		"To": {"+14155550100"}, "ToCity": {"SAN FRANCISCO"}, "ToCountry": {"US"}, "ToState": {"CA"}, "ToZip": {"94105"},
	}
}

// statusCallback adds what a call status callback carries on top of the call's parameters.
func statusCallback(status string, extra url.Values) url.Values {
	p := incomingCall()
	p.Set("CallStatus", status)
	p.Set("CallbackSource", "call-progress-events")
	p.Set("SequenceNumber", "2")
	p.Set("Timestamp", "Tue, 04 Mar 2025 05:05:00 +0000")
	for k, v := range extra {
		p[k] = v
	}
	return p
}

func TestTwilioWebhook(t *testing.T) {
	caller := provider.Identity{Kind: provider.IdentityPhone, Value: "+8613800138000"}
	cb := time.Date(2025, 3, 4, 5, 5, 0, 0, time.UTC)
	const sid = "CA5f1c3b2a0000000000000000000000aa"
	tests := []struct {
		name   string
		params url.Values
		want   []provider.CallEvent
	}{
		{"incoming call rings", incomingCall(), []provider.CallEvent{
			{CallID: sid, Event: provider.CallRinging, Direction: "inbound", From: caller, To: "+14155550100", At: testNow},
		}},
		{"answered", statusCallback("in-progress", url.Values{"CallerName": {"LI LEI"}}), []provider.CallEvent{
			{CallID: sid, Event: provider.CallAnswered, Direction: "inbound", From: caller, To: "+14155550100", Name: "LI LEI", At: cb},
		}},
		{"completed with duration and recording", statusCallback("completed", url.Values{
			"CallDuration": {"187"}, "Duration": {"4"},
			"RecordingUrl": {"https://api.twilio.com/2010-04-01/Accounts/" + testAccount + "/Recordings/RE0123456789abcdef0123456789abcdef"},
			"RecordingSid": {"RE0123456789abcdef0123456789abcdef"}, "RecordingDuration": {"180"},
		}), []provider.CallEvent{
			{CallID: sid, Event: provider.CallEnded, Direction: "inbound", From: caller, To: "+14155550100", DurationSec: 187,
				RecordingURL: "https://api.twilio.com/2010-04-01/Accounts/" + testAccount + "/Recordings/RE0123456789abcdef0123456789abcdef", At: cb},
		}},
		{"busy ends the call", statusCallback("busy", url.Values{"CallDuration": {"0"}}), []provider.CallEvent{
			{CallID: sid, Event: provider.CallEnded, Direction: "inbound", From: caller, To: "+14155550100", At: cb},
		}},
		{"no-answer without a duration", statusCallback("no-answer", nil), []provider.CallEvent{
			{CallID: sid, Event: provider.CallEnded, Direction: "inbound", From: caller, To: "+14155550100", At: cb},
		}},
		{"failed", statusCallback("failed", nil), []provider.CallEvent{
			{CallID: sid, Event: provider.CallEnded, Direction: "inbound", From: caller, To: "+14155550100", At: cb},
		}},
		{"canceled", statusCallback("canceled", nil), []provider.CallEvent{
			{CallID: sid, Event: provider.CallEnded, Direction: "inbound", From: caller, To: "+14155550100", At: cb},
		}},
		{"outbound-api: the customer is To", statusCallback("completed", url.Values{
			"Direction": {"outbound-api"}, "From": {"+14155550100"}, "To": {"+44 20 7946 0000"}, "CallDuration": {"60"},
		}), []provider.CallEvent{
			{CallID: sid, Event: provider.CallEnded, Direction: "outbound", From: provider.Identity{Kind: provider.IdentityPhone, Value: "+442079460000"},
				To: "+14155550100", DurationSec: 60, At: cb},
		}},
		{"SIP caller with a number", statusCallback("ringing", url.Values{"From": {"sip:+8613800138000@pbx.brand.example"}}), []provider.CallEvent{
			{CallID: sid, Event: provider.CallRinging, Direction: "inbound", From: caller, To: "+14155550100", At: cb},
		}},
		{"Twilio Client caller", statusCallback("ringing", url.Values{"From": {"client:alice"}}), []provider.CallEvent{
			{CallID: sid, Event: provider.CallRinging, Direction: "inbound", From: provider.Identity{Kind: provider.IdentityExternal, Value: "twilio:client:alice"}, To: "+14155550100", At: cb},
		}},
		{"child leg of a <Dial> is part of its parent", statusCallback("completed", url.Values{
			"ParentCallSid": {"CA00000000000000000000000000000001"}, "Direction": {"outbound-dial"}, "CallDuration": {"120"},
		}), nil},
		{"queued yields nothing", statusCallback("queued", nil), nil},
	}
	v := newVoice()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := v.Webhook(context.Background(), testChannel(), twilioRequest(tt.params))
			if err != nil {
				t.Fatalf("Webhook: %v", err)
			}
			want := provider.Batch{Calls: tt.want, Response: provider.Response{Status: 200, ContentType: "text/xml",
				Body: []byte(`<?xml version="1.0" encoding="UTF-8"?><Response/>`)}}
			if !reflect.DeepEqual(b, want) {
				t.Fatalf("Webhook =\n%+v\nwant\n%+v", b, want)
			}
		})
	}
}

func TestTwilioWebhookGET(t *testing.T) {
	q := url.Values{"AccountSid": {testAccount}, "CallSid": {"CA1"}, "CallStatus": {"ringing"}, "Direction": {"inbound"},
		"From": {"+14158675309"}, "To": {"+14155550100"}}
	full := "https://switchboard.example/hooks/voice/ch_voice?" + q.Encode()
	h := http.Header{}
	h.Set(TwilioSignatureHeader, TwilioSignature(testToken, full, nil))
	b, err := newVoice().Webhook(context.Background(), testChannel(), provider.Request{Method: http.MethodGet, URL: full, Query: q, Header: h})
	if err != nil || len(b.Calls) != 1 || b.Calls[0].CallID != "CA1" || b.Calls[0].From.Value != "+14158675309" {
		t.Fatalf("Webhook = %+v, %v", b, err)
	}
}

func TestTwilioWebhookRejects(t *testing.T) {
	params := statusCallback("completed", url.Values{"CallDuration": {"30"}})
	good := twilioRequest(params)
	with := func(f func(r *provider.Request, ch *provider.Channel)) (provider.Request, provider.Channel) {
		r, ch := good, testChannel()
		r.Header = good.Header.Clone()
		f(&r, &ch)
		return r, ch
	}
	tests := []struct {
		name string
		f    func(r *provider.Request, ch *provider.Channel)
		want error
	}{
		{"missing signature", func(r *provider.Request, _ *provider.Channel) { r.Header.Del(TwilioSignatureHeader) }, provider.ErrSignature},
		{"empty signature", func(r *provider.Request, _ *provider.Channel) { r.Header.Set(TwilioSignatureHeader, "") }, provider.ErrSignature},
		{"forged: other auth token", func(r *provider.Request, _ *provider.Channel) {
			r.Header.Set(TwilioSignatureHeader, TwilioSignature("00000000000000000000000000000000", hookURL, params))
		}, provider.ErrSignature},
		{"duration changed after signing", func(r *provider.Request, _ *provider.Channel) {
			r.Body = []byte(strings.Replace(string(r.Body), "CallDuration=30", "CallDuration=3000", 1))
		}, provider.ErrSignature},
		{"other URL", func(r *provider.Request, _ *provider.Channel) {
			r.URL = "https://switchboard.example/hooks/voice/other"
		}, provider.ErrSignature},
		{"channel of another account", func(_ *provider.Request, ch *provider.Channel) {
			ch.Config[KeyAccountSID] = "AC00000000000000000000000000000000"
		}, provider.ErrSignature},
		{"channel without auth_token", func(_ *provider.Request, ch *provider.Channel) { delete(ch.Config, KeyAuthToken) }, provider.ErrSignature},
		{"neutral signature on a Twilio body", func(r *provider.Request, _ *provider.Channel) {
			r.Header.Del(TwilioSignatureHeader)
			r.Header.Set(apichannel.SignatureHeader, apichannel.Sign(testSecret, testNow, r.Body))
		}, provider.ErrPayload},
	}
	v := newVoice()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ch := with(tt.f)
			if _, err := v.Webhook(context.Background(), ch, r); !errors.Is(err, tt.want) {
				t.Fatalf("Webhook = %v, want %v", err, tt.want)
			}
		})
	}
	for name, p := range map[string]url.Values{
		"bad CallDuration": statusCallback("completed", url.Values{"CallDuration": {"abc"}}),
		"no CallSid":       statusCallback("ringing", url.Values{"CallSid": {""}}),
		"no From":          statusCallback("ringing", url.Values{"From": {""}}),
	} {
		if _, err := v.Webhook(context.Background(), testChannel(), twilioRequest(p)); !errors.Is(err, provider.ErrPayload) {
			t.Errorf("%s: Webhook = %v, want ErrPayload", name, err)
		}
	}
	// Without account_sid configured any account's correctly signed call is taken.
	ch := testChannel()
	delete(ch.Config, KeyAccountSID)
	if _, err := v.Webhook(context.Background(), ch, good); err != nil {
		t.Errorf("without account_sid: %v", err)
	}
}

func neutralRequest(body string, sig string) provider.Request {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if sig != "" {
		h.Set(apichannel.SignatureHeader, sig)
	}
	return provider.Request{Method: http.MethodPost, URL: hookURL, Header: h, Body: []byte(body)}
}

func TestNeutralWebhook(t *testing.T) {
	caller := provider.Identity{Kind: provider.IdentityPhone, Value: "+8613800138000"}
	at := time.Date(2025, 3, 4, 5, 5, 0, 0, time.UTC) // 13:05 in +08:00
	tests := []struct {
		name string
		body string
		want []provider.CallEvent
	}{
		{"ringing", `{"call_id":"c-1","event":"ringing","direction":"inbound","from":"+8613800138000","to":"+86 571 888 8000","caller_name":"李雷","occurred_at":"2025-03-04T13:05:00+08:00"}`,
			[]provider.CallEvent{{CallID: "c-1", Event: provider.CallRinging, Direction: "inbound", From: caller, To: "+865718888000", Name: "李雷", At: at}}},
		{"answered, duration ignored before the end", `{"call_id":"c-1","event":"answered","direction":"inbound","from":"+8613800138000","to":"8001","duration_seconds":3,"occurred_at":"2025-03-04T13:05:00+08:00"}`,
			[]provider.CallEvent{{CallID: "c-1", Event: provider.CallAnswered, Direction: "inbound", From: caller, To: "8001", At: at}}},
		{"ended with duration and recording", `{"call_id":"c-1","event":"ended","direction":"inbound","from":"+8613800138000","to":"+865718888000","duration_seconds":187,"recording_url":"https://pbx.brand.example/rec/c-1.mp3","occurred_at":"2025-03-04T13:05:00+08:00"}`,
			[]provider.CallEvent{{CallID: "c-1", Event: provider.CallEnded, Direction: "inbound", From: caller, To: "+865718888000", DurationSec: 187, RecordingURL: "https://pbx.brand.example/rec/c-1.mp3", At: at}}},
		{"outbound: the customer is to", `{"call_id":"c-2","event":"ended","direction":"outbound","from":"+865718888000","to":"0086 138 0013 8000","duration_seconds":5}`,
			[]provider.CallEvent{{CallID: "c-2", Event: provider.CallEnded, Direction: "outbound", From: caller, To: "+865718888000", DurationSec: 5, At: testNow}}},
		{"no direction is inbound", `{"call_id":"c-3","event":"ringing","from":"+8613800138000"}`,
			[]provider.CallEvent{{CallID: "c-3", Event: provider.CallRinging, Direction: "inbound", From: caller, At: testNow}}},
		{"array of one call's events", `[{"call_id":"c-4","event":"ringing","from":"+8613800138000","occurred_at":"2025-03-04T13:05:00+08:00"},
			{"call_id":"c-4","event":"ended","from":"+8613800138000","duration_seconds":0,"occurred_at":"2025-03-04T13:05:00+08:00"}]`,
			[]provider.CallEvent{
				{CallID: "c-4", Event: provider.CallRinging, Direction: "inbound", From: caller, At: at},
				{CallID: "c-4", Event: provider.CallEnded, Direction: "inbound", From: caller, At: at},
			}},
	}
	v := newVoice()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := v.Webhook(context.Background(), testChannel(), neutralRequest(tt.body, apichannel.Sign(testSecret, testNow, []byte(tt.body))))
			if err != nil {
				t.Fatalf("Webhook: %v", err)
			}
			if !reflect.DeepEqual(b, provider.Batch{Calls: tt.want}) {
				t.Fatalf("Webhook =\n%+v\nwant\n%+v", b, provider.Batch{Calls: tt.want})
			}
		})
	}
}

func TestNeutralWebhookRejects(t *testing.T) {
	valid := `{"call_id":"c-1","event":"ended","direction":"inbound","from":"+8613800138000","duration_seconds":10}`
	sign := func(b string) string { return apichannel.Sign(testSecret, testNow, []byte(b)) }
	tests := []struct {
		name string
		body string
		sig  string
		want error
	}{
		{"missing signature", valid, "", provider.ErrSignature},
		{"forged signature", valid, apichannel.Sign("another-secret-0123456789", testNow, []byte(valid)), provider.ErrSignature},
		{"expired signature", valid, apichannel.Sign(testSecret, testNow.Add(-301*time.Second), []byte(valid)), provider.ErrSignature},
		{"duration changed after signing", strings.Replace(valid, "10", "10000", 1), sign(valid), provider.ErrSignature},
		{"not JSON", "call ended", sign("call ended"), provider.ErrPayload},
		{"no call_id", `{"event":"ended","from":"+8613800138000"}`, sign(`{"event":"ended","from":"+8613800138000"}`), provider.ErrPayload},
		{"unknown event", `{"call_id":"c","event":"hold","from":"+8613800138000"}`, sign(`{"call_id":"c","event":"hold","from":"+8613800138000"}`), provider.ErrPayload},
		{"unknown direction", `{"call_id":"c","event":"ended","direction":"internal","from":"+8613800138000"}`, sign(`{"call_id":"c","event":"ended","direction":"internal","from":"+8613800138000"}`), provider.ErrPayload},
		{"national number", `{"call_id":"c","event":"ended","from":"13800138000"}`, sign(`{"call_id":"c","event":"ended","from":"13800138000"}`), provider.ErrPayload},
		{"negative duration", `{"call_id":"c","event":"ended","from":"+8613800138000","duration_seconds":-1}`, sign(`{"call_id":"c","event":"ended","from":"+8613800138000","duration_seconds":-1}`), provider.ErrPayload},
		{"recording not a URL", `{"call_id":"c","event":"ended","from":"+8613800138000","recording_url":"rec.mp3"}`, sign(`{"call_id":"c","event":"ended","from":"+8613800138000","recording_url":"rec.mp3"}`), provider.ErrPayload},
		{"bad occurred_at", `{"call_id":"c","event":"ended","from":"+8613800138000","occurred_at":"now"}`, sign(`{"call_id":"c","event":"ended","from":"+8613800138000","occurred_at":"now"}`), provider.ErrPayload},
		{"empty array", `[]`, sign(`[]`), provider.ErrPayload},
		{"one bad event spoils the array", `[` + valid + `,{"call_id":"c"}]`, sign(`[` + valid + `,{"call_id":"c"}]`), provider.ErrPayload},
	}
	v := newVoice()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.Webhook(context.Background(), testChannel(), neutralRequest(tt.body, tt.sig)); !errors.Is(err, tt.want) {
				t.Fatalf("Webhook = %v, want %v", err, tt.want)
			}
		})
	}
	ch := testChannel()
	delete(ch.Config, KeySecret)
	if _, err := v.Webhook(context.Background(), ch, neutralRequest(valid, sign(valid))); !errors.Is(err, provider.ErrSignature) {
		t.Fatalf("Twilio-only channel took a neutral event: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  map[string]string
		ok   bool
	}{
		{"secret only", map[string]string{KeySecret: testSecret}, true},
		{"auth_token only", map[string]string{KeyAuthToken: testToken}, true},
		{"everything", map[string]string{KeySecret: testSecret, KeyAuthToken: testToken, KeyAccountSID: testAccount, KeyAPIBase: "http://127.0.0.1:9999"}, true},
		{"neither", map[string]string{KeyAccountSID: testAccount}, false},
		{"short secret", map[string]string{KeySecret: "short"}, false},
		{"bad account_sid", map[string]string{KeyAuthToken: testToken, KeyAccountSID: "AC123"}, false},
		{"bad api_base", map[string]string{KeyAuthToken: testToken, KeyAPIBase: "api.twilio.com"}, false},
	}
	for _, tt := range tests {
		if err := newVoice().Validate(tt.cfg); (err == nil) != tt.ok {
			t.Errorf("%s: Validate = %v", tt.name, err)
		}
	}
	spec := newVoice().Spec()
	if spec.Type != "voice" || spec.Defaults[KeyAPIBase] != "https://api.twilio.com" || !reflect.DeepEqual(spec.Secret, []string{KeySecret, KeyAuthToken}) {
		t.Errorf("Spec = %+v", spec)
	}
}

func TestSendIsRefused(t *testing.T) {
	fa := Fixture().FakeAPI()
	srv := httptest.NewServer(fa.Handler)
	defer srv.Close()
	_, err := New(srv.Client(), nil).Send(context.Background(), provider.Channel{Config: Fixture().Config(srv.URL)},
		provider.Outbound{MessageID: uuid.New(), To: []provider.Identity{{Kind: provider.IdentityPhone, Value: "+8613800138000"}}, Text: "hi"})
	var se *provider.SendError
	if !errors.As(err, &se) || !se.Permanent || se.Reason == "" {
		t.Fatalf("Send = %#v, want a permanent SendError", err)
	}
	if n := len(fa.Calls()); n != 0 {
		t.Fatalf("Send called the API %d times", n)
	}
}

func TestFetchRecording(t *testing.T) {
	fa := Fixture().FakeAPI()
	srv := httptest.NewServer(fa.Handler)
	defer srv.Close()
	ch := provider.Channel{Config: Fixture().Config(srv.URL)}
	v := New(srv.Client(), nil)
	path := "/2010-04-01/Accounts/" + fixtureAccountSID + "/Recordings/RE0123456789abcdef0123456789abcdef"

	// Twilio's URL is fetched from api_base with the account's basic auth.
	data, ct, err := v.FetchMedia(context.Background(), ch, provider.Media{URL: "https://api.twilio.com" + path})
	if err != nil || string(data) != string(FakeRecording) || ct != "audio/x-wav" {
		t.Fatalf("FetchMedia = %q, %q, %v", data, ct, err)
	}
	c := fa.Calls()[0]
	user, pass, ok := (&http.Request{Header: c.Header}).BasicAuth()
	if c.Method != http.MethodGet || c.Path != path || !ok || user != fixtureAccountSID || pass != fixtureAuthToken {
		t.Fatalf("request = %s %s auth %v %q", c.Method, c.Path, ok, user)
	}

	for name, u := range map[string]string{
		"another host":    "https://evil.example" + path,
		"not a recording": "https://api.twilio.com/2010-04-01/Accounts/" + fixtureAccountSID + "/Calls/CA1",
	} {
		if _, _, err := v.FetchMedia(context.Background(), ch, provider.Media{URL: u}); !errors.Is(err, provider.ErrUnsupported) {
			t.Errorf("%s: FetchMedia = %v, want ErrUnsupported", name, err)
		}
	}
	if n := len(fa.Calls()); n != 1 {
		t.Errorf("refused fetches reached the API: %d calls", n)
	}
	fa.Fail(true)
	if _, _, err := v.FetchMedia(context.Background(), ch, provider.Media{URL: srv.URL + path}); err == nil {
		t.Error("FetchMedia took a 500")
	}
}

// TestFixture checks what the inbox's integration tests rely on.
func TestFixture(t *testing.T) {
	f := Fixture()
	if f.Media != nil || f.Status != nil {
		t.Fatal("voice has no media or status deliveries")
	}
	srv := httptest.NewServer(f.FakeAPI().Handler)
	defer srv.Close()
	ch := provider.Channel{ID: uuid.New(), Type: f.Type, Config: f.Config(srv.URL), WebhookURL: "https://sb.example/hooks/voice/p1"}
	v := New(srv.Client(), nil)
	if err := v.Validate(ch.Config); err != nil {
		t.Fatalf("fixture config: %v", err)
	}
	for _, from := range []string{"+8613800138000", "15551230001"} {
		in := f.Inbound(ch, "call-1", from, "ignored")
		b, err := v.Webhook(context.Background(), ch, in)
		if err != nil || len(b.Calls) != 1 || len(b.Messages) != 0 {
			t.Fatalf("Inbound(%s) → %+v, %v", from, b, err)
		}
		c := b.Calls[0]
		if c.CallID != "call-1" || c.Event != provider.CallEnded || c.DurationSec != fixtureDuration || c.From != f.From(from) {
			t.Fatalf("Inbound(%s) → %+v, From(%s) = %+v", from, c, from, f.From(from))
		}
		data, _, err := v.FetchMedia(context.Background(), ch, provider.Media{URL: c.RecordingURL})
		if err != nil || string(data) != string(FakeRecording) {
			t.Fatalf("recording of the fixture call: %v", err)
		}
		for _, forged := range []bool{false, true} {
			if _, err := v.Webhook(context.Background(), ch, f.Forge(in, forged)); !errors.Is(err, provider.ErrSignature) {
				t.Errorf("Forge(%v) → %v, want ErrSignature", forged, err)
			}
		}
	}
	// Forge also handles Twilio deliveries.
	ch.Config[KeyAuthToken] = testToken
	ch.Config[KeyAccountSID] = testAccount
	ch.WebhookURL = hookURL
	tw := twilioRequest(incomingCall())
	if _, err := v.Webhook(context.Background(), ch, tw); err != nil {
		t.Fatalf("Twilio delivery: %v", err)
	}
	for _, forged := range []bool{false, true} {
		if _, err := v.Webhook(context.Background(), ch, f.Forge(tw, forged)); !errors.Is(err, provider.ErrSignature) {
			t.Errorf("Forge(Twilio, %v) → %v, want ErrSignature", forged, err)
		}
	}
}
