package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// fakeIMAP is go-imap's in-memory server with one user, "support@acme.test" / "pw".
type fakeIMAP struct {
	user *imapmemserver.User
	port string
}

func newFakeIMAP(t *testing.T, mode string, serverTLS *tls.Config) *fakeIMAP {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("support@acme.test", "pw")
	for _, mb := range []string{"INBOX", "Support"} {
		if err := u.Create(mb, nil); err != nil {
			t.Fatal(err)
		}
	}
	mem.AddUser(u)
	opts := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: mode == TLSNone,
		Logger:       nopLogger{},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case TLSImplicit:
		ln = tls.NewListener(ln, serverTLS)
	case TLSStartTLS:
		opts.TLSConfig = serverTLS
	}
	s := imapserver.New(opts)
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &fakeIMAP{user: u, port: port}
}

type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return int64(l.Len()) }

func (f *fakeIMAP) append(t *testing.T, mailbox string, raw []byte, flags ...imap.Flag) {
	t.Helper()
	if _, err := f.user.Append(mailbox, literal{bytes.NewReader(raw)}, &imap.AppendOptions{Flags: flags, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeIMAP) unseen(t *testing.T, mailbox string) uint32 {
	t.Helper()
	st, err := f.user.Status(mailbox, &imap.StatusOptions{NumUnseen: true})
	if err != nil {
		t.Fatal(err)
	}
	return *st.NumUnseen
}

func (f *fakeIMAP) config(mode string) map[string]string {
	return map[string]string{
		KeyAddress: "support@acme.test", KeyIMAPHost: "127.0.0.1", KeyIMAPPort: f.port, KeyIMAPTLS: mode,
		KeyIMAPUsername: "support@acme.test", KeyIMAPPassword: "pw",
	}
}

// collector is a handle func that records messages and fails for bodies containing a marker
// while failing is set.
type collector struct {
	mu      sync.Mutex
	got     []string
	failing string
}

func (c *collector) handle(raw []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := Parser{}.Parse(raw)
	if err != nil {
		return err
	}
	if c.failing != "" && strings.Contains(m.Text, c.failing) {
		return errors.New("store failed")
	}
	c.got = append(c.got, m.ProviderID)
	return nil
}

func (c *collector) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.got
	c.got = nil
	return got
}

func TestPollMarksSeenOnlyAfterHandle(t *testing.T) {
	serverTLS, pool := testCA(t)
	f := newFakeIMAP(t, TLSImplicit, serverTLS)
	msg := func(id, body string) []byte {
		return TestMessage("li@example.com", "support@acme.test", "s", body, map[string]string{"Message-ID": "<" + id + ">"})
	}
	f.append(t, "INBOX", msg("m1@x", "first"))
	f.append(t, "INBOX", msg("m2@x", "already read by a person"), imap.FlagSeen)
	f.append(t, "INBOX", msg("m3@x", "poison until fixed"))
	f.append(t, "INBOX", msg("m4@x", strings.Repeat("large ", 2000)))
	f.append(t, "INBOX", msg("m5@x", "last"))

	p := New(Options{TLSConfig: &tls.Config{RootCAs: pool}, MaxMessageBytes: 4096})
	c := &collector{failing: "poison"}
	ctx := context.Background()

	n, err := p.Poll(ctx, f.config(TLSImplicit), c.handle)
	if n != 2 || err == nil || !strings.Contains(err.Error(), "store failed") {
		t.Fatalf("first poll: %d, %v", n, err)
	}
	if got := c.take(); strings.Join(got, ",") != "m1@x,m5@x" {
		t.Errorf("handled %q, want m1 and m5 oldest first (m2 was read, m3 failed, m4 too large)", got)
	}
	if u := f.unseen(t, "INBOX"); u != 2 {
		t.Errorf("unseen after first poll = %d, want 2 (m3 failed, m4 too large)", u)
	}

	// The failed message is read again by the next poll, and only it.
	c.failing = ""
	n, err = p.Poll(ctx, f.config(TLSImplicit), c.handle)
	if n != 1 || err == nil || !strings.Contains(err.Error(), "1 unread messages") {
		t.Fatalf("second poll: %d, %v (the oversized message is reported)", n, err)
	}
	if got := c.take(); strings.Join(got, ",") != "m3@x" {
		t.Errorf("handled %q", got)
	}
	if u := f.unseen(t, "INBOX"); u != 1 {
		t.Errorf("unseen = %d, want 1 (m4 stays for a person)", u)
	}

	n, _ = p.Poll(ctx, f.config(TLSImplicit), c.handle)
	if n != 0 || len(c.take()) != 0 {
		t.Errorf("third poll handled %d", n)
	}
}

func TestPollModesAndMailbox(t *testing.T) {
	serverTLS, pool := testCA(t)
	for _, mode := range []string{TLSStartTLS, TLSNone} {
		t.Run(mode, func(t *testing.T) {
			f := newFakeIMAP(t, mode, serverTLS)
			raw := TestMessage("li@example.com", "support@acme.test", "中文", "在 Support 文件夹", map[string]string{"Message-ID": "<s1@x>"})
			f.append(t, "Support", raw)
			f.append(t, "INBOX", TestMessage("li@example.com", "support@acme.test", "s", "inbox", nil))
			var got [][]byte
			cfg := f.config(mode)
			cfg[KeyIMAPMailbox] = "Support"
			n, err := New(Options{TLSConfig: &tls.Config{RootCAs: pool}}).Poll(context.Background(), cfg, func(b []byte) error {
				got = append(got, b)
				return nil
			})
			if err != nil || n != 1 || len(got) != 1 || !bytes.Equal(got[0], raw) {
				t.Fatalf("n %d err %v got %q", n, err, got)
			}
			if f.unseen(t, "Support") != 0 || f.unseen(t, "INBOX") != 1 {
				t.Errorf("flags: Support unseen %d, INBOX unseen %d", f.unseen(t, "Support"), f.unseen(t, "INBOX"))
			}
		})
	}
}

func TestPollErrors(t *testing.T) {
	serverTLS, pool := testCA(t)
	f := newFakeIMAP(t, TLSImplicit, serverTLS)
	f.append(t, "INBOX", TestMessage("li@example.com", "support@acme.test", "s", "b", nil))
	p := New(Options{TLSConfig: &tls.Config{RootCAs: pool}})
	never := func([]byte) error { t.Error("handle called"); return nil }

	cfg := f.config(TLSImplicit)
	cfg[KeyIMAPPassword] = "wrong"
	if n, err := p.Poll(context.Background(), cfg, never); n != 0 || err == nil || !strings.Contains(err.Error(), "login") {
		t.Errorf("wrong password: %d %v", n, err)
	}
	cfg = f.config(TLSImplicit)
	cfg[KeyIMAPMailbox] = "Nope"
	if _, err := p.Poll(context.Background(), cfg, never); err == nil || !strings.Contains(err.Error(), "select") {
		t.Errorf("missing mailbox: %v", err)
	}
	if _, err := New(Options{}).Poll(context.Background(), f.config(TLSImplicit), never); err == nil {
		t.Errorf("untrusted certificate accepted")
	}
	cfg = f.config(TLSNone)
	cfg[KeyIMAPHost] = "192.0.2.1"
	if _, err := p.Poll(context.Background(), cfg, never); err == nil || !strings.Contains(err.Error(), "unencrypted") {
		t.Errorf("plain text to a remote host: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Poll(ctx, f.config(TLSImplicit), never); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if f.unseen(t, "INBOX") != 1 {
		t.Errorf("message marked seen")
	}
}
