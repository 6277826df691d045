package mailin_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"golang.org/x/text/encoding/simplifiedchinese"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/channels/email"
	"github.com/switchboard-cloud/switchboard/modules/mailin"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// mailEnv is an app with fast retries, on a real Redis when the dialect is PostgreSQL and
// TEST_REDIS_URL is set, with its worker running.
func mailEnv(t *testing.T, d tenant.Dialect) *apptest.Env {
	t.Helper()
	env := map[string]string{"SWITCHBOARD_QUEUE_RETRY_BASE": "10ms"}
	if u := os.Getenv("TEST_REDIS_URL"); u != "" && d == tenant.Postgres {
		env["REDIS_URL"] = apptest.ClaimRedis(t, u)
	}
	e := apptest.New(t, d, apptest.Options{Env: env})
	w, mux, err := e.App.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return e
}

// captured is one message the fake outbound SMTP server accepted.
type captured struct {
	from  string
	rcpts []string
	data  []byte
}

// smtpCapture is a real go-smtp server standing for the channel's outbound relay.
type smtpCapture struct {
	host, port string
	mu         sync.Mutex
	got        []captured
}

func newCapture(t *testing.T) *smtpCapture {
	t.Helper()
	c := &smtpCapture{}
	s := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return &captureSession{c: c}, nil }))
	s.Domain = "relay.test"
	s.ErrorLog = nopLogger{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	c.host, c.port, _ = net.SplitHostPort(ln.Addr().String())
	return c
}

func (c *smtpCapture) messages() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]captured(nil), c.got...)
}

type captureSession struct {
	c   *smtpCapture
	cur captured
}

func (s *captureSession) Mail(from string, _ *gosmtp.MailOptions) error {
	s.cur = captured{from: from}
	return nil
}

func (s *captureSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.cur.rcpts = append(s.cur.rcpts, to)
	return nil
}

func (s *captureSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	s.c.mu.Lock()
	s.c.got = append(s.c.got, s.cur)
	s.c.mu.Unlock()
	return nil
}

func (s *captureSession) Reset()        { s.cur = captured{} }
func (s *captureSession) Logout() error { return nil }

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

// receiver starts the app's SMTP receiver on a loopback port and returns its address.
func receiver(t *testing.T, e *apptest.Env) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := e.App.MailIn.Receiver("mx.test")
	done := make(chan error, 1)
	go func() { done <- r.Serve(ln) }()
	t.Cleanup(func() {
		r.Close()
		if err := <-done; err != nil {
			t.Errorf("receiver: %v", err)
		}
	})
	return ln.Addr().String()
}

// send delivers raw over SMTP as a sending mail server would.
func send(addr, from, to string, raw []byte) error {
	return smtp.SendMail(addr, nil, from, []string{to}, raw)
}

func mustSend(t *testing.T, addr, from, to string, raw []byte) {
	t.Helper()
	if err := send(addr, from, to, raw); err != nil {
		t.Fatalf("SMTP delivery from %s to %s: %v", from, to, err)
	}
}

