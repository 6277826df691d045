package conversations_test

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/modules/conversations"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// TestTwoNodesOpenOneConversation: two serve processes on one PostgreSQL database each receive
// a message from the same customer at the same moment, every customer's last conversation
// being resolved. Each node's lanes order its own messages only; both looking for a live
// conversation, finding none and opening one each would split the customer's thread. Each
// customer must end with one open conversation holding both messages.
func TestTwoNodesOpenOneConversation(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("TEST_DATABASE_URL not set: two serve processes sharing a PostgreSQL database, skipped")
	}
	e := scenarioEnv(t, tenant.Postgres)
	other := e.Node()
	ch, _ := apiChannels(t, e)
	ctx1, ch1 := hookChannel(t, e, ch)
	ctx2, ch2, err := other.Channels.Resolve(e.Ctx, "hook:"+ch.PublicID, ch.Type)
	if err != nil {
		t.Fatal(err)
	}
	const senders, rounds = 40, 3
	msg := func(pid, from string) provider.Batch {
		return provider.Batch{Messages: []provider.InboundMessage{{ProviderID: pid, From: []provider.Identity{{Kind: provider.IdentityExternal, Value: from}},
			Name: from, Text: pid, OccurredAt: time.Now()}}}
	}
	resolved := "resolved"
	for round := range rounds {
		var convs []uuid.UUID
		for i := range senders {
			res, err := e.App.Inbox.Ingest(ctx1, ch1, msg(fmt.Sprintf("r%d-first-%d", round, i), fmt.Sprintf("node-cust-%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			convs = append(convs, uuid.MustParse(pluck(t, e, ctx1, "messages", "conversation_id", "id = ?", res.MessageIDs[0])[0]))
		}
		if _, err := e.App.Inbox.Bulk(ctx1, conversations.BulkInput{IDs: convs, Update: conversations.UpdateInput{Status: &resolved}}, nil); err != nil {
			t.Fatal(err)
		}

		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 2*senders)
		for i := range senders {
			from := fmt.Sprintf("node-cust-%d", i)
			for n, ingest := range []func() error{
				func() error {
					_, err := e.App.Inbox.Ingest(ctx1, ch1, msg(fmt.Sprintf("r%d-a-%d", round, i), from))
					return err
				},
				func() error {
					_, err := other.Inbox.Ingest(ctx2, ch2, msg(fmt.Sprintf("r%d-b-%d", round, i), from))
					return err
				},
			} {
				wg.Go(func() {
					<-start
					if err := ingest(); err != nil {
						errs <- fmt.Errorf("node %d, %s: %w", n+1, from, err)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i := range senders {
			from := fmt.Sprintf("node-cust-%d", i)
			contact := pluck(t, e, ctx1, "contact_identities", "contact_id", "value = ?", from)
			open := pluck(t, e, ctx1, "conversations", "id", "contact_id = ? AND status = 'open'", contact[0])
			if len(open) != 1 {
				t.Errorf("round %d: %s has %d open conversations, want 1", round, from, len(open))
				continue
			}
			got := pluck(t, e, ctx1, "messages", "provider_id", "conversation_id = ?", open[0])
			if len(got) != 2 {
				t.Errorf("round %d: %s's open conversation holds %v, want both new messages", round, from, got)
			}
		}
		if t.Failed() {
			return
		}
	}
}
