package email

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/smtp"
	"net/textproto"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

type inbox struct {
	mu    sync.Mutex
	got   []received
	fail  error
	block chan struct{} // when set, deliver waits on it or on ctx
}

type received struct {
	rcpts []string
	raw   []byte
}

func (b *inbox) deliver(ctx context.Context, rcpts []string, raw []byte) error {
	b.mu.Lock()
	fail, block := b.fail, b.block
	b.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, received{rcpts, raw})
	return nil
}

func (b *inbox) messages() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.got...)
}

func startReceiver(t *testing.T, b *inbox, opts ReceiverOptions) (*Receiver, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := NewReceiver(b.deliver, opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan error, 1)
	go func() { done <- r.Serve(ln) }()
	t.Cleanup(func() {
		r.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after Close", err)
		}
	})
	return r, ln.Addr().String()
}

// smtpCode is the reply code of a net/smtp error.
func smtpCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func known(addrs ...string) func(context.Context, string) (bool, error) {
	return func(_ context.Context, rcpt string) (bool, error) {
		for _, a := range addrs {
			if a == rcpt {
				return true, nil
			}
		}
		return false, nil
	}
}

func TestReceiverDelivers(t *testing.T) {
	b := &inbox{}
	_, addr := startReceiver(t, b, ReceiverOptions{Domain: "mx.switchboard.test", Accepts: known("support@acme.test", "sales@acme.test")})
	raw := TestMessage("Li Lei <li@example.com>", "support@acme.test", "订单", "你好", map[string]string{"Message-ID": "<m1@example.com>"})
	if err := smtp.SendMail(addr, nil, "li@example.com", []string{"Support@ACME.test", "sales@acme.test", "support@acme.test"}, raw); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	got := b.messages()
	if len(got) != 1 {
		t.Fatalf("delivered %d", len(got))
	}
	if want := []string{"support@acme.test", "sales@acme.test"}; !reflect.DeepEqual(got[0].rcpts, want) {
		t.Errorf("rcpts = %q, want %q (lower-cased, once each)", got[0].rcpts, want)
	}
	if !bytes.HasPrefix(got[0].raw, []byte("Return-Path: <li@example.com>\r\n")) || !bytes.HasSuffix(got[0].raw, raw) {
		t.Errorf("raw = %q", got[0].raw)
	}
	m, err := Parser{}.Parse(got[0].raw)
	if err != nil || m.ProviderID != "m1@example.com" || m.Text != "你好" || m.Subject != "订单" || m.AutoReply {
		t.Errorf("parsed %+v %v", m, err)
	}
}

func TestReceiverBounceHasNullReturnPath(t *testing.T) {
	b := &inbox{}
	_, addr := startReceiver(t, b, ReceiverOptions{})
	raw := TestMessage("Mail Delivery Subsystem <mailer-daemon@mx.example.com>", "support@acme.test", "Undelivered", "bounce", nil)
	if err := smtp.SendMail(addr, nil, "", []string{"support@acme.test"}, raw); err != nil {
		t.Fatal(err)
	}
	got := b.messages()
	if len(got) != 1 || !bytes.HasPrefix(got[0].raw, []byte("Return-Path: <>\r\n")) {
		t.Fatalf("%q", got)
	}
	if m, _ := (Parser{}).Parse(got[0].raw); !m.AutoReply {
		t.Errorf("a bounce must be AutoReply")
	}
}

func TestReceiverRefusals(t *testing.T) {
	cases := []struct {
		name  string
		opts  ReceiverOptions
		fail  error
		rcpts []string
		body  []byte
		code  int
	}{
		{name: "unknown recipient at RCPT", opts: ReceiverOptions{Accepts: known("support@acme.test")},
			rcpts: []string{"nobody@acme.test"}, code: 550},
		{name: "recipient check fails: try later", opts: ReceiverOptions{Accepts: func(context.Context, string) (bool, error) {
			return false, errors.New("database down")
		}}, rcpts: []string{"support@acme.test"}, code: 451},
		{name: "deliver error: try later", fail: errors.New("database down"), rcpts: []string{"support@acme.test"}, code: 451},
		{name: "deliver says unknown recipient: refused", fail: fmt.Errorf("no channel: %w", ErrUnknownRecipient), rcpts: []string{"x@acme.test"}, code: 550},
		{name: "message too large", opts: ReceiverOptions{MaxMessageBytes: 2048}, rcpts: []string{"support@acme.test"},
			body: TestMessage("a@example.com", "support@acme.test", "big", strings.Repeat("0123456789", 500), nil), code: 552},
		{name: "too many recipients", opts: ReceiverOptions{MaxRecipients: 2}, rcpts: []string{"a@acme.test", "b@acme.test", "c@acme.test"}, code: 452},
		{name: "recipient without domain", rcpts: []string{"postmaster"}, code: 501},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := &inbox{fail: c.fail}
			_, addr := startReceiver(t, b, c.opts)
			body := c.body
			if body == nil {
				body = TestMessage("a@example.com", c.rcpts[0], "s", "b", nil)
			}
			err := smtp.SendMail(addr, nil, "a@example.com", c.rcpts, body)
			if smtpCode(err) != c.code {
				t.Errorf("err = %v, want code %d", err, c.code)
			}
			if n := len(b.messages()); n != 0 {
				t.Errorf("%d delivered", n)
			}
		})
	}
}

func TestReceiverPartialRecipients(t *testing.T) {
	// An unknown address among known ones is refused alone; the message still reaches the rest.
	b := &inbox{}
	_, addr := startReceiver(t, b, ReceiverOptions{Accepts: known("support@acme.test")})
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("nobody@acme.test"); smtpCode(err) != 550 || !strings.Contains(err.Error(), "5.1.1") {
		t.Errorf("unknown rcpt: %v", err)
	}
	if err := c.Rcpt("support@acme.test"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(TestMessage("a@example.com", "support@acme.test", "s", "b", nil))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if got := b.messages(); len(got) != 1 || !reflect.DeepEqual(got[0].rcpts, []string{"support@acme.test"}) {
		t.Errorf("%+v", got)
	}
}

func TestReceiverCloseCancelsDelivery(t *testing.T) {
	b := &inbox{block: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := NewReceiver(b.deliver, ReceiverOptions{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	served := make(chan error, 1)
	go func() { served <- r.Serve(ln) }()
	sent := make(chan error, 1)
	go func() {
		sent <- smtp.SendMail(ln.Addr().String(), nil, "a@example.com", []string{"support@acme.test"},
			TestMessage("a@example.com", "support@acme.test", "s", "b", nil))
	}()
	time.Sleep(100 * time.Millisecond) // the message is now waiting in deliver
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err == nil {
		t.Errorf("the sender got no error although nothing was delivered")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if len(b.messages()) != 0 {
		t.Errorf("delivered")
	}
}
