// Package realtime tells the console inbox and the chat widget what happens while they are open:
// new messages, status changes, assignment (journaled events) and typing and presence
// (ephemeral ones). Journaled events are written in the business transaction and published
// after it commits; every serve process fans them out to its own sockets through one Redis
// PSUBSCRIBE (the in-process Redis in the embedded default). A client that reconnects passes
// the last event id it saw and is sent what it missed from the journal before the live stream.
package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/ids"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// Event is what a subscriber receives. Journaled events can be asked for again by id; ephemeral
// ones (typing, presence) have an id too, but only live subscribers ever see them.
type Event struct {
	ID             uuid.UUID       `json:"id"`
	Kind           string          `json:"kind"`
	ConversationID *uuid.UUID      `json:"conversation_id,omitempty"`
	Payload        json.RawMessage `json:"payload"`
	At             time.Time       `json:"at"`
	TenantID       uuid.UUID       `json:"-"`

	// wire is the event's JSON as it came over Redis, shared by every local subscriber so a
	// thousand sockets do not marshal the same event a thousand times.
	wire []byte
}

// JSON returns the event as a client receives it.
func (e Event) JSON() ([]byte, error) {
	if e.wire != nil {
		return e.wire, nil
	}
	return json.Marshal(e)
}

// Retention is how long the journal keeps events; a client further behind reloads instead.
const Retention = 7 * 24 * time.Hour

// ChannelPrefix starts the Redis channel of each tenant: switchboard:rt:<tenant id>.
const ChannelPrefix = "switchboard:rt:"

// Why a subscription ended. The socket loop turns each into a close code, so a client knows
// whether to reconnect with its last id at once, later, or not without logging in again.
var (
	// ErrSlowConsumer: the subscriber did not keep up; its events stay in the journal.
	ErrSlowConsumer = errors.New("realtime: subscriber fell behind; reconnect with the last event id")
	// ErrResync: this node's Redis subscription broke, so live events may have been lost.
	ErrResync = errors.New("realtime: live stream interrupted; reconnect with the last event id")
	// ErrShutdown: the hub stopped (the process is going away).
	ErrShutdown = errors.New("realtime: server shutting down; reconnect with the last event id")
	// ErrUnavailable: the node has no live Redis subscription right now (HTTP 503).
	ErrUnavailable error = &statusError{"realtime: live stream not connected; retry shortly", fiber.StatusServiceUnavailable}
	// ErrAuthLost: the credentials that opened the socket no longer admit it.
	ErrAuthLost = errors.New("realtime: credentials no longer valid")
	// ErrSinceExpired: the events after that id may have been pruned; the client must reload
	// (HTTP 410).
	ErrSinceExpired error = &statusError{"realtime: events after that id are no longer kept; reload, then subscribe without since", fiber.StatusGone}
)

// statusError is a refusal a handler may return as it is before a WebSocket upgrade: the
// app's error handler finds its status through errors.As, as for a *fiber.Error.
type statusError struct {
	msg    string
	status int
}

func (e *statusError) Error() string { return e.msg }

func (e *statusError) As(target any) bool {
	if fe, ok := target.(**fiber.Error); ok {
		*fe = fiber.NewError(e.status, e.msg)
		return true
	}
	return false
}

// Hub journals, publishes and fans out events. One per process.
type Hub struct {
	db  *tenant.DB
	rdb redis.UniversalClient
	log *slog.Logger
	now func() time.Time

	bufSize    int           // a subscription's channel
	maxPending int           // live events held while a subscription catches up
	pageSize   int           // journal rows per catch-up query
	health     time.Duration // silence on the Redis subscription before it is pinged
	seenGrace  time.Duration // how long catch-up ids are remembered to drop late live copies

	mu      sync.RWMutex
	subs    map[uuid.UUID]map[*Subscription]struct{}
	running bool
	live    bool
}

// NewHub returns a hub over the database and Redis; call Start before subscribing.
func NewHub(db *tenant.DB, rdb redis.UniversalClient, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.Default()
	}
	return &Hub{db: db, rdb: rdb, log: log.With("component", "realtime"), now: time.Now,
		bufSize: 256, maxPending: 4096, pageSize: 500, health: 15 * time.Second, seenGrace: time.Minute,
		subs: map[uuid.UUID]map[*Subscription]struct{}{}}
}

