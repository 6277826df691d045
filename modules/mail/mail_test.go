package mail_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/mail"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// smtpSink is a real SMTP server (go-smtp) that keeps what it receives.
type smtpSink struct {
	mu       sync.Mutex
	msgs     []string
	rcpts    []string
	refuseTo string
}

func (s *smtpSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

type sinkSession struct {
	s  *smtpSink
	to string
}

func (x *sinkSession) Reset()                               {}
func (x *sinkSession) Logout() error                        { return nil }
func (x *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == x.s.refuseTo {
		return &smtp.SMTPError{Code: 550, Message: "no such mailbox"}
	}
	x.to = to
	return nil
}
func (x *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, string(b))
	x.s.rcpts = append(x.s.rcpts, x.to)
	x.s.mu.Unlock()
	return err
}

func (s *smtpSink) count(to string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.rcpts {
		if r == to {
			n++
		}
	}
	return n
}

func startSink(t *testing.T) (*smtpSink, string) {
	sink := &smtpSink{refuseTo: "refused@example.com"}
	srv := smtp.NewServer(sink)
	srv.Domain = "localhost"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sink, "smtp://" + l.Addr().String()
}

func sendTask(id string) *asynq.Task {
	b, _ := json.Marshal(map[string]string{"id": id})
	return asynq.NewTask(mail.TaskSend, b)
}

func status(t *testing.T, e *apptest.Env, to string) mail.Message {
	t.Helper()
	var m mail.Message
	if err := e.App.DB.Run(e.Ctx, func(tx *gorm.DB) error { return tx.Where("to_addr = ?", to).Order("id DESC").Take(&m).Error }); err != nil {
		t.Fatal(err)
	}
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestOutboxDeliversOnceThroughTheWorker(t *testing.T) {
	sink, url := startSink(t)
	e := apptest.New(t, tenant.SQLite, apptest.Options{NoDemo: true, Env: map[string]string{"SWITCHBOARD_SMTP_URL": url}})
	w, mux, err := e.App.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)

	// A mail queued in a transaction that rolls back is neither stored nor sent.
	rollback := errors.New("rollback")
	err = e.App.DB.Tx(e.Ctx, func(ctx context.Context) error {
		if err := e.App.Outbox.Send(ctx, "gone@example.com", "x", "y"); err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatal(err)
	}
	// A committed one goes out through the worker, with a UTF-8 subject.
	if err := e.App.DB.Tx(e.Ctx, func(ctx context.Context) error {
		return e.App.Outbox.Send(ctx, "alice@example.com", "您好 Switchboard", "Hello 你好\nsecond line")
	}); err != nil {
		t.Fatal(err)
	}
	// The row is marked sent just after the SMTP server has the mail: wait for both.
	waitFor(t, "delivery", func() bool {
		return sink.count("alice@example.com") == 1 && status(t, e, "alice@example.com").Status == "sent"
	})
	m := status(t, e, "alice@example.com")
	if m.Status != "sent" || m.SentAt == nil {
		t.Fatalf("mail row after delivery: %+v", m)
	}
	sink.mu.Lock()
	raw := sink.msgs[0]
	sink.mu.Unlock()
	if !strings.Contains(raw, "Subject: =?UTF-8?q?") || !strings.Contains(raw, "Hello 你好\r\nsecond line") {
		t.Fatalf("message as received:\n%s", raw)
	}
	// At-least-once delivery of the task does not mean twice the mail.
	if err := e.App.Outbox.HandleSend(e.Ctx, sendTask(m.ID.String())); err != nil {
		t.Fatal(err)
	}
	if n := sink.count("alice@example.com"); n != 1 {
		t.Fatalf("delivered %d times", n)
	}
	if sink.count("gone@example.com") != 0 {
		t.Fatal("rolled-back mail was sent")
	}
	var n int64
	e.App.DB.Gorm().Model(&mail.Message{}).Where("to_addr = ?", "gone@example.com").Count(&n)
	if n != 0 {
		t.Fatal("rolled-back mail was stored")
	}
}

func TestOutboxRecordsFailuresAndSweepsPending(t *testing.T) {
	sink, url := startSink(t)
	e := apptest.New(t, tenant.SQLite, apptest.Options{NoDemo: true, Env: map[string]string{"SWITCHBOARD_SMTP_URL": url}})
	// No worker: drive the handlers directly to see each step.
	if err := e.App.Outbox.Send(e.Ctx, "refused@example.com", "s", "b"); err != nil {
		t.Fatal(err)
	}
	m := status(t, e, "refused@example.com")
	if err := e.App.Outbox.HandleSend(e.Ctx, sendTask(m.ID.String())); err == nil {
		t.Fatal("a refused recipient did not fail the task (it would not be retried)")
	}
	m = status(t, e, "refused@example.com")
	if m.Status != "pending" || m.Attempts != 1 || !strings.Contains(m.LastError, "550") {
		t.Fatalf("after a failed attempt: %+v", m)
	}

	// A mail left pending (crash between commit and enqueue) is picked up by the sweep.
	if err := e.App.Outbox.Send(e.Ctx, "late@example.com", "s", "b"); err != nil {
		t.Fatal(err)
	}
	e.App.DB.Gorm().Model(&mail.Message{}).Where("to_addr = ?", "late@example.com").Update("created_at", time.Now().UTC().Add(-5*time.Minute))
	w, mux, err := e.App.NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	if err := e.App.Outbox.HandleSweep(e.Ctx, asynq.NewTask(mail.TaskSweep, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "swept mail delivered", func() bool { return sink.count("late@example.com") >= 1 })
}

func TestDevMailboxKeepsMailWithoutSMTP(t *testing.T) {
	e := apptest.New(t, tenant.SQLite, apptest.Options{NoDemo: true})
	if !e.App.Outbox.DevMailbox() {
		t.Fatal("no SMTP configured, yet not in dev-mailbox mode")
	}
	if err := e.App.Outbox.Send(e.Ctx, "dev@example.com", "Subject", "Body"); err != nil {
		t.Fatal(err)
	}
	items := e.Anon().Do("GET", "/api/v1/dev/mailbox", nil).Want(200).Items()
	if len(items) == 0 || items[0]["to"] != "dev@example.com" {
		t.Fatalf("dev mailbox: %v", items)
	}
}
