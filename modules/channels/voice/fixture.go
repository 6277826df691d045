package voice

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/apichannel"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// The fixture's credentials; forgeries are signed with other ones.
const (
	fixtureSecret     = "fixture-voice-secret-0123456789"
	fixtureAuthToken  = "0123456789abcdef0123456789abcdef"
	fixtureAccountSID = "AC0123456789abcdef0123456789abcdef"
	fixtureLine       = "+865718888000" // the brand's number the fixture's calls reach
	fixtureDuration   = 42
)

// FakeRecording is what the fake Twilio API serves as a call recording.
var FakeRecording = []byte("RIFF\x24\x00\x00\x00WAVEfmt ")

// Fixture drives the voice channel. A voice channel carries calls, not texts, so Inbound's
// "message" is one finished inbound call: an "ended" event of the neutral call-event API with
// call_id = providerID, from = the caller, a 42-second duration and a recording; the text is
// not sent anywhere. There are no media deliveries or delivery statuses (Media and Status are
// nil), and Send always fails permanently, so the fake API only serves Twilio's recordings.
func Fixture() provider.Fixture {
	return provider.Fixture{
		Type: Type,
		Config: func(apiBase string) map[string]string {
			return map[string]string{
				KeySecret: fixtureSecret, KeyAuthToken: fixtureAuthToken, KeyAccountSID: fixtureAccountSID, KeyAPIBase: apiBase,
			}
		},
		Inbound: func(ch provider.Channel, providerID, from, _ string) provider.Request {
			body, err := json.Marshal(map[string]any{
				"call_id":          providerID,
				"event":            provider.CallEnded,
				"direction":        "inbound",
				"from":             fixturePhone(from),
				"to":               fixtureLine,
				"caller_name":      "Fixture Caller",
				"duration_seconds": fixtureDuration,
				"recording_url":    fixtureRecordingURL(ch, providerID),
				"occurred_at":      time.Now().UTC().Format(time.RFC3339),
			})
			if err != nil {
				panic(err) // strings and an int: cannot fail
			}
			h := http.Header{}
			h.Set("Content-Type", "application/json")
			h.Set(apichannel.SignatureHeader, apichannel.Sign(ch.Config[KeySecret], time.Now(), body))
			return provider.Request{Method: http.MethodPost, URL: ch.WebhookURL, Header: h, Body: body}
		},
		Forge: func(r provider.Request, forged bool) provider.Request {
			r.Header = r.Header.Clone()
			twilio := len(r.Header.Values(TwilioSignatureHeader)) > 0
			switch {
			case twilio && forged:
				r.Header.Set(TwilioSignatureHeader, TwilioSignature("ffffffffffffffffffffffffffffffff", r.URL, nil))
			case twilio:
				r.Header.Del(TwilioSignatureHeader)
			case forged:
				r.Header.Set(apichannel.SignatureHeader, apichannel.Sign("not-the-channel-secret-0123456789", time.Now(), r.Body))
			default:
				r.Header.Del(apichannel.SignatureHeader)
			}
			return r
		},
		From: func(from string) provider.Identity {
			return provider.Identity{Kind: provider.IdentityPhone, Value: fixturePhone(from)}
		},
		FakeAPI: fakeTwilio,
	}
}

// fixtureRecordingURL is where Twilio would keep the call's recording: a RecordingSid derived
// from the call id, on the channel's api_base so FetchMedia reaches the fake.
func fixtureRecordingURL(ch provider.Channel, callID string) string {
	sum := sha256.Sum256([]byte(callID))
	return fmt.Sprintf("%s/2010-04-01/Accounts/%s/Recordings/RE%x",
		strings.TrimRight(ch.Get(KeyAPIBase, DefaultAPIBase), "/"), fixtureAccountSID, sum[:16])
}

// fixturePhone lets the shared integration tests pass a bare international number ("15551230001")
// as the sender, as they do for the messaging apps.
func fixturePhone(from string) string {
	if p, ok := apichannel.NormalizePhone(from); ok {
		return p
	}
	if p, ok := apichannel.NormalizePhone("+" + from); ok {
		return p
	}
	return from
}

// fakeTwilio serves GET /2010-04-01/Accounts/{sid}/Recordings/{sid} behind HTTP basic auth with
// the fixture's account, and Twilio's JSON errors otherwise.
func fakeTwilio() *provider.FakeAPI {
	fa := &provider.FakeAPI{}
	fa.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if fa.Record(provider.Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}) {
			twilioError(w, http.StatusInternalServerError, 20500, "Internal Server Error")
			return
		}
		user, pass, ok := r.BasicAuth()
		if !ok || user != fixtureAccountSID || pass != fixtureAuthToken {
			twilioError(w, http.StatusUnauthorized, 20003, "Authenticate")
			return
		}
		prefix := "/2010-04-01/Accounts/" + fixtureAccountSID + "/Recordings/RE"
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, prefix) {
			twilioError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
			return
		}
		w.Header().Set("Content-Type", "audio/x-wav")
		_, _ = w.Write(FakeRecording)
	})
	return fa
}

func twilioError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code": code, "message": msg, "more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status,
	})
}
