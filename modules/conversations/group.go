package conversations

import (
	"context"
	"fmt"
	"hash/fnv"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/modules/contacts"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// committer stores the inbound messages of a tenant that arrive while one of its transactions
// is running together, in the next transaction (group commit). What a transaction costs on its
// own — BEGIN, the tenant setting, the usage day's mark, COMMIT and its flush to disk, and on
// SQLite the one write lock — is then paid once for the group, not once a message. A message
// that arrives while nothing of its lane is being written goes straight through, so a quiet
// inbox waits for nothing.
//
// A tenant's senders are spread over its lanes by a hash of the sender, and a lane writes one
// group at a time: the messages of one sender are stored one transaction after the other, in
// the order they came, so two messages of a sender arriving together never open two
// conversations, and two groups never lock the same contact or conversation (no deadlocks on
// PostgreSQL, where a tenant's lanes write in parallel).
//
// A group commits or rolls back as a whole. When one of its messages fails (a redelivery, an
// auto-reply outside any thread, a database error), nothing of the group is kept and every
// message of it is stored again alone, which is what it would have been without the group; so
// a message's outcome never depends on what it was grouped with.
type committer struct {
	s     *Service
	max   int // messages in one transaction
	lanes int // lanes of a tenant, each writing one transaction at a time

	mu    sync.Mutex
	queue map[laneKey]*lane
}

type laneKey struct {
	tenant uuid.UUID
	lane   int
}

// lane is the queue of one lane: the messages waiting, and whether one is writing.
type lane struct {
	pending []*job
	busy    bool
}

// job is one message waiting for its group. done receives, once, the order to lead (take the
// next group and write it) and then, always, the message's outcome.
type job struct {
	ctx      context.Context
	in       *inbound
	done     chan outcome
	answered bool // by the leader writing its group, which alone touches it meanwhile
}

// answer tells a waiting job what became of its message.
func (j *job) answer(o outcome) {
	j.answered = true
	j.done <- o
}

type outcome struct {
	lead   bool
	id     uuid.UUID
	stored bool
	err    error
}

func newCommitter(s *Service, max, lanes int) *committer {
	return &committer{s: s, max: max, lanes: lanes, queue: map[laneKey]*lane{}}
}

// submit stores a prepared message with whichever group it falls into and returns what
// ingestMessage would have.
func (c *committer) submit(ctx context.Context, in *inbound) (uuid.UUID, bool, error) {
	tid, _ := tenant.ID(ctx)
	key := laneKey{tenant: tid}
	if c.lanes > 1 {
		h := fnv.New32a()
		h.Write([]byte(senderKey(in)))
		key.lane = int(h.Sum32() % uint32(c.lanes))
	}
	j := &job{ctx: ctx, in: in, done: make(chan outcome, 1)}
	c.mu.Lock()
	l := c.queue[key]
	if l == nil {
		l = &lane{}
		c.queue[key] = l
	}
	if !l.busy {
		l.busy = true
		c.mu.Unlock()
		c.lead(key, l, j)
	} else {
		l.pending = append(l.pending, j)
		c.mu.Unlock()
		// No giving up on ctx here: a waiting job may be handed the lead, and others wait on it.
		// The wait is bounded by the transaction ahead, which runs under its own deadline.
		if o := <-j.done; o.lead {
			c.lead(key, l, j)
		} else {
			return o.id, o.stored, o.err
		}
	}
	o := <-j.done
	return o.id, o.stored, o.err
}

// lead writes first with the messages waiting behind it, then hands the lead to the next
// waiting message, if any, so that its own caller is answered without waiting for others.
func (c *committer) lead(key laneKey, l *lane, first *job) {
	c.mu.Lock()
	n := min(len(l.pending), c.max-1)
	group := make([]*job, 0, n+1)
	group = append(group, first)
	group = append(group, l.pending[:n]...)
	l.pending = append(l.pending[:0:0], l.pending[n:]...)
	c.mu.Unlock()

	c.writeGuarded(group)

	c.mu.Lock()
	if len(l.pending) > 0 {
		next := l.pending[0]
		l.pending = l.pending[1:]
		c.mu.Unlock()
		next.done <- outcome{lead: true}
		return
	}
	l.busy = false
	delete(c.queue, key)
	c.mu.Unlock()
}

// writeGuarded writes a group; should that panic, every message of the group not yet answered
// gets an error (the provider delivers it again) and the lane goes on, rather than leaving its
// waiting messages, and every later one of the lane, waiting forever.
func (c *committer) writeGuarded(group []*job) {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("conversations: storing a group of %d messages panicked: %v", len(group), r)
			c.s.log.ErrorContext(group[0].ctx, "group commit panicked", "err", err, "stack", string(debug.Stack()))
			for _, j := range group {
				if !j.answered {
					j.answer(outcome{err: err})
				}
			}
		}
	}()
	c.write(group)
}

