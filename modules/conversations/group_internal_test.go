package conversations

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
	"github.com/switchboard-cloud/switchboard/tenant"
)

// TestPanickingGroupAnswersEveryMessageAndFreesTheLane: a service without a database panics on
// every write. Each message waiting in the group must get an error instead of waiting forever,
// and the lane must take the next message afterwards.
func TestPanickingGroupAnswersEveryMessageAndFreesTheLane(t *testing.T) {
	c := newCommitter(&Service{log: slog.New(slog.DiscardHandler)}, 64, 1)
	ctx := tenant.WithOrg(context.Background(), tenant.Org{ID: uuid.New(), Kind: tenant.KindTenant})
	in := func(sender string) *inbound {
		return &inbound{m: provider.InboundMessage{From: []provider.Identity{{Kind: "external", Value: sender}}}}
	}
	submitAll := func(n int) []error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, errs[i] = c.submit(ctx, in(string(rune('a'+i%26))))
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("messages still waiting 10 s after their group panicked")
		}
		return errs
	}
	for round := range 2 { // the second round finds the lane free again
		for i, err := range submitAll(20) {
			if err == nil {
				t.Fatalf("round %d, message %d: no error from a group that could not be written", round, i)
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) != 0 {
		t.Fatalf("%d lanes left behind", len(c.queue))
	}
}
