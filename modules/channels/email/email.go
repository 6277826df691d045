// Package email is the e-mail channel type: customers write to a support address, their mail
// reaches Switchboard through the built-in SMTP receiver (the address's MX points at it) or by
// polling the mailbox over IMAP, and agent replies leave through the channel's SMTP server with
// Message-ID/In-Reply-To/References set so the customer's answer joins the same conversation.
//
// The package knows nothing of storage: Parse turns a raw RFC 5322 message into a
// provider.InboundMessage, the Receiver and Poll hand raw messages to a callback, and the
// Provider sends replies.
package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// Type is the channel type.
const Type = "email"

// Configuration keys.
const (
	KeyAddress      = "address"
	KeyFromName     = "from_name"
	KeySMTPHost     = "smtp_host"
	KeySMTPPort     = "smtp_port"
	KeySMTPUsername = "smtp_username"
	KeySMTPPassword = "smtp_password"
	KeySMTPTLS      = "smtp_tls"
	KeyIMAPHost     = "imap_host"
	KeyIMAPPort     = "imap_port"
	KeyIMAPUsername = "imap_username"
	KeyIMAPPassword = "imap_password"
	KeyIMAPTLS      = "imap_tls"
	KeyIMAPMailbox  = "imap_mailbox"
)

// TLS modes of smtp_tls and imap_tls.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS, which must be offered
	TLSImplicit = "tls"      // TLS from the first byte (SMTPS 465, IMAPS 993)
	TLSNone     = "none"     // no encryption: only for relays on a trusted network
)

// DefaultMaxMessageBytes bounds a message's raw size when the caller sets no limit; 25 MiB is
// what the large mailbox providers accept.
const DefaultMaxMessageBytes = 25 << 20

// Options are the Provider's dependencies; the zero value is usable.
type Options struct {
	// Now is the clock (Date headers of outbound mail, the fallback time of inbound mail).
	Now func() time.Time
	// TLSConfig is the base TLS configuration for SMTP and IMAP connections (RootCAs of a
	// private CA); ServerName is set to the configured host.
	TLSConfig *tls.Config
	// Dialer makes the TCP connections; nil means a dialer with a 30 s timeout.
	Dialer *net.Dialer
	// MaxMessageBytes bounds inbound messages Parse and Poll accept (DefaultMaxMessageBytes
	// when 0).
	MaxMessageBytes int64
}

// Provider is the e-mail channel adapter.
type Provider struct {
	now     func() time.Time
	tls     *tls.Config
	dialer  *net.Dialer
	maxSize int64
}

var _ provider.Provider = (*Provider)(nil)

// New returns the e-mail adapter.
func New(opts Options) *Provider {
	p := &Provider{now: opts.Now, tls: opts.TLSConfig, dialer: opts.Dialer, maxSize: opts.MaxMessageBytes}
	if p.now == nil {
		p.now = time.Now
	}
	if p.dialer == nil {
		p.dialer = &net.Dialer{Timeout: 30 * time.Second}
	}
	if p.maxSize <= 0 {
		p.maxSize = DefaultMaxMessageBytes
	}
	return p
}

// Parser returns the parser matching the provider's clock and size limit.
func (p *Provider) Parser() Parser { return Parser{MaxBytes: p.maxSize, Now: p.now} }

// Parse parses an inbound message with the provider's clock and size limit.
func (p *Provider) Parse(raw []byte) (provider.InboundMessage, error) { return p.Parser().Parse(raw) }

// Spec implements provider.Provider.
func (p *Provider) Spec() provider.Spec {
	return provider.Spec{
		Type:     Type,
		Required: []string{KeyAddress},
		Optional: []string{KeyFromName,
			KeySMTPHost, KeySMTPPort, KeySMTPUsername, KeySMTPPassword, KeySMTPTLS,
			KeyIMAPHost, KeyIMAPPort, KeyIMAPUsername, KeyIMAPPassword, KeyIMAPTLS, KeyIMAPMailbox},
		Secret:     []string{KeySMTPPassword, KeyIMAPPassword},
		Defaults:   map[string]string{KeySMTPTLS: TLSStartTLS, KeyIMAPTLS: TLSImplicit, KeyIMAPMailbox: "INBOX"},
		Identities: []string{provider.IdentityEmail},
	}
}

