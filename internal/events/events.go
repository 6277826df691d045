// Package events is the in-process domain event bus: a module publishes what happened
// (conversation.created, message.created, …) once its transaction has committed, and other
// modules (routing, SLA, analytics, outbound webhooks) subscribe without the publisher knowing
// them. Delivery is synchronous and in order per publisher; a subscriber that needs durability
// enqueues its own task.
package events

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Event is one domain event.
type Event struct {
	Kind           string    `json:"kind"`
	TenantID       uuid.UUID `json:"tenant_id"`
	ConversationID uuid.UUID `json:"conversation_id,omitempty"`
	MessageID      uuid.UUID `json:"message_id,omitempty"`
	ContactID      uuid.UUID `json:"contact_id,omitempty"`
	Data           any       `json:"data,omitempty"`
	At             time.Time `json:"at"`
}

// Handler receives events.
type Handler func(ctx context.Context, ev Event)

// Bus fans events out to subscribers.
type Bus struct {
	mu   sync.RWMutex
	subs map[string][]Handler
	log  *slog.Logger
}

// NewBus returns an empty bus.
func NewBus(log *slog.Logger) *Bus { return &Bus{subs: map[string][]Handler{}, log: log} }

// Subscribe registers h for a kind; "*" receives every kind.
func (b *Bus) Subscribe(kind string, h Handler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[kind] = append(b.subs[kind], h)
}

// Publish delivers ev to its subscribers. A subscriber that panics is logged and does not stop
// the others or the publisher.
func (b *Bus) Publish(ctx context.Context, ev Event) {
	b.mu.RLock()
	hs := append(append([]Handler(nil), b.subs[ev.Kind]...), b.subs["*"]...)
	b.mu.RUnlock()
	for _, h := range hs {
		func() {
			defer func() {
				if r := recover(); r != nil {
					b.log.ErrorContext(ctx, "event subscriber panicked", "kind", ev.Kind, "panic", r)
				}
			}()
			h(ctx, ev)
		}()
	}
}
