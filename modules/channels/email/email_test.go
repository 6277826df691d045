package email

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

func TestSpec(t *testing.T) {
	s := New(Options{}).Spec()
	if s.Type != "email" || !reflect.DeepEqual(s.Required, []string{"address"}) ||
		!reflect.DeepEqual(s.Secret, []string{"smtp_password", "imap_password"}) ||
		!reflect.DeepEqual(s.Identities, []string{provider.IdentityEmail}) {
		t.Errorf("%+v", s)
	}
	if s.Defaults["smtp_tls"] != "starttls" || s.Defaults["imap_mailbox"] != "INBOX" {
		t.Errorf("defaults %v", s.Defaults)
	}
	known := map[string]bool{}
	for _, k := range append(append([]string{}, s.Required...), s.Optional...) {
		known[k] = true
	}
	for _, k := range append(s.Secret, keysOf(s.Defaults)...) {
		if !known[k] {
			t.Errorf("%q is secret or defaulted but not a config key", k)
		}
	}
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestValidate(t *testing.T) {
	base := func(kv ...string) map[string]string {
		cfg := map[string]string{"address": "support@acme.test"}
		for i := 0; i+1 < len(kv); i += 2 {
			cfg[kv[i]] = kv[i+1]
		}
		return cfg
	}
	cases := []struct {
		name string
		cfg  map[string]string
		err  string // substring; "" = valid
	}{
		{"address only", base(), ""},
		{"full", base("from_name", "Acme 客服", "smtp_host", "smtp.acme.test", "smtp_port", "465", "smtp_tls", "tls",
			"smtp_username", "u", "smtp_password", "p", "imap_host", "imap.acme.test", "imap_port", "993", "imap_tls", "tls",
			"imap_username", "u", "imap_password", "p", "imap_mailbox", "Support"), ""},
		{"ip host", base("smtp_host", "10.0.0.5"), ""},
		{"missing address", map[string]string{}, "address is required"},
		{"address with a name", base("address", "Acme <support@acme.test>"), "plain e-mail address"},
		{"not an address", base("address", "support"), "plain e-mail address"},
		{"address without a domain dot", base("address", "support@acme"), "needs a domain"},
		{"two-line from_name", base("from_name", "Acme\r\nBcc: x@y"), "one line"},
		{"port not a number", base("smtp_host", "smtp.acme.test", "smtp_port", "smtp"), "smtp_port"},
		{"port out of range", base("imap_host", "i.acme.test", "imap_port", "70000", "imap_username", "u", "imap_password", "p"), "imap_port"},
		{"host with port", base("smtp_host", "smtp.acme.test:587"), "smtp_host"},
		{"unknown tls mode", base("smtp_tls", "ssl"), "smtp_tls"},
		{"username without password", base("smtp_host", "s.acme.test", "smtp_username", "u"), "go together"},
		{"imap host without login", base("imap_host", "imap.acme.test"), "imap_username"},
		{"password in clear to a remote host", base("smtp_host", "relay.acme.test", "smtp_tls", "none", "smtp_username", "u", "smtp_password", "p"), "unencrypted"},
		{"no password in clear to a relay", base("smtp_host", "relay.acme.test", "smtp_tls", "none"), ""},
		{"password in clear to loopback", base("imap_host", "127.0.0.1", "imap_tls", "none", "imap_username", "u", "imap_password", "p"), ""},
	}
	p := New(Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := p.Validate(c.cfg)
			if c.err == "" && err != nil {
				t.Errorf("unexpected %v", err)
			}
			if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Errorf("err = %v, want %q", err, c.err)
			}
		})
	}
}

func TestWebhookUnsupportedAndSetup(t *testing.T) {
	p := New(Options{})
	if _, err := p.Webhook(context.Background(), provider.Channel{}, provider.Request{}); !errors.Is(err, provider.ErrUnsupported) {
		t.Errorf("Webhook: %v", err)
	}
	if err := p.Setup(context.Background(), provider.Channel{}); err != nil {
		t.Errorf("Setup: %v", err)
	}
}

func TestEndpointDefaults(t *testing.T) {
	cases := []struct{ side, mode, port, want string }{
		{"smtp", "", "", "mx.test:587"},
		{"smtp", "tls", "", "mx.test:465"},
		{"smtp", "none", "", "mx.test:25"},
		{"smtp", "starttls", "2525", "mx.test:2525"},
		{"imap", "", "", "mx.test:993"},
		{"imap", "starttls", "", "mx.test:143"},
	}
	for _, c := range cases {
		cfg := map[string]string{c.side + "_host": "mx.test", c.side + "_tls": c.mode, c.side + "_port": c.port}
		if _, addr, _, err := endpoint(cfg, c.side); err != nil || addr != c.want {
			t.Errorf("%+v: %q %v", c, addr, err)
		}
	}
}
