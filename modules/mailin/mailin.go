// Package mailin brings e-mail into the inbox: the built-in SMTP receiver hands each message
// for a channel's address to Deliver, and a periodic task polls the IMAP mailbox of every
// e-mail channel that has one. Both parse with the e-mail adapter and store through the inbox's
// Ingest, keyed by Message-ID, so a message read twice is stored once.
package mailin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/queue"
	"github.com/switchboard-cloud/switchboard/modules/access"
	"github.com/switchboard-cloud/switchboard/modules/channels"
	"github.com/switchboard-cloud/switchboard/modules/channels/email"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/modules/conversations"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Task types: the sweep lists the channels to poll, one poll task per channel does the work.
const (
	TaskPollAll = "mailin:poll_all"
	TaskPoll    = "mailin:poll"
)

// Enqueuer is the part of the queue the module needs.
type Enqueuer interface {
	Enqueue(ctx context.Context, t *asynq.Task, opts ...asynq.Option) error
}

// Service receives and polls mail.
type Service struct {
	db       *tenant.DB
	channels *channels.Service
	inbox    *conversations.Service
	mail     *email.Provider
	q        Enqueuer
	log      *slog.Logger
}

// New returns the mail intake.
func New(db *tenant.DB, ch *channels.Service, inbox *conversations.Service, mail *email.Provider, q Enqueuer, log *slog.Logger) *Service {
	return &Service{db: db, channels: ch, inbox: inbox, mail: mail, q: q, log: log}
}

// Accepts answers the receiver's RCPT TO: mail is wanted only for a channel's address.
func (s *Service) Accepts(ctx context.Context, rcpt string) (bool, error) {
	_, _, _, err := s.channels.Route(ctx, channels.EmailRouteKey(rcpt))
	if errors.Is(err, apperr.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Deliver stores a received message in the channel of each recipient that has one. An error
// makes the receiver answer 451, so the sending server tries again: nothing is lost.
func (s *Service) Deliver(ctx context.Context, rcpts []string, raw []byte) error {
	msg, err := s.parse(raw)
	if err != nil {
		return fmt.Errorf("mailin: parse: %w", err)
	}
	stored := 0
	for _, rcpt := range rcpts {
		_, err := s.inbox.IngestTo(ctx, channels.EmailRouteKey(rcpt), func(provider.Channel) (provider.Batch, error) {
			return provider.Batch{Messages: []provider.InboundMessage{msg}}, nil
		})
		if errors.Is(err, apperr.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mailin: deliver to %s: %w", rcpt, err)
		}
		stored++
	}
	if stored == 0 {
		s.log.InfoContext(ctx, "mail for no channel dropped", "rcpts", rcpts)
	}
	return nil
}

// parse reads a message and sanitises its HTML part once, before it is stored: every reader
// of the inbox gets markup without scripts, handlers or javascript: links.
func (s *Service) parse(raw []byte) (provider.InboundMessage, error) {
	msg, err := s.mail.Parse(raw)
	if err != nil {
		return msg, err
	}
	if msg.HTML != "" {
		msg.HTML = email.Sanitize(msg.HTML)
	}
	return msg, nil
}

// Receiver builds the SMTP server for addr's host name.
func (s *Service) Receiver(domain string) *email.Receiver {
	return email.NewReceiver(s.Deliver, email.ReceiverOptions{Domain: domain, Accepts: s.Accepts}, s.log)
}

type pollPayload struct {
	TenantID  uuid.UUID `json:"tenant_id"`
	ChannelID uuid.UUID `json:"channel_id"`
}

// HandlePollAll enqueues a poll of each active e-mail channel with an IMAP mailbox.
func (s *Service) HandlePollAll(ctx context.Context, _ *asynq.Task) error {
	pctx := s.db.AsPlatform(ctx, "list e-mail channels to poll")
	var rows []struct {
		TenantID uuid.UUID
		ID       uuid.UUID
	}
	if err := s.db.Run(pctx, func(tx *gorm.DB) error {
		return tx.Table("channels").Select("tenant_id", "id").Where("type = 'email' AND status = 'active' AND config LIKE ?", `%"imap_host"%`).Find(&rows).Error
	}); err != nil {
		return fmt.Errorf("mailin: list channels: %w", err)
	}
	for _, r := range rows {
		body, _ := json.Marshal(pollPayload{TenantID: r.TenantID, ChannelID: r.ID})
		if err := s.q.Enqueue(ctx, asynq.NewTask(TaskPoll, body), asynq.Unique(55*time.Second), asynq.MaxRetry(2)); err != nil {
			s.log.WarnContext(ctx, "enqueue mail poll", "channel", r.ID, "err", err)
		}
	}
	return nil
}

// HandlePoll reads one channel's unread mail.
func (s *Service) HandlePoll(ctx context.Context, t *asynq.Task) error {
	var p pollPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("mailin: poll payload: %w: %w", err, asynq.SkipRetry)
	}
	ctx, _, err := s.db.InOrg(ctx, p.TenantID)
	if err != nil {
		return err
	}
	ch, status, err := s.channels.Open(ctx, p.ChannelID)
	if err != nil || status != channels.StatusActive {
		return err
	}
	n, err := s.mail.Poll(ctx, ch.Config, func(raw []byte) error {
		msg, err := s.parse(raw)
		if err != nil {
			// An unreadable message would fail on every poll: it is marked read and logged.
			s.log.WarnContext(ctx, "unreadable mail skipped", "channel", ch.ID, "err", err)
			return nil
		}
		_, err = s.inbox.Ingest(ctx, ch, provider.Batch{Messages: []provider.InboundMessage{msg}})
		return err
	})
	if n > 0 {
		s.log.InfoContext(ctx, "mail polled", "channel", ch.ID, "messages", n)
	}
	if err != nil {
		return fmt.Errorf("mailin: poll %s: %w", ch.ID, err)
	}
	return nil
}

// Module registers the polling tasks.
type Module struct{ svc *Service }

// NewModule wraps the service for the app.
func NewModule(s *Service) *Module { return &Module{svc: s} }

// Name identifies the module.
func (m *Module) Name() string { return "mailin" }

// Routes: mail has no HTTP routes.
func (m *Module) Routes(*access.Router) {}

// Jobs registers the poll tasks.
func (m *Module) Jobs(mux *asynq.ServeMux) {
	mux.HandleFunc(TaskPollAll, m.svc.HandlePollAll)
	mux.HandleFunc(TaskPoll, m.svc.HandlePoll)
}

// Schedules polls every minute.
func (m *Module) Schedules() []queue.Schedule {
	return []queue.Schedule{{Cron: "@every 1m", Task: asynq.NewTask(TaskPollAll, nil), Opts: []asynq.Option{asynq.Unique(50 * time.Second)}}}
}
