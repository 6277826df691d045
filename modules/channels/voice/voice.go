// Package voice is the "voice" (CTI) channel: phone calls become conversations with a call record
// and metered minutes. One webhook takes two formats:
//
//   - Switchboard's provider-neutral call-event API, for any PBX or CTI system: JSON
//     {"call_id", "event": "ringing|answered|ended", "direction": "inbound|outbound", "from", "to",
//     "caller_name", "duration_seconds", "recording_url", "occurred_at"} (one object, or an array
//     of them), signed with the channel's secret in the X-Switchboard-Signature scheme the API
//     channel defines (apichannel.Sign / apichannel.Verify).
//   - Twilio's voice webhooks (the incoming-call request and the call status callbacks), form
//     encoded and signed with X-Twilio-Signature under the account's auth token.
//
// A request carrying X-Twilio-Signature is Twilio's; anything else is the neutral API.
//
// CallEvent.From is always the customer, whatever the direction: on an outbound call that is the
// number dialled ("to"), and CallEvent.To is then the brand's line. The inbox finds the contact by
// From, and the brand's own line must never become a contact.
package voice

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// Type is the channel type.
const Type = "voice"

// Config keys. auth_token and account_sid are Twilio's names.
const (
	KeySecret     = "secret"
	KeyAuthToken  = "auth_token"
	KeyAccountSID = "account_sid"
	KeyAPIBase    = "api_base"
)

// DefaultAPIBase is Twilio's REST API, where call recordings are fetched.
const DefaultAPIBase = "https://api.twilio.com"

// TwilioSignatureHeader is the header Twilio signs its webhooks with.
const TwilioSignatureHeader = "X-Twilio-Signature"

// TwiML is the answer to Twilio: an empty <Response/>. Switchboard records calls but does not
// drive them, so this webhook belongs in a number's status callback; set as the number's voice
// URL it would end the call at once.
const TwiML = `<?xml version="1.0" encoding="UTF-8"?><Response/>`

// minSecretLen keeps the neutral API's signing secret from being guessable: whoever knows it can
// invent calls, and calls are billed by the minute.
const minSecretLen = 16

// maxEvents bounds a neutral delivery: a batch is meant for a few events of one call, not a
// backfill.
const maxEvents = 100

// maxRecording bounds a recording download (a two-hour mono WAV at 8 kHz is about 115 MB).
const maxRecording = 256 << 20

var accountSIDPattern = regexp.MustCompile(`^AC[0-9a-f]{32}$`)

// Voice is the voice channel adapter.
type Voice struct {
	client *http.Client
	now    func() time.Time
}

var (
	_ provider.Provider     = (*Voice)(nil)
	_ provider.MediaFetcher = (*Voice)(nil)
)

// New returns the adapter. now is the clock the neutral API's signature timestamps are checked
// against (time.Now when nil).
func New(client *http.Client, now func() time.Time) *Voice {
	if client == nil {
		client = http.DefaultClient
	}
	if now == nil {
		now = time.Now
	}
	return &Voice{client: client, now: now}
}

// Spec describes the configuration: either scheme's credential, or both.
func (v *Voice) Spec() provider.Spec {
	return provider.Spec{
		Type:       Type,
		Optional:   []string{KeySecret, KeyAuthToken, KeyAccountSID, KeyAPIBase},
		Secret:     []string{KeySecret, KeyAuthToken},
		Defaults:   map[string]string{KeyAPIBase: DefaultAPIBase},
		Identities: []string{provider.IdentityPhone},
		// Twilio's call callbacks are not retried; a lost "ended" would lose the call's minutes.
		DeliversOnce: true,
	}
}

// Validate requires a credential for at least one of the two webhook formats.
func (v *Voice) Validate(cfg map[string]string) error {
	secret, token := cfg[KeySecret], cfg[KeyAuthToken]
	if secret == "" && token == "" {
		return fmt.Errorf("voice: %s (Switchboard's call-event API) or %s (Twilio) is required", KeySecret, KeyAuthToken)
	}
	if secret != "" && len(secret) < minSecretLen {
		return fmt.Errorf("voice: %s must be at least %d characters", KeySecret, minSecretLen)
	}
	if sid := cfg[KeyAccountSID]; sid != "" && !accountSIDPattern.MatchString(sid) {
		return fmt.Errorf("voice: %s must be a Twilio account SID (AC followed by 32 hex digits)", KeyAccountSID)
	}
	if base := cfg[KeyAPIBase]; base != "" {
		if err := apichannel.ValidateHTTPURL(KeyAPIBase, base); err != nil {
			return fmt.Errorf("voice: %w", err)
		}
	}
	return nil
}

// Setup does nothing: the brand points its number's status callback at the webhook URL.
func (v *Voice) Setup(context.Context, provider.Channel) error { return nil }

