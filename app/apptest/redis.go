package apptest

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// redisPool are the databases of a real Redis that tests with their own worker use. Each app claims one for itself
// with a lock key (SET NX, released when its test ends, expiring if the process dies) and clears
// the asynq keys left there, so test processes running at the same time (the other package's,
// or this one run twice at once) never take each other's tasks.
var redisPool = []int{10, 11, 12, 13, 14, 15}

const redisLockKey = "switchboard-test:lock"

var releaseLock = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)

// ClaimRedis returns the URL of a database of the Redis at base that no other test uses.
func ClaimRedis(t testing.TB, base string) string {
	t.Helper()
	opt, err := redis.ParseURL(base)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	ctx, token := context.Background(), uuid.NewString()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, n := range redisPool {
			o := *opt
			o.DB = n
			c := redis.NewClient(&o)
			ok, err := c.SetNX(ctx, redisLockKey, token, 10*time.Minute).Result()
			if err != nil || !ok {
				c.Close()
				if err != nil {
					t.Fatalf("redis db %d: %v", n, err)
				}
				continue
			}
			t.Cleanup(func() {
				_ = releaseLock.Run(ctx, c, []string{redisLockKey}, token).Err()
				c.Close()
			})
			var stale []string
			if stale, err = c.Keys(ctx, "asynq:*").Result(); err == nil && len(stale) > 0 {
				err = c.Del(ctx, stale...).Err()
			}
			if err != nil {
				t.Fatalf("clear redis db %d: %v", n, err)
			}
			u, err := url.Parse(base)
			if err != nil {
				t.Fatal(err)
			}
			u.Path = fmt.Sprintf("/%d", n)
			return u.String()
		}
	}
	t.Fatalf("no free Redis database among %v", redisPool)
	return ""
}
