package conversations

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/tenant"
)

// committer stores the inbound messages of a tenant that arrive while one of its transactions
// is running together, in the next transaction (group commit). What a transaction costs on its
// own — BEGIN, the tenant setting, the usage day's mark, COMMIT and its flush to disk, and on
// SQLite the one write lock — is then paid once for the group, not once a message. A message
// that arrives while nothing of its tenant is being written goes straight through, so a quiet
// inbox waits for nothing.
//
// A group commits or rolls back as a whole. When one of its messages fails (a redelivery, an
// auto-reply outside any thread, a database error), nothing of the group is kept and every
// message of it is stored again alone, which is what it would have been without the group; so
// a message's outcome never depends on what it was grouped with.
type committer struct {
	s     *Service
	max   int // messages in one transaction
	lanes int // transactions of one tenant at once

	mu      sync.Mutex
	tenants map[uuid.UUID]*lane
}

// lane is one tenant's queue: the messages waiting, and how many leaders are writing.
type lane struct {
	pending []*job
	leaders int
}

// job is one message waiting for its group. done receives, once, the order to lead (take the
// next group and write it) and then, always, the message's outcome.
type job struct {
	ctx  context.Context
	in   *inbound
	done chan outcome
}

type outcome struct {
	lead   bool
	id     uuid.UUID
	stored bool
	err    error
}

func newCommitter(s *Service, max, lanes int) *committer {
	return &committer{s: s, max: max, lanes: lanes, tenants: map[uuid.UUID]*lane{}}
}

// submit stores a prepared message with whichever group it falls into and returns what
// ingestMessage would have.
func (c *committer) submit(ctx context.Context, in *inbound) (uuid.UUID, bool, error) {
	tid, _ := tenant.ID(ctx)
	j := &job{ctx: ctx, in: in, done: make(chan outcome, 1)}
	c.mu.Lock()
	l := c.tenants[tid]
	if l == nil {
		l = &lane{}
		c.tenants[tid] = l
	}
	if l.leaders < c.lanes {
		l.leaders++
		c.mu.Unlock()
		c.lead(tid, l, j)
	} else {
		l.pending = append(l.pending, j)
		c.mu.Unlock()
		// No giving up on ctx here: a waiting job may be handed the lead, and others wait on it.
		// The wait is bounded by the transaction ahead, which runs under its own deadline.
		if o := <-j.done; o.lead {
			c.lead(tid, l, j)
		} else {
			return o.id, o.stored, o.err
		}
	}
	o := <-j.done
	return o.id, o.stored, o.err
}

// lead writes first with the messages waiting behind it, then hands the lead to the next
// waiting message, if any, so that its own caller is answered without waiting for others.
func (c *committer) lead(tid uuid.UUID, l *lane, first *job) {
	c.mu.Lock()
	n := min(len(l.pending), c.max-1)
	group := make([]*job, 0, n+1)
	group = append(group, first)
	group = append(group, l.pending[:n]...)
	l.pending = append(l.pending[:0:0], l.pending[n:]...)
	c.mu.Unlock()

	// Senders in a fixed order (stable, so one sender's messages keep theirs): the tenant's
	// concurrent groups on PostgreSQL then lock contacts and conversations in the same order
	// and wait for each other instead of deadlocking.
	slices.SortStableFunc(group, func(a, b *job) int { return strings.Compare(senderKey(a.in), senderKey(b.in)) })
	c.write(group)

	c.mu.Lock()
	if len(l.pending) > 0 {
		next := l.pending[0]
		l.pending = l.pending[1:]
		c.mu.Unlock()
		next.done <- outcome{lead: true}
		return
	}
	l.leaders--
	if l.leaders == 0 {
		delete(c.tenants, tid)
	}
	c.mu.Unlock()
}

func senderKey(in *inbound) string {
	if len(in.m.From) == 0 {
		return ""
	}
	return in.m.From[0].Kind + ":" + in.m.From[0].Value
}

// write stores a group in one transaction and tells each job its outcome.
func (c *committer) write(group []*job) {
	s := c.s
	if len(group) == 1 {
		j := group[0]
		id, stored, err := s.storeAlone(j.ctx, j.in)
		j.done <- outcome{id: id, stored: stored, err: err}
		return
	}
	type result struct {
		id    uuid.UUID
		fetch []uuid.UUID
	}
	results := make([]result, len(group))
	// The transaction runs under the first message's context (its tenant is every message's);
	// the realtime and domain events of all of them go out after its commit.
	err := s.db.Tx(group[0].ctx, func(ctx context.Context) error {
		for i, j := range group {
			id, fetch, err := s.store(ctx, j.in)
			if err != nil {
				return err
			}
			results[i] = result{id: id, fetch: fetch}
		}
		return nil
	})
	if err != nil {
		for _, j := range group {
			id, stored, err := s.storeAlone(j.ctx, j.in)
			j.done <- outcome{id: id, stored: stored, err: err}
		}
		return
	}
	for i, j := range group {
		for _, a := range results[i].fetch {
			s.enqueueFetch(j.ctx, a)
		}
		j.done <- outcome{id: results[i].id, stored: true}
	}
}
