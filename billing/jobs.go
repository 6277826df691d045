package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/switchboard-cloud/switchboard/internal/queue"
)

// TaskRollup recomputes the rollups of every day marked since the last run.
const TaskRollup = "billing:rollup"

// Jobs registers the ledger's task handlers.
func (l *Ledger) Jobs(mux *asynq.ServeMux) {
	mux.HandleFunc(TaskRollup, l.HandleRollup)
}

// Schedules lists the ledger's periodic tasks: the rollup every minute, so hourly and daily
// totals trail the ledger by a minute at most.
func (l *Ledger) Schedules() []queue.Schedule {
	return []queue.Schedule{{Cron: "@every 1m", Task: asynq.NewTask(TaskRollup, nil), Opts: []asynq.Option{asynq.Unique(50 * time.Second), asynq.MaxRetry(3)}}}
}

// HandleRollup runs RollupDirty to the end. Killed halfway, the days it finished stay finished
// and the rest are still marked; the next run picks them up.
func (l *Ledger) HandleRollup(ctx context.Context, _ *asynq.Task) error {
	n, err := l.RollupDirty(ctx, 0)
	if n > 0 {
		l.log.InfoContext(ctx, "usage rollup", "days", n)
	}
	if err != nil {
		return fmt.Errorf("billing: rollup: %w", err)
	}
	return nil
}