// Send refuses: a call is answered on the phone, not with a text message.
func (v *Voice) Send(context.Context, provider.Channel, provider.Outbound) (provider.Sent, error) {
	return provider.Sent{}, &provider.SendError{Permanent: true, Reason: "voice channels take no text replies"}
}

// Webhook verifies and parses either format.
func (v *Voice) Webhook(_ context.Context, ch provider.Channel, r provider.Request) (provider.Batch, error) {
	if len(r.Header.Values(TwilioSignatureHeader)) > 0 {
		return v.twilio(ch, r)
	}
	return v.neutral(ch, r)
}

func payloadErr(reason string) error {
	return fmt.Errorf("voice: %s: %w", reason, provider.ErrPayload)
}

// customer returns the customer's number and the brand's line of a call.
func customer(direction, from, to string) (cust, line string) {
	if direction == "outbound" {
		return to, from
	}
	return from, to
}

type neutralEvent struct {
	CallID          string `json:"call_id"`
	Event           string `json:"event"`
	Direction       string `json:"direction"`
	From            string `json:"from"`
	To              string `json:"to"`
	CallerName      string `json:"caller_name"`
	DurationSeconds int64  `json:"duration_seconds"`
	RecordingURL    string `json:"recording_url"`
	OccurredAt      string `json:"occurred_at"`
}

func (v *Voice) neutral(ch provider.Channel, r provider.Request) (provider.Batch, error) {
	if err := apichannel.Verify(ch.Config[KeySecret], r.Header.Get(apichannel.SignatureHeader), r.Body, v.now()); err != nil {
		return provider.Batch{}, fmt.Errorf("voice: %w", err)
	}
	var events []neutralEvent
	body := bytes.TrimSpace(r.Body)
	if bytes.HasPrefix(body, []byte("[")) {
		if err := json.Unmarshal(body, &events); err != nil {
			return provider.Batch{}, fmt.Errorf("voice: %v: %w", err, provider.ErrPayload)
		}
		if len(events) == 0 || len(events) > maxEvents {
			return provider.Batch{}, payloadErr(fmt.Sprintf("a delivery carries 1 to %d events, not %d", maxEvents, len(events)))
		}
	} else {
		var e neutralEvent
		if err := json.Unmarshal(body, &e); err != nil {
			return provider.Batch{}, fmt.Errorf("voice: %v: %w", err, provider.ErrPayload)
		}
		events = []neutralEvent{e}
	}
	var b provider.Batch
	for i, e := range events {
		c, err := v.neutralCall(e)
		if err != nil {
			if len(events) > 1 {
				return provider.Batch{}, fmt.Errorf("event %d: %w", i, err)
			}
			return provider.Batch{}, err
		}
		b.Calls = append(b.Calls, c)
	}
	return b, nil
}

func (v *Voice) neutralCall(e neutralEvent) (provider.CallEvent, error) {
	if e.CallID == "" {
		return provider.CallEvent{}, payloadErr("call_id is required")
	}
	switch e.Event {
	case provider.CallRinging, provider.CallAnswered, provider.CallEnded:
	default:
		return provider.CallEvent{}, payloadErr(fmt.Sprintf("event %q is not ringing, answered or ended", e.Event))
	}
	switch e.Direction {
	case "":
		e.Direction = "inbound"
	case "inbound", "outbound":
	default:
		return provider.CallEvent{}, payloadErr(fmt.Sprintf("direction %q is not inbound or outbound", e.Direction))
	}
	cust, line := customer(e.Direction, e.From, e.To)
	phone, ok := apichannel.NormalizePhone(cust)
	if !ok {
		return provider.CallEvent{}, payloadErr(fmt.Sprintf("the customer's number %q is not an international number", cust))
	}
	if line != "" {
		if p, ok := apichannel.NormalizePhone(line); ok {
			line = p
		}
	}
	if e.DurationSeconds < 0 {
		return provider.CallEvent{}, payloadErr("duration_seconds is negative")
	}
	if e.RecordingURL != "" {
		if err := apichannel.ValidateHTTPURL("recording_url", e.RecordingURL); err != nil {
			return provider.CallEvent{}, payloadErr(err.Error())
		}
	}
	at := v.now().UTC()
	if e.OccurredAt != "" {
		t, err := time.Parse(time.RFC3339, e.OccurredAt)
		if err != nil {
			return provider.CallEvent{}, payloadErr("occurred_at is not RFC 3339")
		}
		at = t.UTC()
	}
	c := provider.CallEvent{
		CallID:       e.CallID,
		Event:        e.Event,
		Direction:    e.Direction,
		From:         provider.Identity{Kind: provider.IdentityPhone, Value: phone},
		To:           line,
		Name:         strings.TrimSpace(e.CallerName),
		RecordingURL: e.RecordingURL,
		At:           at,
	}
	if e.Event == provider.CallEnded {
		c.DurationSec = e.DurationSeconds
	}
	return c, nil
}

