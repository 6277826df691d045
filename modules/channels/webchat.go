package channels

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// WebChat is the web chat widget's channel type. The widget talks to Switchboard's own public
// widget API, so there is no provider to call: replies reach the visitor over the realtime
// connection (or its polling fallback) and count as sent once stored.
type WebChat struct{}

// Spec of the widget: identity_secret turns on identity verification (the brand signs its user
// id with HMAC-SHA256 and the widget sends the signature); allowed_origins limits the sites
// that may embed it.
func (WebChat) Spec() provider.Spec {
	return provider.Spec{
		Type:       "webchat",
		Optional:   []string{"allowed_origins", "welcome_text", "locale", "color", "pre_chat_form"},
		Secret:     []string{"identity_secret"},
		Defaults:   map[string]string{"locale": "en", "pre_chat_form": "name,email"},
		Identities: []string{provider.IdentityVisitor},
	}
}

// Validate checks the origins and the locale.
func (WebChat) Validate(cfg map[string]string) error {
	for _, o := range strings.Fields(strings.ReplaceAll(cfg["allowed_origins"], ",", " ")) {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return errors.New("allowed_origins must be origins such as https://www.example.com, separated by commas")
		}
	}
	switch cfg["locale"] {
	case "", "en", "zh-CN":
	default:
		return errors.New("locale must be en or zh-CN")
	}
	return nil
}

// Setup has nothing to register.
func (WebChat) Setup(context.Context, provider.Channel) error { return nil }

// Webhook is not how the widget talks.
func (WebChat) Webhook(context.Context, provider.Channel, provider.Request) (provider.Batch, error) {
	return provider.Batch{}, provider.ErrUnsupported
}

// Send has nothing to call: the stored reply is what the widget shows.
func (WebChat) Send(context.Context, provider.Channel, provider.Outbound) (provider.Sent, error) {
	return provider.Sent{}, nil
}
