// Package ratelimit keeps a token bucket per key (a tenant, say) in one process.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// PerKey allows each key rate events a second with bursts of burst. Buckets of keys not seen
// for idle are dropped, so the map holds the keys that are active, not every key ever seen.
type PerKey[K comparable] struct {
	rate  rate.Limit
	burst int
	idle  time.Duration
	now   func() time.Time

	mu      sync.Mutex
	buckets map[K]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// New returns a limiter of perSecond events a second per key, bursts of burst.
func New[K comparable](perSecond float64, burst int) *PerKey[K] {
	return &PerKey[K]{rate: rate.Limit(perSecond), burst: burst, idle: 10 * time.Minute, now: time.Now, buckets: map[K]*bucket{}}
}

// Allow takes one event of key's budget. When none is left it returns false and how long
// until one is.
func (p *PerKey[K]) Allow(key K) (bool, time.Duration) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.swept) > p.idle {
		for k, b := range p.buckets {
			if now.Sub(b.seen) > p.idle {
				delete(p.buckets, k)
			}
		}
		p.swept = now
	}
	b := p.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(p.rate, p.burst)}
		p.buckets[key] = b
	}
	b.seen = now
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	// Tokens come back at rate: the next one is 1/rate away at most.
	wait := time.Duration(math.Ceil(float64(time.Second) / float64(p.rate)))
	return false, wait
}
