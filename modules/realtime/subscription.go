package realtime

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/tenant"
)

// Subscription is one subscriber's stream of a tenant's events. C is closed when it ends; Err
// then says why.
type Subscription struct {
	C <-chan Event

	hub    *Hub
	tenant uuid.UUID
	filter func(Event) bool
	cancel context.CancelFunc
	done   chan struct{} // closed when the subscription ends

	mu       sync.Mutex
	c        chan Event
	live     bool    // catch-up finished: the fan-out sends to c itself
	pending  []Event // live events that arrived during catch-up
	closed   bool
	chClosed bool
	err      error
	// seen holds the ids sent during catch-up: an event committed just before the catch-up
	// query can still arrive live (its publish or this node's dispatch lagged), and must not be
	// sent twice. Dropped a while after going live, once no such straggler can be left.
	seen   map[uuid.UUID]struct{}
	liveAt time.Time
}

// Subscribe delivers the tenant's events accepted by filter (nil = all): first the journaled
// ones after since (uuid.Nil: none, live only), in id order, then the live ones as they arrive,
// each once. filter is called once per event, in delivery order and never concurrently, so it
// may keep state; it must be quick, and must not block. It registers for the live stream before it reads the journal and holds what arrives
// meanwhile, so an event published between the two is neither missed nor sent twice. It returns
// at once; the catch-up runs behind C. Close, or cancelling ctx, ends it.
//
// On SQLite ids are in commit order (see Append). On PostgreSQL two transactions may commit in
// the opposite order of their event ids, so an event whose transaction was still open when the
// client saw a later one, and that was published while the client was away, has an id below
// since and is not caught up. A client that must not miss even that asks from a few seconds
// before its last id (any UUIDv7 will do as since: its last id with the time lowered, see
// SinceBefore) and drops the ids it already has.
func (h *Hub) Subscribe(ctx context.Context, tenantID, since uuid.UUID, filter func(Event) bool) (*Subscription, error) {
	if tenantID == uuid.Nil {
		return nil, fmt.Errorf("realtime: subscribe: %w", tenant.ErrNoTenant)
	}
	if id, ok := tenant.ID(ctx); ok && id != tenantID {
		return nil, fmt.Errorf("realtime: subscribe to another tenant: %w", tenant.ErrCrossTenant)
	} else if !ok {
		ctx = tenant.WithOrg(ctx, tenant.Org{ID: tenantID})
	}
	if err := h.CheckSubscribe(since); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Subscription{hub: h, tenant: tenantID, filter: filter, cancel: cancel, done: make(chan struct{}),
		c: make(chan Event, h.bufSize)}
	s.C = s.c
	if err := h.add(s); err != nil {
		cancel()
		return nil, err
	}
	context.AfterFunc(ctx, s.Close)
	go s.catchUp(ctx, since)
	return s, nil
}

// Close ends the subscription.
func (s *Subscription) Close() { s.closeWith(nil) }

// CloseWithError ends the subscription with a reason (ErrAuthLost, …) that Err reports and the
// socket loop turns into its close code.
func (s *Subscription) CloseWithError(err error) { s.closeWith(err) }

// Err says why the subscription ended: nil while it runs or after Close, else one of the Err*
// values of this package or the caller's reason.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Done is closed when the subscription ends.
func (s *Subscription) Done() <-chan struct{} { return s.done }

func (s *Subscription) closeWith(reason error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed, s.err, s.pending, s.seen = true, reason, nil, nil
	close(s.done)
	// While catching up, that goroutine is the one sending on c; it closes c on its way out.
	if s.live && !s.chClosed {
		close(s.c)
		s.chClosed = true
	}
	s.mu.Unlock()
	s.cancel()
	s.hub.remove(s)
}

// offer is the fan-out's hand-over; false means the subscriber cannot keep up. While the
// subscription catches up, events are held unfiltered and filtered when they are sent, so the
// filter sees every event in the order it is delivered, from one goroutine at a time (the
// widget's filter learns a visitor's new conversations from the events themselves).
func (s *Subscription) offer(ev Event, now time.Time) bool {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return true
	case !s.live:
		defer s.mu.Unlock()
		if len(s.pending) >= s.hub.maxPending {
			return false
		}
		s.pending = append(s.pending, ev)
		return true
	}
	if s.seen != nil {
		if now.Sub(s.liveAt) > s.hub.seenGrace {
			s.seen = nil
		} else if _, dup := s.seen[ev.ID]; dup {
			s.mu.Unlock()
			return true
		}
	}
	s.mu.Unlock()
	// Once live, only the fan-out calls the filter, and outside the lock: it may be slow.
	if s.filter != nil && !s.filter(ev) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true
	}
	select {
	case s.c <- ev:
		return true
	default:
		return false
	}
}

// catchUp sends the journal after since, then what arrived live meanwhile, then hands c over to
// the fan-out. It is the only sender on c until then, so it may block on a slow reader without
// holding up anyone else.
func (s *Subscription) catchUp(ctx context.Context, since uuid.UUID) {
	defer func() {
		s.mu.Lock()
		if s.closed && !s.chClosed {
			close(s.c)
			s.chClosed = true
		}
		s.mu.Unlock()
	}()
	seen := map[uuid.UUID]struct{}{}
	for after := since; after != uuid.Nil; {
		var rows []journalRow
		err := s.hub.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Where("id > ?", after).Order("id").Limit(s.hub.pageSize).Find(&rows).Error
		})
		if err != nil {
			if ctx.Err() == nil {
				s.hub.log.ErrorContext(ctx, "realtime catch-up", "err", err, "tenant_id", s.tenant)
				s.closeWith(fmt.Errorf("realtime: catch up: %w", err))
			}
			return
		}
		for _, r := range rows {
			ev := r.event()
			after = ev.ID
			seen[ev.ID] = struct{}{}
			if s.filter != nil && !s.filter(ev) {
				continue
			}
			if !s.send(ev) {
				return
			}
		}
		if len(rows) < s.hub.pageSize {
			break
		}
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		if len(s.pending) == 0 {
			s.live, s.liveAt = true, s.hub.now()
			if len(seen) > 0 {
				s.seen = seen
			}
			s.mu.Unlock()
			return
		}
		batch := s.pending
		s.pending = nil
		s.mu.Unlock()
		for _, ev := range batch {
			if _, dup := seen[ev.ID]; dup {
				continue
			}
			if s.filter != nil && !s.filter(ev) {
				continue
			}
			if !s.send(ev) {
				return
			}
		}
	}
}

func (s *Subscription) send(ev Event) bool {
	select {
	case s.c <- ev:
		return true
	case <-s.done:
		return false
	}
}

// SinceBefore returns a since that reaches d further back than id: id with its time lowered
// by d. See Subscribe for why a client might want that.
func SinceBefore(id uuid.UUID, d time.Duration) uuid.UUID {
	if id == uuid.Nil {
		return id
	}
	sec, nsec := id.Time().UnixTime()
	ms := max(time.Unix(sec, nsec).Add(-d).UnixMilli(), 0)
	for i := range 6 {
		id[i] = byte(uint64(ms) >> (40 - 8*i))
	}
	return id
}