// twilioResponse is the TwiML every Twilio request gets, including those that yield no event.
var twilioResponse = provider.Response{Status: http.StatusOK, ContentType: "text/xml", Body: []byte(TwiML)}

func (v *Voice) twilio(ch provider.Channel, r provider.Request) (provider.Batch, error) {
	token := ch.Config[KeyAuthToken]
	if token == "" {
		return provider.Batch{}, fmt.Errorf("voice: channel has no %s for Twilio: %w", KeyAuthToken, provider.ErrSignature)
	}
	// Twilio signs POST parameters; a GET webhook carries them in the URL, which is signed as is.
	params := url.Values{}
	fields := r.Query
	if r.Method != http.MethodGet {
		var err error
		if params, err = url.ParseQuery(string(r.Body)); err != nil {
			return provider.Batch{}, fmt.Errorf("voice: form body: %v: %w", err, provider.ErrPayload)
		}
		fields = params
	} else if fields == nil {
		if u, err := url.Parse(r.URL); err == nil {
			fields = u.Query()
		}
	}
	if !ValidTwilioSignature(token, r.URL, params, r.Header.Get(TwilioSignatureHeader)) {
		return provider.Batch{}, fmt.Errorf("voice: %s does not match: %w", TwilioSignatureHeader, provider.ErrSignature)
	}
	if sid := ch.Config[KeyAccountSID]; sid != "" && fields.Get("AccountSid") != sid {
		return provider.Batch{}, fmt.Errorf("voice: call of account %q, channel is %q: %w", fields.Get("AccountSid"), sid, provider.ErrSignature)
	}
	b := provider.Batch{Response: twilioResponse}
	c, ok, err := v.twilioCall(fields)
	if err != nil {
		return provider.Batch{}, err
	}
	if ok {
		b.Calls = []provider.CallEvent{c}
	}
	return b, nil
}

// twilioCall maps one Twilio request. It yields no event for a child leg (ParentCallSid set: the
// <Dial> from the caller to an agent is part of the parent call, and counting it too would bill
// its minutes twice), for queued calls, and for statuses Twilio may add later.
func (v *Voice) twilioCall(f url.Values) (provider.CallEvent, bool, error) {
	callSid := f.Get("CallSid")
	if callSid == "" {
		return provider.CallEvent{}, false, payloadErr("CallSid is missing")
	}
	if f.Get("ParentCallSid") != "" {
		return provider.CallEvent{}, false, nil
	}
	var event string
	switch f.Get("CallStatus") {
	case "ringing":
		event = provider.CallRinging
	case "in-progress":
		event = provider.CallAnswered
	case "completed", "busy", "failed", "no-answer", "canceled":
		event = provider.CallEnded
	default:
		return provider.CallEvent{}, false, nil
	}
	// Twilio's directions: inbound, outbound-api (REST-created), outbound-dial (<Dial>), and
	// Elastic SIP Trunking's trunking-originating (PSTN to the brand's PBX: inbound) and
	// trunking-terminating (the PBX out to the PSTN: outbound).
	direction := "inbound"
	if strings.HasPrefix(f.Get("Direction"), "outbound") || f.Get("Direction") == "trunking-terminating" {
		direction = "outbound"
	}
	cust, line := customer(direction, f.Get("From"), f.Get("To"))
	c := provider.CallEvent{
		CallID:       callSid,
		Event:        event,
		Direction:    direction,
		From:         twilioIdentity(cust),
		To:           line,
		Name:         strings.TrimSpace(f.Get("CallerName")),
		RecordingURL: f.Get("RecordingUrl"),
		At:           v.twilioTime(f.Get("Timestamp")),
	}
	if c.From.Value == "" {
		return provider.CallEvent{}, false, payloadErr("the caller's From/To is missing")
	}
	if event == provider.CallEnded {
		if d := f.Get("CallDuration"); d != "" {
			n, err := strconv.ParseInt(d, 10, 64)
			if err != nil || n < 0 {
				return provider.CallEvent{}, false, payloadErr(fmt.Sprintf("CallDuration %q", d))
			}
			c.DurationSec = n
		}
	}
	return c, true, nil
}

// twilioIdentity turns Twilio's party address into an identity. PSTN numbers arrive in E.164,
// SIP callers as sip:user@host (the user part is often the number), and browser or app callers
// (Twilio Client) as client:name, which are kept as an external id in a twilio: namespace so they
// still open a conversation without colliding with a brand's own ids.
func twilioIdentity(addr string) provider.Identity {
	if p, ok := apichannel.NormalizePhone(addr); ok {
		return provider.Identity{Kind: provider.IdentityPhone, Value: p}
	}
	if user, ok := strings.CutPrefix(addr, "sip:"); ok {
		user, _, _ = strings.Cut(user, "@")
		if p, ok := apichannel.NormalizePhone(user); ok {
			return provider.Identity{Kind: provider.IdentityPhone, Value: p}
		}
	}
	if addr == "" {
		return provider.Identity{}
	}
	return provider.Identity{Kind: provider.IdentityExternal, Value: "twilio:" + addr}
}