// count counts rows of a tenant table for the org.
func count(t *testing.T, e *apptest.Env, org tenant.Org, table, where string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.App.DB.Run(tenant.WithOrg(e.Ctx, org), func(tx *gorm.DB) error {
		q := tx.Table(table)
		if where != "" {
			q = q.Where(where, args...)
		}
		return q.Count(&n).Error
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// header reads one header of a raw message, RFC 2047 words decoded.
func header(t *testing.T, raw []byte, key string) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read message: %v\n%s", err, raw)
	}
	v, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get(key))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestEmailConversationThreadsAndLoops takes mail in through the SMTP receiver and replies
// through the channel's SMTP relay: conversation, threading both ways, a reopened thread,
// Chinese legacy charsets, auto-replies and SMTP retries.
func TestEmailConversationThreadsAndLoops(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := mailEnv(t, d)
			owner := e.Login("owner@acme.test")
			relay := newCapture(t)
			ch := owner.Do("POST", "/api/v1/channels", map[string]any{"type": "email", "name": "Support mail", "config": map[string]string{
				"address": "support@acme.test", "from_name": "Acme Support",
				"smtp_host": relay.host, "smtp_port": relay.port, "smtp_tls": "none",
			}}).Want(201).JSON()
			chID := ch["id"].(string)
			mx := receiver(t, e)

			convs := func() []map[string]any {
				return owner.Do("GET", "/api/v1/conversations?channel_id="+chID+"&limit=100", nil).Want(200).Items()
			}
			messages := func(convID string) []map[string]any {
				return owner.Do("GET", "/api/v1/conversations/"+convID+"/messages?limit=200", nil).Want(200).Items()
			}
			conversationCount := func() int64 { return count(t, e, e.Acme, "conversations", "channel_id = ?", chID) }
			messageCount := func() int64 { return count(t, e, e.Acme, "messages", "channel_id = ?", chID) }

			// (a) Mail to the channel's address becomes a conversation with its subject and text,
			// from a contact known by the sender's address.
			firstID := "order-" + uuid.NewString()[:8] + "@mail.example.com"
			mustSend(t, mx, "ana@example.com", "support@acme.test", email.TestMessage("Ana Lima <ana@example.com>", "support@acme.test",
				"Order 1042 has not arrived", "Hello,\nmy order 1042 has not arrived yet.\nAna", map[string]string{"Message-ID": "<" + firstID + ">"}))
			list := convs()
			if len(list) != 1 {
				t.Fatalf("%d conversations after one mail", len(list))
			}
			conv := list[0]
			convID := conv["id"].(string)
			if conv["subject"] != "Order 1042 has not arrived" || conv["status"] != "open" {
				t.Fatalf("conversation: %v", conv)
			}
			msgs := messages(convID)
			if len(msgs) != 1 || msgs[0]["content"] != "Hello,\nmy order 1042 has not arrived yet.\nAna" || msgs[0]["direction"] != "in" {
				t.Fatalf("stored message: %v", msgs)
			}
			if p, _ := msgs[0]["provider_id"].(string); p != firstID {
				t.Fatalf("provider id %q, want the Message-ID %q", p, firstID)
			}
			contact := owner.Do("GET", "/api/v1/contacts/"+conv["contact_id"].(string), nil).Want(200).JSON()
			if contact["name"] != "Ana Lima" || !hasIdentity(contact, "email", "ana@example.com") {
				t.Fatalf("contact: %v", contact)
			}
			// Mail for an address no channel has is refused at RCPT with 550, so the sender bounces it.
			err := send(mx, "ana@example.com", "nobody@acme.test", email.TestMessage("ana@example.com", "nobody@acme.test", "Hi", "lost?", nil))
			var te *textproto.Error
			if !errors.As(err, &te) || te.Code != 550 {
				t.Fatalf("mail to an unknown address: %v, want 550", err)
			}
			if n := count(t, e, e.Acme, "messages", "content = 'lost?'"); n != 0 {
				t.Fatalf("mail to an unknown address stored %d messages", n)
			}

			// (b) The agent's reply leaves through the channel's relay, threaded onto the customer's mail.
			reply := owner.Do("POST", "/api/v1/conversations/"+convID+"/messages", map[string]any{"content": "Dear Ana,\nit ships today."}).Want(201).JSON()
			waitFor(t, "the reply at the relay", func() bool { return len(relay.messages()) == 1 })
			out := relay.messages()[0]
			if out.from != "support@acme.test" || len(out.rcpts) != 1 || out.rcpts[0] != "ana@example.com" {
				t.Fatalf("envelope: from %q to %v", out.from, out.rcpts)
			}
			replyID := strings.Trim(header(t, out.data, "Message-ID"), "<>")
			if replyID == "" || !strings.HasSuffix(replyID, "@acme.test") {
				t.Fatalf("reply Message-ID %q", replyID)
			}
			if got := header(t, out.data, "In-Reply-To"); got != "<"+firstID+">" {
				t.Fatalf("In-Reply-To %q, want <%s>", got, firstID)
			}
			if got := header(t, out.data, "References"); !strings.Contains(got, "<"+firstID+">") {
				t.Fatalf("References %q lack <%s>", got, firstID)
			}
			if got := header(t, out.data, "Subject"); got != "Re: Order 1042 has not arrived" {
				t.Fatalf("Subject %q", got)
			}
			if !strings.Contains(string(out.data), "it ships today.") {
				t.Fatalf("the body is missing from the reply:\n%s", out.data)
			}
			waitFor(t, "the reply marked sent", func() bool {
				for _, m := range messages(convID) {
					if m["id"] == reply["id"] {
						return m["status"] == "sent" && m["provider_id"] == replyID
					}
				}
				return false
			})

			// (c) The customer answers the reply after the agent resolved the conversation: the
			// headers bring the answer to the same conversation, which opens again.
			owner.Do("PATCH", "/api/v1/conversations/"+convID, map[string]any{"status": "resolved"}).Want(200)
			answerID := "answer-" + uuid.NewString()[:8] + "@mail.example.com"
			mustSend(t, mx, "ana@example.com", "support@acme.test", email.TestMessage("Ana Lima <ana@example.com>", "support@acme.test",
				"Re: Order 1042 has not arrived", "Thanks, but the tracking page shows nothing.", map[string]string{
					"Message-ID": "<" + answerID + ">", "In-Reply-To": "<" + replyID + ">", "References": "<" + firstID + "> <" + replyID + ">"}))
			if n := conversationCount(); n != 1 {
				t.Fatalf("the answer opened a new conversation: %d", n)
			}
			got := owner.Do("GET", "/api/v1/conversations/"+convID, nil).Want(200).JSON()
			if got["status"] != "open" || got["resolved_at"] != nil {
				t.Fatalf("the answered conversation is %v (resolved_at %v), want open", got["status"], got["resolved_at"])
			}
			if msgs := messages(convID); len(msgs) != 3 || msgs[2]["content"] != "Thanks, but the tracking page shows nothing." {
				t.Fatalf("thread after the answer: %v", msgs)
			}
			// The next reply answers the newest mail and carries the whole thread.
			owner.Do("POST", "/api/v1/conversations/"+convID+"/messages", map[string]any{"content": "We have asked the carrier."}).Want(201)
			waitFor(t, "the second reply at the relay", func() bool { return len(relay.messages()) == 2 })
			second := relay.messages()[1].data
			if got := header(t, second, "In-Reply-To"); got != "<"+answerID+">" {
				t.Fatalf("second reply In-Reply-To %q, want <%s>", got, answerID)
			}
			if got := strings.Fields(header(t, second, "References")); strings.Join(got, " ") != "<"+firstID+"> <"+replyID+"> <"+answerID+">" {
				t.Fatalf("second reply References %q", got)
			}
			// Also when the customer writes from another address: the headers, not the sender, decide.
			mustSend(t, mx, "ana.lima@work.example", "support@acme.test", email.TestMessage("ana.lima@work.example", "support@acme.test",
				"Re: Order 1042 has not arrived", "Writing from my work address.", map[string]string{"In-Reply-To": "<" + replyID + ">"}))
			if n := conversationCount(); n != 1 {
				t.Fatalf("an answer from another address opened a conversation: %d", n)
			}

			// (d) A GBK mail from a Chinese mailer: GB2312 encoded-word subject and sender name,
			// GBK body in 8 bits.
			subject, body, name := "订单没有收到，请帮忙查询", "您好：\n我上周买的空调还没有送到，订单号 20261101。\n谢谢！", "李雷"
			gbkID := "gbk-" + uuid.NewString()[:8] + "@mail.example.cn"
			mustSend(t, mx, "lilei@example.cn", "support@acme.test", gbkMail(t, name, "lilei@example.cn", subject, body, gbkID))
			var gbkConv map[string]any
			for _, c := range convs() {
				if c["id"] != convID {
					gbkConv = c
				}
			}
			if gbkConv == nil || gbkConv["subject"] != subject {
				t.Fatalf("GBK mail's conversation: %v", gbkConv)
			}
			gm := messages(gbkConv["id"].(string))
			if len(gm) != 1 || gm[0]["content"] != body {
				t.Fatalf("GBK body read as %q, want %q", gm[0]["content"], body)
			}
			if c := owner.Do("GET", "/api/v1/contacts/"+gbkConv["contact_id"].(string), nil).Want(200).JSON(); c["name"] != name {
				t.Fatalf("GBK sender name read as %q", c["name"])
			}

			// (e) Auto-replies. An out-of-office answering our reply joins its thread...
			relayed := len(relay.messages())
			convsBefore, msgsBefore := conversationCount(), messageCount()
			mustSend(t, mx, "ana@example.com", "support@acme.test", email.TestMessage("Ana Lima <ana@example.com>", "support@acme.test",
				"Automatic reply: Re: Order 1042 has not arrived", "I am out of the office until Monday.", map[string]string{
					"Auto-Submitted": "auto-replied", "In-Reply-To": "<" + replyID + ">", "References": "<" + firstID + "> <" + replyID + ">"}))
			if n := conversationCount(); n != convsBefore {
				t.Fatalf("an out-of-office opened a conversation: %d → %d", convsBefore, n)
			}
			joined := messages(convID)
			if last := joined[len(joined)-1]; last["content"] != "I am out of the office until Monday." {
				t.Fatalf("the out-of-office did not join its thread: %v", last)
			}
			// ...and twenty auto-replies that answer nothing we know open no conversation and
			// store nothing: no message, no contact.
			for i := range 20 {
				mustSend(t, mx, "noreply@shop.example", "support@acme.test", email.TestMessage("Shop Robot <noreply@shop.example>", "support@acme.test",
					fmt.Sprintf("Auto: we received your message #%d", i), "This is an automatic answer.", map[string]string{
						"Message-ID": fmt.Sprintf("<auto-%d-%s@shop.example>", i, uuid.NewString()[:8]), "Auto-Submitted": "auto-replied",
						"Precedence": "auto_reply"}))
			}
			if n := conversationCount(); n != convsBefore {
				t.Fatalf("auto-replies with no thread opened %d conversations", n-convsBefore)
			}
			if n := messageCount(); n != msgsBefore+1 {
				t.Fatalf("messages after one threaded and 20 unthreaded auto-replies: %d, want %d", n, msgsBefore+1)
			}
			if n := count(t, e, e.Acme, "contact_identities", "kind = 'email' AND value = 'noreply@shop.example'"); n != 0 {
				t.Fatalf("unthreaded auto-replies created a contact (%d identities)", n)
			}
			time.Sleep(300 * time.Millisecond) // time for a worker to send anything it would answer
			if n := len(relay.messages()); n != relayed {
				t.Fatalf("auto-replies made the inbox send %d mails", n-relayed)
			}

			// (f) A sending server that lost our 250 delivers the same mail again: one message.
			retry := email.TestMessage("Bo Chen <bo@example.org>", "support@acme.test", "Invoice copy", "Please send me a copy of the invoice.", nil)
			mustSend(t, mx, "bo@example.org", "support@acme.test", retry)
			mustSend(t, mx, "bo@example.org", "support@acme.test", retry)
			if n := count(t, e, e.Acme, "messages", "channel_id = ? AND content = ?", chID, "Please send me a copy of the invoice."); n != 1 {
				t.Fatalf("a mail delivered twice is %d messages", n)
			}
			// Also a mail without a Message-ID (keyed by its bytes).
			bare := email.TestMessage("bo@example.org", "support@acme.test", "No id", "A mailer that sets no Message-ID.", map[string]string{"Message-ID": ""})
			mustSend(t, mx, "bo@example.org", "support@acme.test", bare)
			mustSend(t, mx, "bo@example.org", "support@acme.test", bare)
			if n := count(t, e, e.Acme, "messages", "channel_id = ? AND content = ?", chID, "A mailer that sets no Message-ID."); n != 1 {
				t.Fatalf("a mail without Message-ID delivered twice is %d messages", n)
			}
			// Counted as interactions once each: the four customer mails of (a) to (d), the two
			// replies, the invoice request and the mail without id; auto-replies are not.
			if n := count(t, e, e.Acme, "usage_events", "meter = 'interactions' AND channel = 'email'"); n != 8 {
				t.Fatalf("e-mail interactions: %d, want 8", n)
			}
		})
	}
}

