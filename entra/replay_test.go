package entra

import (
	"context"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/redistest"
)

func TestReplayStores(t *testing.T) {
	const ttl = 20 * time.Minute
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, mk := range map[string]func(t *testing.T) (replayStore, func(id string) time.Duration){
		"memory": func(t *testing.T) (replayStore, func(string) time.Duration) {
			m := newMemoryReplay()
			return m, func(id string) time.Duration {
				m.mu.Lock()
				defer m.mu.Unlock()
				return m.seen[id].Sub(t0)
			}
		},
		"redis": func(t *testing.T) (replayStore, func(string) time.Duration) {
			c := redistest.Client(t)
			prefix := redistest.Prefix(t)
			return &redisReplay{c: c, prefix: prefix}, func(id string) time.Duration {
				return c.PTTL(context.Background(), prefix+id).Val()
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, ttlOf := mk(t)
			ctx := context.Background()
			a, b := hintID("h.p.YQ"), hintID("h.p.Yg")
			for i, step := range []struct {
				id    string
				at    time.Duration
				first bool
			}{
				{a, 0, true},
				{a, time.Second, false},
				{b, time.Second, true},
				{a, ttl - time.Second, false},
			} {
				got, err := s.firstUse(ctx, step.id, ttl, t0.Add(step.at))
				if err != nil {
					t.Fatal(err)
				}
				if got != step.first {
					t.Errorf("step %d: first use %v, want %v", i, got, step.first)
				}
			}
			if d := ttlOf(a); d <= ttl-time.Minute || d > ttl {
				t.Errorf("kept for %s, want %s", d, ttl)
			}
		})
	}
	t.Run("memory expiry", func(t *testing.T) {
		m := newMemoryReplay()
		ctx := context.Background()
		m.firstUse(ctx, "x", ttl, t0)
		if ok, _ := m.firstUse(ctx, "x", ttl, t0.Add(ttl)); !ok {
			t.Error("still refused after its TTL")
		}
		m.firstUse(ctx, "y", time.Minute, t0.Add(ttl))
		m.firstUse(ctx, "z", time.Minute, t0.Add(ttl+2*time.Minute))
		if _, ok := m.seen["y"]; ok {
			t.Error("expired entries are never swept")
		}
	})
}

func TestHintID(t *testing.T) {
	if hintID("x.y.YQ") == hintID("x.y.Yg") || len(hintID("x.y.YQ")) != 64 || hintID("a.b.YQ") != hintID("c.d.YR") {
		t.Error("hint ids collide or are not SHA-256 hex")
	}
}
