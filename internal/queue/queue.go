// Package queue wires asynq once: the client that enqueues, the server that runs handlers, and
// the scheduler for periodic tasks. Without a Redis URL it starts an in-process
// Redis-compatible server (miniredis) so the embedded default needs nothing installed;
// production uses a real Redis.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Options configure the queue.
type Options struct {
	RedisURL    string // empty starts the in-process server
	Concurrency int
	Log         *slog.Logger
	// PollInterval is how often scheduled and retried tasks are moved to their queue;
	// short in the embedded mode and in tests.
	PollInterval time.Duration
	// RetryBase, when set, replaces asynq's default backoff (which starts at seconds and
	// grows to hours) by RetryBase·2ⁿ capped at 64·RetryBase: tests and small installations
	// want failed tasks back quickly.
	RetryBase time.Duration
}

// Queue is the connection to Redis (real or in-process) and the asynq client.
type Queue struct {
	opts    Options
	connOpt asynq.RedisConnOpt
	Client  *asynq.Client
	rdb     redis.UniversalClient

	mini      *miniredis.Miniredis
	stopClock chan struct{}
	clockDone sync.WaitGroup
}

// Open connects to Redis or starts the in-process server.
func Open(opts Options) (*Queue, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 10
	}
	q := &Queue{opts: opts}
	if opts.RedisURL == "" {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("queue: start in-process redis: %w", err)
		}
		q.mini = m
		q.stopClock = make(chan struct{})
		q.clockDone.Add(1)
		go q.driveClock()
		q.connOpt = asynq.RedisClientOpt{Addr: m.Addr()}
		if opts.PollInterval == 0 {
			q.opts.PollInterval = 200 * time.Millisecond
		}
	} else {
		co, err := asynq.ParseRedisURI(opts.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("queue: parse REDIS_URL: %w", err)
		}
		q.connOpt = co
	}
	if q.opts.PollInterval == 0 {
		q.opts.PollInterval = time.Second
	}
	// asynq's client, server and scheduler each own their connections (asynq refuses to close
	// a shared one); rdb is ours, for health checks and pub/sub.
	q.rdb = q.connOpt.MakeRedisClient().(redis.UniversalClient)
	q.Client = asynq.NewClient(q.connOpt)
	return q, nil
}

// driveClock advances miniredis' clock with the wall clock: miniredis only expires keys
// (asynq's unique locks, leases) when told time has passed.
func (q *Queue) driveClock() {
	defer q.clockDone.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-q.stopClock:
			return
		case now := <-t.C:
			q.mini.SetTime(now)
			q.mini.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Embedded reports whether the in-process server is used.
func (q *Queue) Embedded() bool { return q.mini != nil }

// Redis returns a client for the same server (health checks, pub/sub).
func (q *Queue) Redis() redis.UniversalClient { return q.rdb }

// Ping checks that Redis answers.
func (q *Queue) Ping(ctx context.Context) error { return q.rdb.Ping(ctx).Err() }

// Enqueue puts a task on its queue. A task with a TaskID that is already queued is not an
// error: the first one will run, which is what at-least-once callers want.
func (q *Queue) Enqueue(ctx context.Context, t *asynq.Task, opts ...asynq.Option) error {
	_, err := q.Client.EnqueueContext(ctx, t, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue: enqueue %s: %w", t.Type(), err)
	}
	return nil
}

// Close stops the client and, in embedded mode, the in-process server.
func (q *Queue) Close() error {
	err := errors.Join(q.Client.Close(), q.rdb.Close())
	if q.mini != nil {
		close(q.stopClock)
		q.clockDone.Wait()
		q.mini.Close()
	}
	return err
}

// Schedule is a periodic task a module asks for.
type Schedule struct {
	Cron string // robfig/cron spec, e.g. "@every 1m"
	Task *asynq.Task
	Opts []asynq.Option
}

// Worker runs asynq's server (handlers) and scheduler (periodic tasks).
type Worker struct {
	srv   *asynq.Server
	sched *asynq.Scheduler
}

// NewWorker prepares a worker over q's Redis.
func (q *Queue) NewWorker(schedules []Schedule) (*Worker, error) {
	lg := slogAdapter{q.opts.Log.With("component", "asynq")}
	srv := asynq.NewServer(q.connOpt, asynq.Config{
		Concurrency:              q.opts.Concurrency,
		Queues:                   map[string]int{"critical": 6, "default": 3, "low": 1},
		Logger:                   lg,
		LogLevel:                 asynq.WarnLevel,
		TaskCheckInterval:        q.opts.PollInterval,
		DelayedTaskCheckInterval: q.opts.PollInterval,
		ShutdownTimeout:          10 * time.Second,
		RetryDelayFunc:           q.retryDelay(),
	})
	sched := asynq.NewScheduler(q.connOpt, &asynq.SchedulerOpts{Logger: lg, LogLevel: asynq.WarnLevel, Location: time.UTC})
	for _, s := range schedules {
		if _, err := sched.Register(s.Cron, s.Task, s.Opts...); err != nil {
			return nil, fmt.Errorf("queue: schedule %s %q: %w", s.Task.Type(), s.Cron, err)
		}
	}
	return &Worker{srv: srv, sched: sched}, nil
}

func (q *Queue) retryDelay() asynq.RetryDelayFunc {
	base := q.opts.RetryBase
	if base <= 0 {
		return asynq.DefaultRetryDelayFunc
	}
	return func(n int, _ error, _ *asynq.Task) time.Duration {
		return base << min(n, 6)
	}
}

// Start runs the handlers in mux and the scheduler in the background.
func (w *Worker) Start(mux *asynq.ServeMux) error {
	if err := w.srv.Start(mux); err != nil {
		return fmt.Errorf("queue: start server: %w", err)
	}
	if err := w.sched.Start(); err != nil {
		w.srv.Shutdown()
		return fmt.Errorf("queue: start scheduler: %w", err)
	}
	return nil
}

// Shutdown stops taking tasks and waits for running handlers (up to asynq's timeout).
func (w *Worker) Shutdown() {
	w.sched.Shutdown()
	w.srv.Shutdown()
}

// slogAdapter lets asynq log through slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a slogAdapter) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a slogAdapter) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a slogAdapter) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a slogAdapter) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)); panic(fmt.Sprint(args...)) }
