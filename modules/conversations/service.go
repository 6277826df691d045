// Package conversations is the inbox: conversations with a contact on a channel, their messages,
// notes, attachments and calls. Inbound deliveries from every channel come through Ingest, which
// stores each message (keyed by the provider's id, so a redelivery is one message) together with
// its usage event and realtime event in one transaction before anything else happens (messages
// of a tenant arriving together share one: see committer). Agent
// replies are stored queued and sent by an asynq task per message, retried with backoff, and
// marked failed with the reason when the provider refuses or the retries run out.
package conversations

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/billing"
	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/events"
	"github.com/switchboard-cloud/switchboard/internal/ratelimit"
	"github.com/switchboard-cloud/switchboard/modules/channels"
	"github.com/switchboard-cloud/switchboard/modules/contacts"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Domain events this module publishes on the bus after commit.
const (
	EventConversationCreated = "conversation.created"
	EventMessageCreated      = "message.created"
	EventMessageUpdated      = "message.updated"
	EventStatusChanged       = "conversation.status_changed"
	EventAssigned            = "conversation.assigned"
	EventConversationUpdated = "conversation.updated"
)

// UsageRecorder is the billing ledger as this module uses it.
type UsageRecorder interface {
	Record(ctx context.Context, source string, evs []billing.Event) (billing.Result, error)
	// Defer records like Record, written with the transaction's other deferred events at its
	// commit.
	Defer(ctx context.Context, source string, evs []billing.Event) error
}

// Notifier journals realtime events in the caller's transaction and fans them out after commit.
type Notifier interface {
	Append(ctx context.Context, kind string, conversationID uuid.UUID, payload any) error
}

// Blobs is where attachment bytes live.
type Blobs interface {
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// Enqueuer is the part of the queue the module needs.
type Enqueuer interface {
	Enqueue(ctx context.Context, t *asynq.Task, opts ...asynq.Option) error
}

// Options tune the service.
type Options struct {
	// SendRetries is how many times a failed send is retried before the message is failed.
	SendRetries int
	// MaxAttachmentBytes limits one attachment.
	MaxAttachmentBytes int64
	// GroupMax is how many inbound messages of a tenant one transaction stores at most (64; see
	// committer); 1 stores each alone.
	GroupMax int
	// GroupLanes is how many such transactions of one tenant run at once: 1 on SQLite, which
	// has one writer anyway; 2 on PostgreSQL, where a lane's transaction waits on round trips
	// another lane can use. Since a group costs a few statements whatever its size, more lanes
	// mean smaller groups and more statements: on two cores 2 lanes stored 4,067–4,387
	// messages/s, 4 lanes 3,270–3,793 and 1 lane 3,530–3,733 (docs/performance.md §6).
	GroupLanes int
	// HookRate is how many inbound webhook deliveries a tenant may make a second on this
	// process (1,000 by default, bursts of as many); past it a delivery is answered 429 with
	// Retry-After and the provider delivers it again later.
	HookRate int
}

// Service is the inbox.
type Service struct {
	db       *tenant.DB
	channels *channels.Service
	contacts *contacts.Service
	usage    UsageRecorder
	notify   Notifier
	bus      *events.Bus
	q        Enqueuer
	blobs    Blobs
	log      *slog.Logger
	opts     Options
	group    *committer
	hooks    *ratelimit.PerKey[uuid.UUID]
	now      func() time.Time
}

// NewService builds the inbox from its dependencies.
func NewService(db *tenant.DB, ch *channels.Service, ct *contacts.Service, usage UsageRecorder, notify Notifier,
	bus *events.Bus, q Enqueuer, blobs Blobs, log *slog.Logger, opts Options) *Service {
	if opts.SendRetries <= 0 {
		opts.SendRetries = 8
	}
	if opts.MaxAttachmentBytes <= 0 {
		opts.MaxAttachmentBytes = 20 << 20
	}
	if opts.HookRate <= 0 {
		opts.HookRate = 1000
	}
	if opts.GroupMax <= 0 {
		opts.GroupMax = 64
	}
	if opts.GroupLanes <= 0 {
		opts.GroupLanes = 1
		if db.Dialect() == tenant.Postgres {
			opts.GroupLanes = 2
		}
	}
	s := &Service{db: db, channels: ch, contacts: ct, usage: usage, notify: notify, bus: bus, q: q, blobs: blobs, log: log, opts: opts,
		now: func() time.Time { return time.Now().UTC() }}
	s.group = newCommitter(s, opts.GroupMax, opts.GroupLanes)
	s.hooks = ratelimit.New[uuid.UUID](float64(opts.HookRate), opts.HookRate)
	ct.OnMerge(s.moveContact)
	return s
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// moveContact gives the winner of a contact merge the loser's conversations, and makes the
// winner the author of what the loser wrote, so the history reads as one customer's.
func (s *Service) moveContact(ctx context.Context, winner, loser uuid.UUID) error {
	return s.db.Run(ctx, func(tx *gorm.DB) error {
		// The loser's conversations, read before they move: their messages are found through
		// the conversation index rather than a scan of every message of the tenant.
		var moved []uuid.UUID
		if err := tx.Model(&Conversation{}).Where("contact_id = ?", loser).Pluck("id", &moved).Error; err != nil {
			return fmt.Errorf("conversations: move merged contact: %w", err)
		}
		if err := tx.Model(&Conversation{}).Where("contact_id = ?", loser).Update("contact_id", winner).Error; err != nil {
			return fmt.Errorf("conversations: move merged contact: %w", err)
		}
		for start := 0; start < len(moved); start += 500 {
			part := moved[start:min(start+500, len(moved))]
			err := tx.Model(&Message{}).
				Where("conversation_id IN ? AND author_kind = ? AND author_id = ?", part, AuthorContact, loser.String()).
				Update("author_id", winner.String()).Error
			if err != nil {
				return fmt.Errorf("conversations: move merged contact's messages: %w", err)
			}
		}
		return nil
	})
}

// publish hands a domain event to the bus once the transaction in ctx has committed.
func (s *Service) publish(ctx context.Context, ev events.Event) {
	if ev.TenantID == uuid.Nil {
		ev.TenantID, _ = tenant.ID(ctx)
	}
	if ev.At.IsZero() {
		ev.At = s.now()
	}
	tenant.AfterCommit(ctx, func(ctx context.Context) { s.bus.Publish(ctx, ev) })
}

// allowHook takes one webhook delivery of the tenant in ctx from its budget, or says when to
// come back: one tenant's flood cannot take every other tenant's share of the process.
func (s *Service) allowHook(ctx context.Context) error {
	tid, _ := tenant.ID(ctx)
	if ok, wait := s.hooks.Allow(tid); !ok {
		return &apperr.RetryAfter{Err: fmt.Errorf("inbound webhooks of this tenant: %w", apperr.ErrRateLimited), Seconds: int(math.Ceil(wait.Seconds()))}
	}
	return nil
}

// conversation loads one conversation of the tenant in ctx.
func (s *Service) conversation(ctx context.Context, id uuid.UUID) (Conversation, error) {
	var c Conversation
	err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&c).Error })
	if err == gorm.ErrRecordNotFound {
		return Conversation{}, fmt.Errorf("conversation %s: %w", id, apperr.ErrNotFound)
	}
	if err != nil {
		return Conversation{}, fmt.Errorf("conversations: get: %w", err)
	}
	return c, nil
}
