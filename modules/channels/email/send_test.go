package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

var sendNow = time.Date(2026, 3, 2, 9, 15, 0, 0, time.FixedZone("CST", 8*3600))

func emailChannel(f *fakeSMTP, mode string, extra map[string]string) provider.Channel {
	cfg := map[string]string{
		KeyAddress: "support@acme.test", KeyFromName: "Acme Support",
		KeySMTPHost: "127.0.0.1", KeySMTPPort: f.port, KeySMTPTLS: mode,
		KeySMTPUsername: "support@acme.test", KeySMTPPassword: "s3cret",
	}
	for k, v := range extra {
		cfg[k] = v
	}
	return provider.Channel{ID: uuid.New(), Type: Type, Name: "Support", Config: cfg}
}

func reply(text string) provider.Outbound {
	return provider.Outbound{
		MessageID:  uuid.MustParse("0b0c6a1e-1111-4222-8333-944455556666"),
		To:         []provider.Identity{{Kind: provider.IdentityEmail, Value: "li.lei@example.com"}},
		ToName:     "李雷",
		Text:       text,
		Subject:    "订单 42 still missing",
		InReplyTo:  "CAB-2@mail.example.com",
		References: []string{"<CAB-1@mail.example.com>"},
	}
}

// readMail parses a sent message with go-message: its header and its parts' decoded bodies.
func readMail(t *testing.T, raw []byte) (gomail.Header, []*message.Entity, [][]byte) {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("sent message does not parse: %v\n%s", err, raw)
	}
	var parts []*message.Entity
	var bodies [][]byte
	err = e.Walk(func(_ []int, p *message.Entity, err error) error {
		if err != nil {
			return err
		}
		if mt, _, _ := p.Header.ContentType(); strings.HasPrefix(mt, "multipart/") {
			return nil
		}
		b, err := io.ReadAll(p.Body)
		parts, bodies = append(parts, p), append(bodies, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return gomail.Header{Header: e.Header}, parts, bodies
}

func TestSendStartTLSThreadedReply(t *testing.T) {
	serverTLS, pool := testCA(t)
	f := newFakeSMTP(t, fakeSMTPOptions{tls: serverTLS})
	p := New(Options{Now: func() time.Time { return sendNow }, TLSConfig: &tls.Config{RootCAs: pool}})
	ch := emailChannel(f, TLSStartTLS, nil)

	sent, err := p.Send(context.Background(), ch, reply("Hello 李雷,\n\nyour parcel left today. A long line that quoted-printable has to wrap because it is longer than 76 characters.\n-- \nAcme"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if sent.ProviderID != "0b0c6a1e-1111-4222-8333-944455556666@acme.test" {
		t.Errorf("ProviderID = %q", sent.ProviderID)
	}
	got := f.messages()
	if len(got) != 1 {
		t.Fatalf("server got %d messages", len(got))
	}
	d := got[0]
	if !d.tls || d.user != "support@acme.test" || d.pass != "s3cret" || d.helo != "acme.test" {
		t.Errorf("session: tls %v, auth %q/%q, helo %q", d.tls, d.user, d.pass, d.helo)
	}
	if d.from != "support@acme.test" || !reflect.DeepEqual(d.rcpts, []string{"li.lei@example.com"}) {
		t.Errorf("envelope from %q to %q", d.from, d.rcpts)
	}

	h, parts, bodies := readMail(t, d.data)
	want := map[string]string{
		"Message-Id":                "<0b0c6a1e-1111-4222-8333-944455556666@acme.test>",
		"In-Reply-To":               "<CAB-2@mail.example.com>",
		"References":                "<CAB-1@mail.example.com> <CAB-2@mail.example.com>",
		"Date":                      "Mon, 02 Mar 2026 09:15:00 +0800",
		"Mime-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"Auto-Submitted":            "",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if s, _ := h.Subject(); s != "Re: 订单 42 still missing" {
		t.Errorf("Subject = %q", s)
	}
	from, _ := h.AddressList("From")
	to, _ := h.AddressList("To")
	if len(from) != 1 || from[0].Name != "Acme Support" || from[0].Address != "support@acme.test" {
		t.Errorf("From = %q (%v)", h.Get("From"), from)
	}
	if len(to) != 1 || to[0].Name != "李雷" || to[0].Address != "li.lei@example.com" {
		t.Errorf("To = %q (%v)", h.Get("To"), to)
	}
	if len(parts) != 1 {
		t.Fatalf("%d parts", len(parts))
	}
	wantBody := "Hello 李雷,\r\n\r\nyour parcel left today. A long line that quoted-printable has to wrap because it is longer than 76 characters.\r\n-- \r\nAcme\r\n"
	if string(bodies[0]) != wantBody {
		t.Errorf("body %q\nwant %q", bodies[0], wantBody)
	}
	for _, line := range strings.Split(string(d.data), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line over 78 octets: %q", line)
		}
	}

	// Our own parser reads the reply back as the customer's mailer would thread it.
	m, err := Parser{}.Parse(d.data)
	if err != nil {
		t.Fatal(err)
	}
	if m.ProviderID != sent.ProviderID || m.InReplyTo != "CAB-2@mail.example.com" ||
		!reflect.DeepEqual(m.References, []string{"CAB-1@mail.example.com", "CAB-2@mail.example.com"}) || m.AutoReply {
		t.Errorf("parsed back: %+v", m)
	}

	// A retry of the same message carries the same Message-ID.
	again, err := p.Send(context.Background(), ch, reply("again"))
	if err != nil || again.ProviderID != sent.ProviderID {
		t.Errorf("retry: %v %q", err, again.ProviderID)
	}
}

func TestSendImplicitTLSWithAttachments(t *testing.T) {
	serverTLS, pool := testCA(t)
	f := newFakeSMTP(t, fakeSMTPOptions{implicitTLS: true, tls: serverTLS})
	p := New(Options{Now: func() time.Time { return sendNow }, TLSConfig: &tls.Config{RootCAs: pool}})
	ch := emailChannel(f, TLSImplicit, nil)
	out := reply("See the label attached.")
	out.Subject = "RE: Label"
	pdf := []byte("%PDF-1.4\x00\xff binary")
	out.Attachments = []provider.OutAttachment{
		{Filename: "退货标签.pdf", ContentType: "application/pdf", Data: pdf},
		{Filename: "", ContentType: "not a type", Data: []byte("x")},
	}
	if _, err := p.Send(context.Background(), ch, out); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := f.messages()
	if len(got) != 1 || !got[0].tls {
		t.Fatalf("got %+v", got)
	}
	h, parts, bodies := readMail(t, got[0].data)
	if s, _ := h.Subject(); s != "RE: Label" {
		t.Errorf("Subject %q: an existing reply prefix is kept", s)
	}
	if mt, _, _ := h.ContentType(); mt != "multipart/mixed" {
		t.Errorf("Content-Type %q", mt)
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	if mt, params, _ := parts[0].Header.ContentType(); mt != "text/plain" || params["charset"] != "utf-8" || string(bodies[0]) != "See the label attached.\r\n" {
		t.Errorf("text part %s %v %q", mt, params, bodies[0])
	}
	ah := gomail.AttachmentHeader{Header: parts[1].Header}
	name, _ := ah.Filename()
	if mt, _, _ := ah.ContentType(); mt != "application/pdf" || name != "退货标签.pdf" || !bytes.Equal(bodies[1], pdf) {
		t.Errorf("attachment %s %q %q", mt, name, bodies[1])
	}
	ah = gomail.AttachmentHeader{Header: parts[2].Header}
	name, _ = ah.Filename()
	if mt, _, _ := ah.ContentType(); mt != "application/octet-stream" || name != "attachment-2" {
		t.Errorf("second attachment %s %q", mt, name)
	}
}

func TestSendPlainToLoopback(t *testing.T) {
	f := newFakeSMTP(t, fakeSMTPOptions{})
	p := New(Options{Now: func() time.Time { return sendNow }})
	out := reply("hi")
	out.Subject, out.InReplyTo, out.References, out.ToName = "", "", nil, ""
	if _, err := p.Send(context.Background(), emailChannel(f, TLSNone, map[string]string{KeyFromName: ""}), out); err != nil {
		t.Fatalf("Send: %v", err)
	}
	d := f.messages()[0]
	h, _, _ := readMail(t, d.data)
	if d.tls || h.Get("From") != "<support@acme.test>" || h.Get("In-Reply-To") != "" || h.Get("References") != "" || h.Get("Subject") != "" {
		t.Errorf("tls %v From %q In-Reply-To %q References %q Subject %q", d.tls, h.Get("From"), h.Get("In-Reply-To"), h.Get("References"), h.Get("Subject"))
	}

	// Without credentials nothing is authenticated.
	f2 := newFakeSMTP(t, fakeSMTPOptions{})
	ch := emailChannel(f2, TLSNone, map[string]string{KeySMTPUsername: "", KeySMTPPassword: ""})
	if _, err := p.Send(context.Background(), ch, out); err != nil {
		t.Fatal(err)
	}
	if d := f2.messages()[0]; d.user != "" {
		t.Errorf("authenticated as %q", d.user)
	}
}

func TestSendErrors(t *testing.T) {
	serverTLS, pool := testCA(t)
	p := New(Options{Now: func() time.Time { return sendNow }, TLSConfig: &tls.Config{RootCAs: pool}})
	refused, _ := net.Listen("tcp", "127.0.0.1:0")
	_, closedPort, _ := net.SplitHostPort(refused.Addr().String())
	refused.Close()

	cases := []struct {
		name      string
		setup     func(f *fakeSMTP) provider.Channel
		out       func(o *provider.Outbound)
		permanent bool
		status    int
	}{
		{name: "550 at RCPT is permanent", permanent: true, status: 550, setup: func(f *fakeSMTP) provider.Channel {
			f.fail(&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, nil)
			return emailChannel(f, TLSStartTLS, nil)
		}},
		{name: "451 at DATA is retryable", status: 451, setup: func(f *fakeSMTP) provider.Channel {
			f.fail(nil, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"})
			return emailChannel(f, TLSStartTLS, nil)
		}},
		{name: "421 greylisting is retryable", status: 421, setup: func(f *fakeSMTP) provider.Channel {
			f.fail(&smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "greylisted"}, nil)
			return emailChannel(f, TLSStartTLS, nil)
		}},
		{name: "wrong password 535 is permanent", permanent: true, status: 535, setup: func(f *fakeSMTP) provider.Channel {
			return emailChannel(f, TLSStartTLS, map[string]string{KeySMTPPassword: "wrong"})
		}},
		{name: "connection refused is retryable", setup: func(f *fakeSMTP) provider.Channel {
			return emailChannel(f, TLSStartTLS, map[string]string{KeySMTPPort: closedPort})
		}},
		{name: "no STARTTLS offered: nothing sent in clear, retryable", setup: func(*fakeSMTP) provider.Channel {
			plain := newFakeSMTP(t, fakeSMTPOptions{})
			return emailChannel(plain, TLSStartTLS, nil)
		}},
		{name: "untrusted certificate is retryable", setup: func(f *fakeSMTP) provider.Channel {
			return emailChannel(f, TLSStartTLS, nil)
		}, out: nil},
		{name: "credentials over plain text to a remote host are refused", permanent: true, setup: func(f *fakeSMTP) provider.Channel {
			return emailChannel(f, TLSNone, map[string]string{KeySMTPHost: "192.0.2.1"})
		}},
		{name: "no smtp_host", permanent: true, setup: func(f *fakeSMTP) provider.Channel {
			return emailChannel(f, TLSStartTLS, map[string]string{KeySMTPHost: ""})
		}},
		{name: "no e-mail identity", permanent: true, setup: func(f *fakeSMTP) provider.Channel {
			return emailChannel(f, TLSStartTLS, nil)
		}, out: func(o *provider.Outbound) {
			o.To = []provider.Identity{{Kind: provider.IdentityPhone, Value: "+8613800000000"}}
		}},
		{name: "no message id", permanent: true, setup: func(f *fakeSMTP) provider.Channel {
			return emailChannel(f, TLSStartTLS, nil)
		}, out: func(o *provider.Outbound) { o.MessageID = uuid.Nil }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeSMTP(t, fakeSMTPOptions{tls: serverTLS})
			ch := c.setup(f)
			out := reply("x")
			if c.out != nil {
				c.out(&out)
			}
			pp := p
			if c.name == "untrusted certificate is retryable" {
				pp = New(Options{})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := pp.Send(ctx, ch, out)
			var se *provider.SendError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a SendError", err)
			}
			if se.Permanent != c.permanent || provider.Permanent(err) != c.permanent || se.Status != c.status {
				t.Errorf("err = %v: permanent %v status %d, want %v %d", err, se.Permanent, se.Status, c.permanent, c.status)
			}
			if len(f.messages()) != 0 {
				t.Errorf("a message was accepted")
			}
		})
	}
}

func TestSendContextCancelled(t *testing.T) {
	// A server that accepts the connection and never greets: the context ends the attempt.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ch := provider.Channel{Config: map[string]string{KeyAddress: "support@acme.test", KeySMTPHost: "127.0.0.1", KeySMTPPort: port, KeySMTPTLS: TLSNone}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = New(Options{}).Send(ctx, ch, reply("x"))
	if err == nil || provider.Permanent(err) || time.Since(start) > 5*time.Second {
		t.Errorf("err %v after %v", err, time.Since(start))
	}
}

func TestReplySubject(t *testing.T) {
	for in, want := range map[string]string{
		"Order 42":        "Re: Order 42",
		"Re: Order 42":    "Re: Order 42",
		"RE: Order 42":    "RE: Order 42",
		"re:Order":        "re:Order",
		"回复：订单":           "回复：订单",
		"  spaced\r\n x ": "Re: spaced x",
		"":                "",
		"Return policy":   "Re: Return policy",
	} {
		if got := replySubject(in); got != want {
			t.Errorf("replySubject(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReferences(t *testing.T) {
	got := references([]string{"<a@x>", "b@x", "a@x", "bad id@x", ""}, "<c@x>")
	if want := []string{"a@x", "b@x", "c@x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("references = %q, want %q", got, want)
	}
	if got := references(nil, "b@x"); !reflect.DeepEqual(got, []string{"b@x"}) {
		t.Errorf("references = %q", got)
	}
}
