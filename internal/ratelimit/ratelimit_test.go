package ratelimit

import (
	"testing"
	"time"
)

func TestPerKey(t *testing.T) {
	clock := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	p := New[string](10, 5)
	p.now = func() time.Time { return clock }

	for i := range 5 {
		if ok, _ := p.Allow("a"); !ok {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	ok, wait := p.Allow("a")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("past the burst: ok=%v wait=%v, want refused with a wait of at most a second", ok, wait)
	}
	if ok, _ := p.Allow("b"); !ok {
		t.Fatal("another key's budget was taken by the first one's")
	}
	clock = clock.Add(100 * time.Millisecond) // one token back at 10 a second
	if ok, _ := p.Allow("a"); !ok {
		t.Fatal("a token that came back was refused")
	}
	if ok, _ := p.Allow("a"); ok {
		t.Fatal("two tokens taken where one came back")
	}

	clock = clock.Add(11 * time.Minute)
	p.Allow("c") // sweeps the keys idle for more than ten minutes
	if _, kept := p.buckets["a"]; kept || len(p.buckets) != 1 {
		t.Fatalf("idle keys kept: %d buckets", len(p.buckets))
	}
}
