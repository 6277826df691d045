package realtime

import (
	"context"
	"time"

	"github.com/hibiken/asynq"

	"github.com/switchboard-cloud/switchboard/internal/queue"
)

// TaskPrune deletes journal rows older than Retention.
const TaskPrune = "realtime:prune"

// Jobs registers the hub's task handlers.
func (h *Hub) Jobs(mux *asynq.ServeMux) { mux.HandleFunc(TaskPrune, h.HandlePrune) }

// Schedules prunes every hour: the journal only has to reach back as far as a client may have
// been away, and a week is more than any console tab sleeps.
func (h *Hub) Schedules() []queue.Schedule {
	return []queue.Schedule{{Cron: "@every 1h", Task: asynq.NewTask(TaskPrune, nil), Opts: []asynq.Option{asynq.Unique(50 * time.Minute), asynq.MaxRetry(3)}}}
}

// HandlePrune runs Prune with the retention; rows deleted before a failure stay deleted.
func (h *Hub) HandlePrune(ctx context.Context, _ *asynq.Task) error {
	n, err := h.Prune(ctx, Retention)
	if n > 0 {
		h.log.InfoContext(ctx, "realtime journal pruned", "rows", n)
	}
	return err
}