// senderKey names the sender of a message by its first identity.
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
		j.answer(outcome{id: id, stored: stored, err: err})
		return
	}
	ids := make([]uuid.UUID, len(group))
	fetch := make([][]uuid.UUID, len(group)) // each message's attachments to fetch once committed
	// The transaction runs under the first message's context (its tenant is every message's);
	// the realtime and domain events of all of them go out after its commit.
	err := s.db.Tx(group[0].ctx, func(ctx context.Context) error {
		clear(fetch)
		ins := make([]*inbound, len(group))
		all := true
		for i, j := range group {
			ins[i] = j.in
			all = all && simple(j.in)
		}
		if err := s.lockThreads(ctx, ins); err != nil {
			return err
		}
		if all {
			got, f, err := s.storeGroup(ctx, ins)
			copy(ids, got)
			copy(fetch, f)
			return err
		}
		// Threading headers and thread keys are looked up message by message: each must see
		// what the ones before it wrote.
		for i, j := range group {
			id, f, err := s.store(ctx, j.in)
			if err != nil {
				return err
			}
			ids[i], fetch[i] = id, f
		}
		return nil
	})
	if err != nil {
		for _, j := range group {
			id, stored, err := s.storeAlone(j.ctx, j.in)
			j.answer(outcome{id: id, stored: stored, err: err})
		}
		return
	}
	for i, j := range group {
		for _, a := range fetch[i] {
			s.enqueueFetch(j.ctx, a)
		}
		j.answer(outcome{id: ids[i], stored: true})
	}
}

// lockThreads makes the transactions that may open a conversation for the same sender, or
// for the same provider thread, on a channel wait for each other across serve processes, as
// a process's own lanes already do within it: a message looks for its sender's live
// conversation only once the one before it that might have opened it has committed. A message
// locks each of its sender's identities (any of them may name the contact) and its thread key.
// The locks are PostgreSQL transaction-level advisory locks, taken first thing in the
// transaction, before any row lock, and in key order, so two transactions never wait on each
// other in a cycle. Two messages whose identities do not overlap still race if a stored
// contact owns both; senders use the same identity on a channel in practice. SQLite has one
// writer, which orders everything already.
func (s *Service) lockThreads(ctx context.Context, ins []*inbound) error {
	if s.db.Dialect() != tenant.Postgres {
		return nil
	}
	tid, _ := tenant.ID(ctx)
	key := func(ch uuid.UUID, k string) int64 {
		h := fnv.New64a()
		h.Write(tid[:])
		h.Write(ch[:])
		h.Write([]byte(k))
		return int64(h.Sum64())
	}
	keys := make([]int64, 0, len(ins))
	for _, in := range ins {
		n := len(keys)
		for _, id := range in.m.From {
			if id, err := contacts.NormalizeIdentity(id); err == nil { // the form contacts are found by
				keys = append(keys, key(in.ch.ID, "sender:"+id.Kind+":"+id.Value))
			}
		}
		if len(keys) == n {
			keys = append(keys, key(in.ch.ID, "sender:"+senderKey(in)))
		}
		if in.m.ThreadKey != "" {
			keys = append(keys, key(in.ch.ID, "thread:"+in.m.ThreadKey))
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	list := make([]string, len(keys))
	for i, k := range keys {
		list[i] = strconv.FormatInt(k, 10)
	}
	// One statement with one text whatever the number of keys (an array literal), taking the
	// locks in the array's order: ORDER BY the ordinality is the order the function scan yields
	// its rows in (the plan has no Sort), and the lock is evaluated row by row as they come.
	q := "SELECT pg_advisory_xact_lock(k) FROM unnest(?::bigint[]) WITH ORDINALITY AS t(k, n) ORDER BY n"
	if err := s.db.Run(ctx, func(tx *gorm.DB) error {
		return tx.Exec(q, "{"+strings.Join(list, ",")+"}").Error
	}); err != nil {
		return fmt.Errorf("conversations: lock threads: %w", err)
	}
	return nil
}
