package apichannel

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// fixtureSecret signs the fixture's deliveries; forgeries are signed with another one.
const fixtureSecret = "fixture-api-channel-secret-0123456789"

// FakePNG is the image the fake brand system serves for Media deliveries.
var FakePNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

// Fixture drives the API channel with its real wire format. The fake is the brand's system: it
// takes replies on /replies (webhook_url) and serves attachments under /media/.
func Fixture() provider.Fixture {
	return provider.Fixture{
		Type: Type,
		Config: func(apiBase string) map[string]string {
			return map[string]string{KeySecret: fixtureSecret, KeyWebhookURL: apiBase + "/replies"}
		},
		Inbound: func(ch provider.Channel, providerID, from, text string) provider.Request {
			return signed(ch, map[string]any{
				"message_id":  providerID,
				"contact":     map[string]any{"external_id": from, "name": "Fixture Customer"},
				"text":        text,
				"occurred_at": time.Now().UTC().Format(time.RFC3339),
			})
		},
		Media: func(ch provider.Channel, providerID, from string) provider.Request {
			base := strings.TrimSuffix(ch.Config[KeyWebhookURL], "/replies")
			return signed(ch, map[string]any{
				"message_id": providerID,
				"contact":    map[string]any{"external_id": from, "name": "Fixture Customer"},
				"attachments": []map[string]any{{
					"url": base + "/media/photo.png", "content_type": "image/png", "filename": "photo.png",
				}},
				"occurred_at": time.Now().UTC().Format(time.RFC3339),
			})
		},
		Status: func(ch provider.Channel, providerMessageID, status string) provider.Request {
			return signed(ch, map[string]any{
				"type": "status", "message_id": providerMessageID, "status": status,
				"occurred_at": time.Now().UTC().Format(time.RFC3339),
			})
		},
		Forge: func(r provider.Request, forged bool) provider.Request {
			r.Header = r.Header.Clone()
			if forged {
				r.Header.Set(SignatureHeader, Sign("not-the-channel-secret-0123456789", time.Now(), r.Body))
			} else {
				r.Header.Del(SignatureHeader)
			}
			return r
		},
		From: func(from string) provider.Identity {
			return provider.Identity{Kind: provider.IdentityExternal, Value: from}
		},
		FakeAPI: fakeAPI,
	}
}

func signed(ch provider.Channel, payload map[string]any) provider.Request {
	body, err := json.Marshal(payload)
	if err != nil {
		panic(err) // only maps of strings: cannot fail
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(SignatureHeader, Sign(ch.Config[KeySecret], time.Now(), body))
	return provider.Request{Method: http.MethodPost, URL: ch.WebhookURL, Header: h, Body: body}
}

// fakeAPI answers replies the way a brand's system would: 200 with its own id of the reply.
func fakeAPI() *provider.FakeAPI {
	fa := &provider.FakeAPI{}
	fa.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if fa.Record(provider.Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":"internal error"}`))
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/replies":
			// A brand's endpoint checks the signature as the docs tell it to.
			if Verify(fixtureSecret, r.Header.Get(SignatureHeader), body, time.Now()) != nil {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error":"bad signature"}`))
				return
			}
			var out struct {
				MessageID string `json:"message_id"`
			}
			if json.Unmarshal(body, &out) != nil || out.MessageID == "" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"message_id is required"}`))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"id": "brand-" + out.MessageID})
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/media/"):
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(FakePNG)
		default:
			http.NotFound(w, r)
		}
	})
	return fa
}
