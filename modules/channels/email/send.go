package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// sendTimeout bounds one delivery when the context has no deadline.
const sendTimeout = 2 * time.Minute

// Send implements provider.Provider: it writes the reply as a MIME message threaded onto the
// customer's mail and submits it to the channel's SMTP server. Its Message-ID derives from
// out.MessageID, so a retried send carries the same id and the customer's answer to either
// copy finds the conversation.
func (p *Provider) Send(ctx context.Context, ch provider.Channel, out provider.Outbound) (provider.Sent, error) {
	from, err := supportAddress(ch.Config[KeyAddress])
	if err != nil {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: err.Error()}
	}
	to := ""
	for _, id := range out.To {
		if id.Kind == provider.IdentityEmail && id.Value != "" {
			to = id.Value
			break
		}
	}
	rcpt, err := mail.ParseAddress(to)
	if err != nil {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: fmt.Sprintf("no valid e-mail address to reply to (%q)", to)}
	}
	to = rcpt.Address
	msgID, raw, err := p.compose(ch, from.Address, to, out)
	if err != nil {
		return provider.Sent{}, &provider.SendError{Permanent: true, Reason: err.Error()}
	}
	if err := p.submit(ctx, ch.Config, from.Address, to, raw); err != nil {
		return provider.Sent{}, classify(err)
	}
	return provider.Sent{ProviderID: msgID}, nil
}

// compose builds the RFC 5322 message of a reply and returns its Message-ID (without angle
// brackets) and bytes.
func (p *Provider) compose(ch provider.Channel, fromAddr, to string, out provider.Outbound) (string, []byte, error) {
	if out.MessageID == uuid.Nil {
		return "", nil, errors.New("outbound message has no id to build its Message-ID from")
	}
	msgID := out.MessageID.String() + "@" + domainOf(fromAddr)

	// go-message puts each new field first, so they are set in reverse of the order a reader
	// expects to see them.
	var h gomail.Header
	if refs := references(out.References, out.InReplyTo); len(refs) > 0 {
		h.SetMsgIDList("References", refs)
	}
	if irt := cleanID(out.InReplyTo); irt != "" {
		h.SetMsgIDList("In-Reply-To", []string{irt})
	}
	h.SetMessageID(msgID)
	h.SetDate(p.now())
	h.SetSubject(replySubject(out.Subject))
	h.SetAddressList("To", []*mail.Address{{Name: oneLine(out.ToName), Address: to}})
	h.SetAddressList("From", []*mail.Address{{Name: oneLine(ch.Config[KeyFromName]), Address: fromAddr}})
	// No Auto-Submitted: an agent's reply is written by a person, and marking it automatic
	// would make the customer's vacation responder (rightly) stay silent and some filters
	// discard it.

	var buf bytes.Buffer
	body := normaliseNewlines(out.Text)
	var th gomail.InlineHeader
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	if len(out.Attachments) == 0 {
		h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		w, err := gomail.CreateSingleInlineWriter(&buf, h)
		if err != nil {
			return "", nil, err
		}
		if _, err := io.WriteString(w, body); err != nil {
			return "", nil, err
		}
		if err := w.Close(); err != nil {
			return "", nil, err
		}
		return msgID, buf.Bytes(), nil
	}

	mw, err := gomail.CreateWriter(&buf, h)
	if err != nil {
		return "", nil, err
	}
	tw, err := mw.CreateSingleInline(th)
	if err != nil {
		return "", nil, err
	}
	if _, err := io.WriteString(tw, body); err != nil {
		return "", nil, err
	}
	if err := tw.Close(); err != nil {
		return "", nil, err
	}
	for i, a := range out.Attachments {
		var ah gomail.AttachmentHeader
		ct := a.ContentType
		if _, _, err := mime.ParseMediaType(ct); err != nil || ct == "" {
			ct = "application/octet-stream"
		}
		name := oneLine(a.Filename)
		if name == "" {
			name = fmt.Sprintf("attachment-%d", i+1)
		}
		ah.SetContentType(ct, map[string]string{"name": name})
		ah.SetFilename(name)
		aw, err := mw.CreateAttachment(ah)
		if err != nil {
			return "", nil, err
		}
		if _, err := aw.Write(a.Data); err != nil {
			return "", nil, err
		}
		if err := aw.Close(); err != nil {
			return "", nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return "", nil, err
	}
	return msgID, buf.Bytes(), nil
}

// replySubject prefixes "Re: " unless the subject already is a reply.
func replySubject(s string) string {
	s = strings.TrimSpace(oneLine(s))
	if s == "" {
		return ""
	}
	l := strings.ToLower(s)
	for _, prefix := range []string{"re:", "re :", "回复:", "回复：", "答复:", "答复："} {
		if strings.HasPrefix(l, prefix) {
			return s
		}
	}
	return "Re: " + s
}

// references is the thread's References plus the message answered, without duplicates: RFC
// 5322 3.6.4 builds a reply's References from the parent's References and its Message-ID.
func references(refs []string, inReplyTo string) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range append(append([]string(nil), refs...), inReplyTo) {
		if r = cleanID(r); r != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// cleanID strips angle brackets from a message id and refuses one that could break the
// header it goes into.
func cleanID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	if id == "" || strings.ContainsAny(id, "<> \t\r\n") {
		return ""
	}
	return id
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(strings.ReplaceAll(s, "\r", " "), "\n", " ")), " ")
}

