package queue_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/switchboard-cloud/switchboard/internal/queue"
)

// backends runs each case on the in-process server and, when TEST_REDIS_URL is set, on a real
// Redis (a database number of its own, flushed first).
func backends(t *testing.T) map[string]queue.Options {
	t.Helper()
	b := map[string]queue.Options{"embedded": {PollInterval: 50 * time.Millisecond}}
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Fatalf("TEST_REDIS_URL: %v", err)
		}
		opt.DB = 9
		c := redis.NewClient(opt)
		if err := c.FlushDB(context.Background()).Err(); err != nil {
			t.Fatalf("flush redis db 9: %v", err)
		}
		c.Close()
		b["redis"] = queue.Options{RedisURL: "redis://" + opt.Addr + "/9", PollInterval: 50 * time.Millisecond}
	} else {
		t.Log("TEST_REDIS_URL not set: real-Redis variant skipped, embedded variant runs")
	}
	return b
}

func open(t *testing.T, o queue.Options) *queue.Queue {
	t.Helper()
	o.Log = slog.New(slog.DiscardHandler)
	q, err := queue.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func start(t *testing.T, q *queue.Queue, mux *asynq.ServeMux, sched []queue.Schedule) {
	t.Helper()
	w, err := q.NewWorker(sched)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestScheduledTaskRunsAfterItsDelay(t *testing.T) {
	for name, o := range backends(t) {
		t.Run(name, func(t *testing.T) {
			q := open(t, o)
			var ranAt atomic.Int64
			mux := asynq.NewServeMux()
			mux.HandleFunc("test:scheduled", func(context.Context, *asynq.Task) error {
				ranAt.Store(time.Now().UnixNano())
				return nil
			})
			start(t, q, mux, nil)
			enq := time.Now()
			// asynq scores scheduled tasks in whole seconds, so a 2 s delay runs after 1 s at least.
			if err := q.Enqueue(context.Background(), asynq.NewTask("test:scheduled", nil), asynq.ProcessIn(2*time.Second)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "scheduled task", 10*time.Second, func() bool { return ranAt.Load() != 0 })
			if d := time.Duration(ranAt.Load() - enq.UnixNano()); d < time.Second {
				t.Fatalf("task ran %v after enqueue, before its delay", d)
			}
		})
	}
}

func TestFailedTaskIsRetried(t *testing.T) {
	for name, o := range backends(t) {
		t.Run(name, func(t *testing.T) {
			q := open(t, o)
			var calls atomic.Int32
			mux := asynq.NewServeMux()
			mux.HandleFunc("test:flaky", func(context.Context, *asynq.Task) error {
				if calls.Add(1) < 3 {
					return errors.New("transient failure")
				}
				return nil
			})
			w, err := q.NewWorker(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Start(mux); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(w.Shutdown)
			// asynq's default backoff is many seconds; the retry itself is what is under test.
			if err := q.Enqueue(context.Background(), asynq.NewTask("test:flaky", nil, asynq.MaxRetry(5)),
				asynq.Retention(time.Minute)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "first attempt", 10*time.Second, func() bool { return calls.Load() >= 1 })
			// Move the retry forward instead of waiting out the backoff.
			insp := asynq.NewInspectorFromRedisClient(q.Redis())
			waitFor(t, "three attempts", 60*time.Second, func() bool {
				_, _ = insp.RunAllRetryTasks("default")
				return calls.Load() >= 3
			})
		})
	}
}

func TestUniqueTaskIsEnqueuedOnce(t *testing.T) {
	for name, o := range backends(t) {
		t.Run(name, func(t *testing.T) {
			q := open(t, o)
			task := asynq.NewTask("test:unique", []byte("same"))
			if _, err := q.Client.Enqueue(task, asynq.Unique(time.Minute), asynq.ProcessIn(time.Hour)); err != nil {
				t.Fatal(err)
			}
			_, err := q.Client.Enqueue(task, asynq.Unique(time.Minute), asynq.ProcessIn(time.Hour))
			if !errors.Is(err, asynq.ErrDuplicateTask) {
				t.Fatalf("second enqueue: got %v, want ErrDuplicateTask", err)
			}
			// The same through our wrapper is not an error: the first task stands.
			if err := q.Enqueue(context.Background(), task, asynq.Unique(time.Minute)); err != nil {
				t.Fatalf("wrapper: %v", err)
			}
			// A task id is unique too.
			if err := q.Enqueue(context.Background(), asynq.NewTask("test:unique", nil), asynq.TaskID("one"), asynq.ProcessIn(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if _, err := q.Client.Enqueue(asynq.NewTask("test:unique", nil), asynq.TaskID("one"), asynq.ProcessIn(time.Hour)); !errors.Is(err, asynq.ErrTaskIDConflict) {
				t.Fatalf("duplicate task id: got %v, want ErrTaskIDConflict", err)
			}
		})
	}
}

func TestUniqueLockExpires(t *testing.T) {
	// In the embedded mode the lock only expires because the clock is driven forward.
	q := open(t, queue.Options{PollInterval: 50 * time.Millisecond})
	// No worker runs, so the task stays pending and only the lock's TTL can free the key.
	task := asynq.NewTask("test:unique-ttl", nil)
	if _, err := q.Client.Enqueue(task, asynq.Unique(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Client.Enqueue(task, asynq.Unique(time.Second)); !errors.Is(err, asynq.ErrDuplicateTask) {
		t.Fatalf("immediate second enqueue: got %v, want ErrDuplicateTask", err)
	}
	waitFor(t, "unique lock expiry", 10*time.Second, func() bool {
		_, err := q.Client.Enqueue(task, asynq.Unique(time.Second))
		return err == nil
	})
}

func TestSchedulerRunsPeriodicTasks(t *testing.T) {
	for name, o := range backends(t) {
		t.Run(name, func(t *testing.T) {
			q := open(t, o)
			var mu sync.Mutex
			var runs int
			mux := asynq.NewServeMux()
			mux.HandleFunc("test:periodic", func(context.Context, *asynq.Task) error {
				mu.Lock()
				runs++
				mu.Unlock()
				return nil
			})
			start(t, q, mux, []queue.Schedule{{Cron: "@every 1s", Task: asynq.NewTask("test:periodic", nil)}})
			waitFor(t, "two periodic runs", 20*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return runs >= 2
			})
		})
	}
}