// journalRow is one row of realtime_events.
type journalRow struct {
	TenantID       uuid.UUID  `gorm:"type:uuid;primaryKey"`
	ID             uuid.UUID  `gorm:"type:uuid;primaryKey"`
	Kind           string     `gorm:"column:kind"`
	ConversationID *uuid.UUID `gorm:"type:uuid"`
	Payload        string     `gorm:"column:payload"`
	CreatedAt      time.Time  `gorm:"column:created_at"`
}

func (journalRow) TableName() string { return "realtime_events" }

func (r journalRow) event() Event {
	return Event{ID: r.ID, Kind: r.Kind, ConversationID: r.ConversationID, Payload: json.RawMessage(r.Payload), At: r.CreatedAt.UTC(), TenantID: r.TenantID}
}

// newEvent checks and encodes an event; its id and time are stamped by the caller.
func newEvent(ctx context.Context, kind string, conversationID uuid.UUID, payload any) (Event, error) {
	tid, ok := tenant.ID(ctx)
	if !ok {
		return Event{}, fmt.Errorf("realtime: %s event: %w", kind, tenant.ErrNoTenant)
	}
	if kind == "" {
		return Event{}, errors.New("realtime: event without a kind")
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return Event{}, fmt.Errorf("realtime: %s payload: %w", kind, err)
	}
	ev := Event{Kind: kind, Payload: raw, TenantID: tid}
	if conversationID != uuid.Nil {
		ev.ConversationID = &conversationID
	}
	return ev, nil
}

// stamp gives an event its id and time. The time is cut to microseconds, PostgreSQL's
// precision, so an event reads the same live and from the journal.
func (h *Hub) stamp(ev *Event) { ev.ID, ev.At = ids.New(), h.now().UTC().Truncate(time.Microsecond) }

// Append journals an event inside the caller's transaction (ctx carries the tenant and usually a
// tenant.Tx; without one the event gets a transaction of its own) and publishes it to every
// node's subscribers once that transaction commits. payload is marshalled to JSON.
func (h *Hub) Append(ctx context.Context, kind string, conversationID uuid.UUID, payload any) error {
	ev, err := newEvent(ctx, kind, conversationID, payload)
	if err != nil {
		return err
	}
	return h.db.Tx(ctx, func(ctx context.Context) error {
		// The id is taken inside the transaction. On SQLite every write transaction holds the
		// write lock from BEGIN, so ids come out in commit order and "after since" misses
		// nothing; see Subscribe for PostgreSQL.
		h.stamp(&ev)
		// The transaction's events are written together just before it commits and published
		// together after: a transaction that stores a group of messages journals them in one
		// statement and publishes them in one Redis round trip.
		j, fresh := tenant.TxLocal(ctx, journalKey{}, func() *journal { return &journal{} })
		j.events = append(j.events, ev)
		if !fresh {
			return nil
		}
		tenant.AfterCommit(ctx, func(ctx context.Context) {
			if err := h.publish(ctx, j.events...); err != nil {
				// The events are journaled: sockets on other nodes get them when they reconnect.
				h.log.ErrorContext(ctx, "publish realtime events", "err", err, "events", len(j.events), "tenant_id", j.events[0].TenantID)
			}
		})
		return tenant.BeforeCommit(ctx, func(ctx context.Context) error { return h.write(ctx, j.events) })
	})
}

// journal is what one transaction appended.
type journal struct{ events []Event }

type journalKey struct{}

// write journals events, in statements of up to 200 rows (6 columns each: far below either
// database's parameter limit).
func (h *Hub) write(ctx context.Context, evs []Event) error {
	rows := make([]journalRow, len(evs))
	for i, ev := range evs {
		rows[i] = journalRow{TenantID: ev.TenantID, ID: ev.ID, Kind: ev.Kind, ConversationID: ev.ConversationID, Payload: string(ev.Payload), CreatedAt: ev.At}
	}
	return h.db.Run(ctx, func(tx *gorm.DB) error {
		for start := 0; start < len(rows); start += 200 {
			if err := tx.Create(rows[start:min(start+200, len(rows))]).Error; err != nil {
				return fmt.Errorf("realtime: journal %d events: %w", len(rows), err)
			}
		}
		return nil
	})
}