// normaliseNewlines leaves "\n" line ends (the quoted-printable writer turns them into CRLF)
// and ends the text with one, as the last line of a message should.
func normaliseNewlines(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

// submit hands a message to the channel's SMTP server.
func (p *Provider) submit(ctx context.Context, cfg map[string]string, from, to string, raw []byte) error {
	host, addr, mode, err := endpoint(cfg, "smtp")
	if err != nil {
		return permanent{err}
	}
	if cfg[KeySMTPUsername] != "" && mode == TLSNone && !isLoopback(host) {
		return permanent{errors.New("smtp_tls none: credentials are never sent unencrypted")}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, sendTimeout)
		defer cancel()
	}
	conn, err := p.dial(ctx, addr, host, mode == TLSImplicit)
	if err != nil {
		return err
	}
	// The SMTP client has no context; closing the connection is how a cancelled or expired
	// context stops it.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}

	var c *smtp.Client
	if mode == TLSStartTLS {
		c, err = smtp.NewClientStartTLS(conn, p.tlsConfig(host))
		if err != nil {
			return err
		}
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	if err := c.Hello(domainOf(from)); err != nil {
		return err
	}
	if user := cfg[KeySMTPUsername]; user != "" {
		var auth sasl.Client
		switch {
		case c.SupportsAuth(sasl.Plain):
			auth = sasl.NewPlainClient("", user, cfg[KeySMTPPassword])
		case c.SupportsAuth(sasl.Login):
			auth = sasl.NewLoginClient(user, cfg[KeySMTPPassword])
		default:
			return permanent{errors.New("the SMTP server offers neither AUTH PLAIN nor LOGIN")}
		}
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.SendMail(from, []string{to}, bytes.NewReader(raw)); err != nil {
		return err
	}
	_ = c.Quit() // the message is accepted; a failed QUIT changes nothing
	return nil
}

func (p *Provider) dial(ctx context.Context, addr, host string, implicitTLS bool) (net.Conn, error) {
	conn, err := p.dialer.DialContext(ctx, "tcp", addr)
	if err != nil || !implicitTLS {
		return conn, err
	}
	tc := tls.Client(conn, p.tlsConfig(host))
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// permanent marks a configuration error no retry can fix.
type permanent struct{ error }

// classify turns a delivery error into a SendError: the server's 5xx refusals are permanent,
// its 4xx answers and every network or TLS failure are worth retrying.
func classify(err error) *provider.SendError {
	var pe permanent
	if errors.As(err, &pe) {
		return &provider.SendError{Permanent: true, Reason: pe.Error()}
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		reason := se.Message
		if se.EnhancedCode != smtp.EnhancedCodeNotSet && se.EnhancedCode != smtp.NoEnhancedCode {
			reason = fmt.Sprintf("%d.%d.%d %s", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], reason)
		}
		// Status carries the SMTP reply code: it is what an agent needs to read the failure.
		return &provider.SendError{Permanent: se.Code >= 500, Status: se.Code, Reason: truncate(reason, 500)}
	}
	return &provider.SendError{Reason: truncate(err.Error(), 500)}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