// twilioTime reads the status callback's Timestamp (RFC 2822). The incoming-call request has
// none; a delivery whose signature is good is not refused for its date format either.
func (v *Voice) twilioTime(s string) time.Time {
	for _, layout := range []string{time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 -0700", time.RFC1123} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return v.now().UTC()
}

// TwilioSignature is Twilio's X-Twilio-Signature of a request: base64 of HMAC-SHA1 under the
// auth token of the full URL followed by each POST parameter's name and value, sorted by name
// (a repeated parameter's distinct values sorted too, as Twilio's helper libraries do).
func TwilioSignature(authToken, fullURL string, params url.Values) string {
	var buf strings.Builder
	buf.WriteString(fullURL)
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vals := slices.Clone(params[k])
		slices.Sort(vals)
		for _, v := range slices.Compact(vals) {
			buf.WriteString(k)
			buf.WriteString(v)
		}
	}
	m := hmac.New(sha1.New, []byte(authToken))
	m.Write([]byte(buf.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ValidTwilioSignature checks sig against the URL as given and with the default port added or
// removed: Twilio signs whichever form it dialled, and a proxy in front of Switchboard may
// report the other.
func ValidTwilioSignature(authToken, fullURL string, params url.Values, sig string) bool {
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sig))
	if err != nil || len(got) == 0 {
		return false
	}
	ok := false
	for _, u := range urlVariants(fullURL) {
		want, _ := base64.StdEncoding.DecodeString(TwilioSignature(authToken, u, params))
		if hmac.Equal(got, want) {
			ok = true
		}
	}
	return ok
}

func urlVariants(fullURL string) []string {
	out := []string{fullURL}
	u, err := url.Parse(fullURL)
	if err != nil || u.Host == "" {
		return out
	}
	if u.Port() != "" {
		u.Host = u.Hostname()
		if strings.Contains(u.Host, ":") {
			u.Host = "[" + u.Host + "]"
		}
	} else {
		port := "443"
		if u.Scheme == "http" {
			port = "80"
		}
		u.Host += ":" + port
	}
	return append(out, u.String())
}

// FetchMedia downloads a Twilio call recording (Media.URL is a CallEvent's RecordingURL) with the
// account's credentials. Only recordings on Twilio's API (or the channel's api_base) are fetched:
// the credentials must never be sent to a host a webhook named. Recordings the neutral API
// reports stay links.
func (v *Voice) FetchMedia(ctx context.Context, ch provider.Channel, m provider.Media) ([]byte, string, error) {
	base := strings.TrimRight(ch.Get(KeyAPIBase, DefaultAPIBase), "/")
	baseURL, err := url.Parse(base)
	if err != nil {
		return nil, "", fmt.Errorf("voice: %s: %w", KeyAPIBase, err)
	}
	u, err := url.Parse(m.URL)
	if err != nil || (u.Host != "api.twilio.com" && u.Host != baseURL.Host) {
		return nil, "", fmt.Errorf("voice: %q is not a Twilio recording: %w", m.URL, provider.ErrUnsupported)
	}
	// /2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}[.wav|.mp3]
	parts := strings.Split(strings.TrimPrefix(u.Path, baseURL.Path), "/")
	if len(parts) != 6 || parts[1] != "2010-04-01" || parts[2] != "Accounts" || parts[4] != "Recordings" {
		return nil, "", fmt.Errorf("voice: %q is not a Twilio recording: %w", m.URL, provider.ErrUnsupported)
	}
	sid := ch.Config[KeyAccountSID]
	if sid == "" {
		sid = parts[3]
	}
	token := ch.Config[KeyAuthToken]
	if token == "" {
		return nil, "", fmt.Errorf("voice: channel has no %s to fetch recordings with: %w", KeyAuthToken, provider.ErrUnsupported)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+strings.Join(parts, "/"), nil)
	if err != nil {
		return nil, "", fmt.Errorf("voice: %w", err)
	}
	req.SetBasicAuth(sid, token)
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("voice: fetch recording: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return nil, "", fmt.Errorf("voice: fetch recording: status %d: %s", resp.StatusCode, msg)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRecording+1))
	if err != nil {
		return nil, "", fmt.Errorf("voice: fetch recording: %w", err)
	}
	if len(data) > maxRecording {
		return nil, "", errors.New("voice: fetch recording: larger than 256 MiB")
	}
	return data, resp.Header.Get("Content-Type"), nil
}