// gbkMail is a message as Chinese mailers write it: headers in GB2312 encoded words, the body
// in GBK as 8-bit text.
func gbkMail(t *testing.T, name, addr, subject, body, msgID string) []byte {
	t.Helper()
	enc := simplifiedchinese.GBK.NewEncoder()
	word := func(s string) string {
		b, err := enc.Bytes([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return "=?GB2312?B?" + base64.StdEncoding.EncodeToString(b) + "?="
	}
	gbkBody, err := enc.Bytes([]byte(strings.ReplaceAll(body, "\n", "\r\n") + "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s <%s>\r\n", word(name), addr)
	fmt.Fprintf(&b, "To: support@acme.test\r\n")
	fmt.Fprintf(&b, "Subject: %s\r\n", word(subject))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s>\r\n", msgID)
	fmt.Fprintf(&b, "X-Mailer: Foxmail 7.2.25.228[cn]\r\n")
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=\"gbk\"\r\n")
	fmt.Fprintf(&b, "Content-Transfer-Encoding: 8bit\r\n\r\n")
	b.Write(gbkBody)
	return b.Bytes()
}

func hasIdentity(contact map[string]any, kind, value string) bool {
	ids, _ := contact["identities"].([]any)
	for _, x := range ids {
		id, _ := x.(map[string]any)
		if id["kind"] == kind && id["value"] == value {
			return true
		}
	}
	return false
}

// mailbox is go-imap's in-memory IMAP server with one user.
type mailbox struct {
	user       *imapmemserver.User
	addr, port string
}

func newMailbox(t *testing.T, login, password string) *mailbox {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(login, password)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	s := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true, // loopback only, as the channel's imap_tls none allows
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &mailbox{user: u, addr: ln.Addr().String(), port: port}
}

type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return int64(l.Len()) }

func (m *mailbox) append(t *testing.T, raw []byte, flags ...imap.Flag) {
	t.Helper()
	if _, err := m.user.Append("INBOX", literal{bytes.NewReader(raw)}, &imap.AppendOptions{Flags: flags, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func (m *mailbox) unseen(t *testing.T) uint32 {
	t.Helper()
	st, err := m.user.Status("INBOX", &imap.StatusOptions{NumUnseen: true})
	if err != nil {
		t.Fatal(err)
	}
	return *st.NumUnseen
}

// markUnread clears \Seen on messages by UID, as when a poll stored them and died before it
// could mark them read (or a person marked them unread in their mail client).
func (m *mailbox) markUnread(t *testing.T, login, password string, uids ...imap.UID) {
	t.Helper()
	c, err := imapclient.DialInsecure(m.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(login, password).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(uids...), &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.Logout().Wait()
}

// TestIMAPPollStoresUnreadMailOnce polls a channel's mailbox: its unread mail becomes messages
// once, whether polled again, polled by two workers at once after a crash left it unread, or
// through the periodic task.
func TestIMAPPollStoresUnreadMailOnce(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(apptest.Name(d), func(t *testing.T) {
			e := mailEnv(t, d)
			owner := e.Login("owner@acme.test")
			const login, password = "help@acme.test", "imap-pw"
			box := newMailbox(t, login, password)
			ch := owner.Do("POST", "/api/v1/channels", map[string]any{"type": "email", "name": "Help mailbox", "config": map[string]string{
				"address": "help@acme.test", "imap_host": "127.0.0.1", "imap_port": box.port, "imap_tls": "none",
				"imap_username": login, "imap_password": password,
			}}).Want(201).JSON()
			if strings.Contains(string(owner.Do("GET", "/api/v1/channels/"+ch["id"].(string), nil).Want(200).Body), password) {
				t.Fatal("the channel echoes the IMAP password")
			}
			chID := uuid.MustParse(ch["id"].(string))
			texts := []string{"First unread question.", "Second unread question.", "第三封未读邮件。"}
			for i, text := range texts {
				box.append(t, email.TestMessage(fmt.Sprintf("customer%d@example.com", i), "help@acme.test", fmt.Sprintf("Question %d", i), text, nil))
			}
			box.append(t, email.TestMessage("old@example.com", "help@acme.test", "Old", "Already read by a person.", nil), imap.FlagSeen)

			payload, _ := json.Marshal(map[string]string{"tenant_id": e.Acme.ID.String(), "channel_id": chID.String()})
			poll := func() error { return e.App.MailIn.HandlePoll(e.Ctx, asynq.NewTask(mailin.TaskPoll, payload)) }
			stored := func() int64 { return count(t, e, e.Acme, "messages", "channel_id = ?", chID) }
			check := func(when string, want int64) {
				t.Helper()
				if n := stored(); n != want {
					t.Fatalf("%s: %d messages, want %d", when, n, want)
				}
				if n := count(t, e, e.Acme, "messages", "channel_id = ? AND content = ?", chID, "Already read by a person."); n != 0 {
					t.Fatalf("%s: mail already read in the mailbox was taken in", when)
				}
			}

			if err := poll(); err != nil {
				t.Fatal(err)
			}
			check("first poll", 3)
			for _, text := range texts {
				if n := count(t, e, e.Acme, "messages", "channel_id = ? AND content = ?", chID, text); n != 1 {
					t.Fatalf("%q stored %d times", text, n)
				}
			}
			if n := box.unseen(t); n != 0 {
				t.Fatalf("%d messages left unread after the poll", n)
			}
			if err := poll(); err != nil {
				t.Fatal(err)
			}
			check("second poll", 3)

			// A poll that stored the mail but died before marking it read leaves it unread; two
			// workers then poll at once. Still one message each.
			box.markUnread(t, login, password, 1, 2, 3)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range errs {
				wg.Go(func() { errs[i] = poll() })
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("concurrent poll: %v", err)
				}
			}
			check("two concurrent polls of mail left unread", 3)

			// The periodic task finds the channel and its poll task runs on the worker.
			box.append(t, email.TestMessage("late@example.com", "help@acme.test", "Late", "Arrived after the polls.", nil))
			if err := e.App.MailIn.HandlePollAll(e.Ctx, asynq.NewTask(mailin.TaskPollAll, nil)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the scheduled poll", func() bool { return stored() == 4 })
			waitFor(t, "the mailbox read", func() bool { return box.unseen(t) == 0 })
			check("scheduled poll", 4)
			if n := count(t, e, e.Acme, "conversations", "channel_id = ?", chID); n != 4 {
				t.Fatalf("%d conversations for 4 senders", n)
			}
		})
	}
}
