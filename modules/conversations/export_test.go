package conversations

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// Delivery is an inbound message of a channel.
type Delivery struct {
	Ch provider.Channel
	M  provider.InboundMessage
}

// StoreAsGroup writes the messages with storeGroup in one transaction, as the committer writes
// a group of simple messages that arrived together; it fails where the committer would fall
// back to storing them alone.
func (s *Service) StoreAsGroup(ctx context.Context, msgs []Delivery) ([]uuid.UUID, error) {
	ins := make([]*inbound, len(msgs))
	for i, d := range msgs {
		in, err := s.prepare(ctx, d.Ch, d.M)
		if err != nil {
			return nil, err
		}
		if !simple(&in) {
			return nil, fmt.Errorf("message %d is not simple", i)
		}
		ins[i] = &in
	}
	var ids []uuid.UUID
	err := s.db.Tx(ctx, func(ctx context.Context) error {
		var err error
		ids, _, err = s.storeGroup(ctx, ins)
		return err
	})
	return ids, err
}

// WriteAsGroup hands the messages to the committer as one group, as if they had arrived
// together while their lane was busy, and returns what became of each: its id and whether it
// was stored now, as Ingest counts them.
func (s *Service) WriteAsGroup(ctx context.Context, msgs []Delivery) ([]uuid.UUID, []bool, error) {
	group := make([]*job, len(msgs))
	for i, d := range msgs {
		in, err := s.prepare(ctx, d.Ch, d.M)
		if err != nil {
			return nil, nil, err
		}
		group[i] = &job{ctx: ctx, in: &in, done: make(chan outcome, 1)}
	}
	s.group.writeGuarded(group)
	ids, stored := make([]uuid.UUID, len(msgs)), make([]bool, len(msgs))
	for i, j := range group {
		o := <-j.done
		if o.err != nil {
			return nil, nil, fmt.Errorf("message %d: %w", i, o.err)
		}
		ids[i], stored[i] = o.id, o.stored
	}
	return ids, stored, nil
}

// TouchConversation writes one inbound message's touch (a new preview, one more unread,
// reopened) onto conversation id, as storing a message does.
func (s *Service) TouchConversation(ctx context.Context, id uuid.UUID, at time.Time, preview string) error {
	return s.touchConversations(ctx, []convTouch{{id: id, at: at, preview: preview, unread: 1, reopen: true}})
}