// publish sends events to every node, in order, in one round trip.
func (h *Hub) publish(ctx context.Context, evs ...Event) error {
	bodies := make([][]byte, len(evs))
	for i, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("realtime: encode %s: %w", ev.Kind, err)
		}
		bodies[i] = b
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := h.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, ev := range evs {
			p.Publish(ctx, ChannelPrefix+ev.TenantID.String(), bodies[i])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("realtime: publish %d events (first %s): %w", len(evs), evs[0].Kind, err)
	}
	return nil
}

// Broadcast publishes an ephemeral event (typing, presence) to every node at once, without
// journaling it and without waiting for a transaction in ctx.
func (h *Hub) Broadcast(ctx context.Context, kind string, conversationID uuid.UUID, payload any) error {
	ev, err := newEvent(ctx, kind, conversationID, payload)
	if err != nil {
		return err
	}
	h.stamp(&ev)
	return h.publish(ctx, ev)
}

// Start subscribes this node to every tenant's channel with one PSUBSCRIBE and fans what
// arrives out to the local subscriptions until ctx ends. It returns once Redis has confirmed
// the subscription, so nothing published afterwards can pass this node by. If Redis cannot be
// reached it says so, and keeps trying in the background; until then Subscribe answers
// ErrUnavailable.
//
// One pattern subscription rather than a SUBSCRIBE per tenant with local sockets: the node's
// subscription exists before any socket does, so a new socket never races a SUBSCRIBE's
// confirmation against its catch-up query, and sockets coming and going cost Redis nothing.
// The price is that every node receives every tenant's events and drops those nobody local
// listens to; the per-tenant channel names keep a move to per-tenant (or sharded) subscriptions
// open for when that volume matters.
func (h *Hub) Start(ctx context.Context) error {
	h.mu.Lock()
	if h.running {
		h.mu.Unlock()
		return errors.New("realtime: hub already started")
	}
	h.running = true
	h.mu.Unlock()
	ps, err := h.psubscribe(ctx)
	if err == nil {
		h.setLive(true)
	}
	go h.run(ctx, ps)
	if err != nil {
		return fmt.Errorf("%w (retrying in the background)", err)
	}
	return nil
}

func (h *Hub) psubscribe(ctx context.Context) (*redis.PubSub, error) {
	ps := h.rdb.PSubscribe(ctx, ChannelPrefix+"*")
	for {
		msg, err := ps.ReceiveTimeout(ctx, 10*time.Second)
		if err != nil {
			_ = ps.Close()
			return nil, fmt.Errorf("realtime: psubscribe %s*: %w", ChannelPrefix, err)
		}
		if s, ok := msg.(*redis.Subscription); ok && s.Kind == "psubscribe" {
			return ps, nil
		}
	}
}

// run receives until ctx ends. Whenever the subscription breaks, live events may have been
// lost in the gap, so every local subscription is closed (its client reconnects with its last
// id and catches up from the journal) and a fresh subscription is made.
func (h *Hub) run(ctx context.Context, ps *redis.PubSub) {
	defer h.shutdown()
	for {
		for wait := 100 * time.Millisecond; ps == nil; wait = min(2*wait, 5*time.Second) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			var err error
			if ps, err = h.psubscribe(ctx); err != nil {
				h.log.WarnContext(ctx, "realtime subscribe failed; retrying", "err", err)
			} else {
				h.setLive(true)
			}
		}
		err := h.receive(ctx, ps)
		ps = nil
		if ctx.Err() != nil {
			return
		}
		h.log.WarnContext(ctx, "realtime subscription interrupted; resubscribing", "err", err)
		h.interrupt()
	}
}

// receive dispatches messages until the subscription fails. A quiet connection is pinged; one
// that stays silent after the ping is treated as broken (a half-open TCP connection would
// otherwise look like a quiet tenant forever).
func (h *Hub) receive(ctx context.Context, ps *redis.PubSub) error {
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer ps.Close()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, h.health)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged && ctx.Err() == nil {
				if err := ps.Ping(ctx); err != nil {
					return err
				}
				pinged = true
				continue
			}
			return err
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			h.dispatch(m.Channel, m.Payload)
		case *redis.Subscription:
			// go-redis resubscribed on a new connection by itself: the gap may have lost events.
			return fmt.Errorf("realtime: resubscribed (%s) after a reconnect", m.Kind)
		}
	}
}

