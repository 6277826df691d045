// Package mail is the outgoing mail outbox. A message is written to the mails table in the
// caller's transaction and sent by an asynq task after commit; a periodic sweep re-enqueues
// anything left pending (a crash between commit and enqueue), and the handler is idempotent.
// Without SMTP configured, messages are logged and kept for the development mailbox page.
package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/internal/queue"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// TaskSend and TaskSweep are the outbox's task types.
const (
	TaskSend  = "mail:send"
	TaskSweep = "mail:sweep"
)

// Message is a queued mail.
type Message struct {
	ID        uuid.UUID  `gorm:"type:uuid;primaryKey" json:"id"`
	ToAddr    string     `json:"to"`
	Subject   string     `json:"subject"`
	Body      string     `json:"body"`
	Status    string     `json:"status"`
	Attempts  int        `json:"-"`
	LastError string     `json:"-"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at"`
}

// TableName pins the table name.
func (Message) TableName() string { return "mails" }

// Enqueuer is the part of the queue the outbox needs.
type Enqueuer interface {
	Enqueue(ctx context.Context, t *asynq.Task, opts ...asynq.Option) error
}

// Outbox queues and sends mail.
type Outbox struct {
	db   *tenant.DB
	q    Enqueuer
	log  *slog.Logger
	smtp *url.URL // nil: log only and keep for the dev mailbox
	from string
}

// NewOutbox returns an outbox. smtpURL is smtp://user:pass@host:port (port 465 is not
// supported; 587 uses STARTTLS when the server offers it) or empty.
func NewOutbox(db *tenant.DB, q Enqueuer, log *slog.Logger, smtpURL, from string) (*Outbox, error) {
	o := &Outbox{db: db, q: q, log: log, from: from}
	if smtpURL != "" {
		u, err := url.Parse(smtpURL)
		if err != nil || u.Scheme != "smtp" || u.Host == "" {
			return nil, errors.New("mail: SWITCHBOARD_SMTP_URL must look like smtp://user:pass@host:587")
		}
		o.smtp = u
	}
	if _, err := mail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("mail: bad from address %q: %w", from, err)
	}
	return o, nil
}

// DevMailbox reports whether mail is only logged and kept for the development mailbox.
func (o *Outbox) DevMailbox() bool { return o.smtp == nil }

// Send queues a message in ctx's transaction; it goes out after commit.
func (o *Outbox) Send(ctx context.Context, to, subject, body string) error {
	m := Message{ID: ids.New(), ToAddr: to, Subject: subject, Body: body, Status: "pending", CreatedAt: time.Now().UTC()}
	if err := o.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&m).Error }); err != nil {
		return fmt.Errorf("mail: queue: %w", err)
	}
	tenant.AfterCommit(ctx, func(ctx context.Context) {
		if err := o.enqueue(context.WithoutCancel(ctx), m.ID); err != nil {
			o.log.WarnContext(ctx, "mail enqueue failed; the sweep will retry", "mail_id", m.ID, "err", err)
		}
	})
	return nil
}

func (o *Outbox) enqueue(ctx context.Context, id uuid.UUID) error {
	payload, _ := json.Marshal(map[string]string{"id": id.String()})
	return o.q.Enqueue(ctx, asynq.NewTask(TaskSend, payload), asynq.TaskID("mail:"+id.String()), asynq.MaxRetry(10))
}

// HandleSend sends one message; a message already sent is not sent again.
func (o *Outbox) HandleSend(ctx context.Context, t *asynq.Task) error {
	var p struct{ ID uuid.UUID }
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("mail: bad payload: %v: %w", err, asynq.SkipRetry)
	}
	var m Message
	err := o.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", p.ID).Take(&m).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("mail %s: not found: %w", p.ID, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	if m.Status == "sent" {
		return nil
	}
	sendErr := o.deliver(m)
	now := time.Now().UTC()
	upd := map[string]any{"attempts": gorm.Expr("attempts + 1")}
	if sendErr == nil {
		upd["status"], upd["sent_at"], upd["last_error"] = "sent", now, ""
	} else {
		upd["last_error"] = sendErr.Error()
		if n, ok := asynq.GetRetryCount(ctx); ok {
			if max, _ := asynq.GetMaxRetry(ctx); n >= max {
				upd["status"] = "failed"
			}
		}
	}
	if err := o.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Model(&Message{}).Where("id = ?", m.ID).Updates(upd).Error
	}); err != nil {
		return fmt.Errorf("mail %s: record result: %w", m.ID, err)
	}
	return sendErr
}

func (o *Outbox) deliver(m Message) error {
	if o.smtp == nil {
		o.log.Info("mail (no SMTP configured; see the dev mailbox)", "to", m.ToAddr, "subject", m.Subject, "body", m.Body)
		return nil
	}
	from, _ := mail.ParseAddress(o.from)
	var auth smtp.Auth
	if u := o.smtp.User; u != nil {
		pw, _ := u.Password()
		host, _, _ := net.SplitHostPort(o.smtp.Host)
		auth = smtp.PlainAuth("", u.Username(), pw, host)
	}
	msg := "From: " + o.from + "\r\nTo: " + m.ToAddr + "\r\nSubject: " + mimeHeader(m.Subject) +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n" +
		"Message-ID: <" + m.ID.String() + "@switchboard>\r\nDate: " + m.CreatedAt.Format(time.RFC1123Z) + "\r\n\r\n" +
		strings.ReplaceAll(m.Body, "\n", "\r\n")
	if err := smtp.SendMail(o.smtp.Host, auth, from.Address, []string{m.ToAddr}, []byte(msg)); err != nil {
		return fmt.Errorf("mail: smtp: %w", err)
	}
	return nil
}

func mimeHeader(s string) string {
	for _, r := range s {
		if r > 127 {
			return mime.QEncoding.Encode("UTF-8", s)
		}
	}
	return s
}

// HandleSweep re-enqueues messages left pending for over a minute.
func (o *Outbox) HandleSweep(ctx context.Context, _ *asynq.Task) error {
	var pending []uuid.UUID
	cutoff := time.Now().UTC().Add(-time.Minute)
	if err := o.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Model(&Message{}).Where("status = ? AND created_at < ?", "pending", cutoff).Limit(500).Pluck("id", &pending).Error
	}); err != nil {
		return err
	}
	for _, id := range pending {
		if err := o.enqueue(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// Recent lists the newest messages for the development mailbox.
func (o *Outbox) Recent(ctx context.Context, limit int) ([]Message, error) {
	var out []Message
	err := o.db.Run(ctx, func(tx *gorm.DB) error { return tx.Order("id DESC").Limit(limit).Find(&out).Error })
	return out, err
}

// Jobs registers the outbox's task handlers.
func (o *Outbox) Jobs(mux *asynq.ServeMux) {
	mux.HandleFunc(TaskSend, o.HandleSend)
	mux.HandleFunc(TaskSweep, o.HandleSweep)
}

// Schedules lists the outbox's periodic tasks.
func (o *Outbox) Schedules() []queue.Schedule {
	return []queue.Schedule{{Cron: "@every 1m", Task: asynq.NewTask(TaskSweep, nil), Opts: []asynq.Option{asynq.Unique(50 * time.Second)}}}
}