// Validate implements provider.Provider.
func (p *Provider) Validate(cfg map[string]string) error {
	if _, err := supportAddress(cfg[KeyAddress]); err != nil {
		return err
	}
	if strings.ContainsAny(cfg[KeyFromName], "\r\n") {
		return errors.New("from_name must be one line")
	}
	for _, side := range []string{"smtp", "imap"} {
		host, port, mode := cfg[side+"_host"], cfg[side+"_port"], cfg[side+"_tls"]
		if host != "" && (strings.ContainsAny(host, " /:\r\n") && net.ParseIP(host) == nil) {
			return fmt.Errorf("%s_host must be a host name or IP address without a port", side)
		}
		if port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("%s_port must be a port number", side)
			}
		}
		switch mode {
		case "", TLSStartTLS, TLSImplicit, TLSNone:
		default:
			return fmt.Errorf("%s_tls must be starttls, tls or none", side)
		}
		if (cfg[side+"_username"] == "") != (cfg[side+"_password"] == "") {
			return fmt.Errorf("%s_username and %s_password go together", side, side)
		}
		if mode == TLSNone && cfg[side+"_username"] != "" && !isLoopback(host) {
			return fmt.Errorf("%s_tls none would send the password unencrypted: use starttls or tls", side)
		}
	}
	if cfg[KeyIMAPHost] != "" && cfg[KeyIMAPUsername] == "" {
		return errors.New("imap_username and imap_password are needed to poll a mailbox")
	}
	return nil
}

// Setup implements provider.Provider; an e-mail channel needs nothing set up at the provider.
func (p *Provider) Setup(context.Context, provider.Channel) error { return nil }

// Webhook implements provider.Provider: mail arrives through the Receiver or Poll, never a
// webhook.
func (p *Provider) Webhook(context.Context, provider.Channel, provider.Request) (provider.Batch, error) {
	return provider.Batch{}, fmt.Errorf("email: inbound mail comes through SMTP or IMAP: %w", provider.ErrUnsupported)
}

// supportAddress checks the channel's address: a bare addr-spec with a domain, which becomes
// the From of replies and the right-hand side of their Message-IDs.
func supportAddress(s string) (*mail.Address, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("address is required")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || !strings.EqualFold(a.Address, s) {
		return nil, fmt.Errorf("address %q must be a plain e-mail address like support@example.com", s)
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at < 1 || !strings.Contains(a.Address[at+1:], ".") && a.Address[at+1:] != "localhost" {
		return nil, fmt.Errorf("address %q needs a domain", s)
	}
	return a, nil
}

func domainOf(addr string) string {
	return strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
}

// endpoint returns host:port and TLS mode of cfg's smtp or imap side, the port defaulting to
// the well-known one of the mode.
func endpoint(cfg map[string]string, side string) (host, addr, mode string, err error) {
	host = strings.TrimSpace(cfg[side+"_host"])
	if host == "" {
		return "", "", "", fmt.Errorf("email: %s_host is not configured", side)
	}
	mode = cfg[side+"_tls"]
	if mode == "" {
		mode = map[string]string{"smtp": TLSStartTLS, "imap": TLSImplicit}[side]
	}
	port := cfg[side+"_port"]
	if port == "" {
		port = map[string]string{
			"smtp/" + TLSStartTLS: "587", "smtp/" + TLSImplicit: "465", "smtp/" + TLSNone: "25",
			"imap/" + TLSStartTLS: "143", "imap/" + TLSImplicit: "993", "imap/" + TLSNone: "143",
		}[side+"/"+mode]
		if port == "" {
			return "", "", "", fmt.Errorf("email: %s_tls %q is not starttls, tls or none", side, mode)
		}
	}
	return host, net.JoinHostPort(host, port), mode, nil
}

func (p *Provider) tlsConfig(host string) *tls.Config {
	c := &tls.Config{}
	if p.tls != nil {
		c = p.tls.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = host
	}
	return c
}

// isLoopback reports whether host is this machine, the one place credentials may travel
// without TLS (the rule net/smtp's PlainAuth applies).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