func (h *Hub) setLive(v bool) {
	h.mu.Lock()
	h.live = v
	h.mu.Unlock()
}

// interrupt marks the node not live and ends every local subscription with ErrResync.
func (h *Hub) interrupt() { h.closeAll(ErrResync, true) }

func (h *Hub) shutdown() { h.closeAll(ErrShutdown, false) }

func (h *Hub) closeAll(reason error, running bool) {
	h.mu.Lock()
	h.live, h.running = false, running
	var all []*Subscription
	for _, set := range h.subs {
		for s := range set {
			all = append(all, s)
		}
	}
	h.subs = map[uuid.UUID]map[*Subscription]struct{}{}
	h.mu.Unlock()
	for _, s := range all {
		s.closeWith(reason)
	}
}

// dispatch hands one published event to this node's subscriptions of its tenant. It never
// blocks on a subscriber: one that cannot take the event is closed instead.
func (h *Hub) dispatch(channel, payload string) {
	tid, err := uuid.Parse(strings.TrimPrefix(channel, ChannelPrefix))
	if err != nil {
		return
	}
	// The set is copied so that filters run without the hub's lock: one that ends its own
	// subscription must not deadlock the fan-out.
	h.mu.RLock()
	subs := make([]*Subscription, 0, len(h.subs[tid]))
	for s := range h.subs[tid] {
		subs = append(subs, s)
	}
	h.mu.RUnlock()
	if len(subs) == 0 {
		return
	}
	var ev Event
	if err := json.Unmarshal([]byte(payload), &ev); err != nil || ev.ID == uuid.Nil {
		h.log.Warn("undecodable realtime message", "channel", channel, "err", err)
		return
	}
	ev.TenantID, ev.wire = tid, []byte(payload)
	now := h.now()
	for _, s := range subs {
		if !s.offer(ev, now) {
			s.closeWith(ErrSlowConsumer)
		}
	}
}

func (h *Hub) add(s *Subscription) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.live {
		return ErrUnavailable
	}
	set := h.subs[s.tenant]
	if set == nil {
		set = map[*Subscription]struct{}{}
		h.subs[s.tenant] = set
	}
	set[s] = struct{}{}
	return nil
}

func (h *Hub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if set := h.subs[s.tenant]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(h.subs, s.tenant)
		}
	}
}

// CheckSubscribe answers what Subscribe would refuse before subscribing: a malformed or
// expired since, or a node without a live stream. A WebSocket handler calls it before the
// upgrade, while the refusal can still be an HTTP status.
func (h *Hub) CheckSubscribe(since uuid.UUID) error {
	if since != uuid.Nil {
		if since.Version() != 7 {
			return apperr.Malformed("since", "must be an event id")
		}
		sec, nsec := since.Time().UnixTime()
		at := time.Unix(sec, nsec)
		switch now := h.now(); {
		case at.After(now.Add(time.Minute)):
			return apperr.Malformed("since", "is an id from the future")
		case at.Before(now.Add(-Retention)):
			return ErrSinceExpired
		}
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.live {
		return ErrUnavailable
	}
	return nil
}

// Prune deletes journal rows older than olderThan across every tenant, in batches so that
// SQLite's single writer is never held for long.
func (h *Hub) Prune(ctx context.Context, olderThan time.Duration) (int64, error) {
	cutoff := h.now().UTC().Add(-olderThan)
	ctx = h.db.AsPlatform(ctx, "prune the realtime event journal")
	const batch = 5000
	var total int64
	for {
		var n int64
		err := h.db.Tx(ctx, func(ctx context.Context) error {
			return h.db.Run(ctx, func(tx *gorm.DB) error {
				res := tx.Exec(`DELETE FROM realtime_events WHERE (tenant_id, id) IN
					(SELECT tenant_id, id FROM realtime_events WHERE created_at < ? LIMIT ?)`, cutoff, batch)
				n = res.RowsAffected
				return res.Error
			})
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("realtime: prune: %w", err)
		}
		if n < batch {
			return total, nil
		}
	}
}
