package ratelimit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/limittest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

func TestRedisContract(t *testing.T) {
	c := redistest.Client(t)
	ap, err := store.AutoPipeline(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	for _, tc := range []struct {
		name      string
		client    redis.UniversalClient
		perPolicy bool
	}{
		{"one script", c, false},
		// The Cluster path (policy by policy, refunds) on one server.
		{"per policy", c, true},
		{"auto-pipelined", ap, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limittest.Run(t, func(t *testing.T, p []ratelimit.Policy, now func() time.Time) verify.Limiter {
				l, err := ratelimit.NewRedis(tc.client, p, ratelimit.RedisOptions{Prefix: redistest.Prefix(t), Now: now, PerPolicy: tc.perPolicy})
				if err != nil {
					t.Fatal(err)
				}
				return l
			})
		})
	}
}

// TestRedisServerClock runs without an injected clock: the script reads
// Redis's TIME, so Retry-After is computed against the server's clock.
func TestRedisServerClock(t *testing.T) {
	c := redistest.Client(t)
	pol := []ratelimit.Policy{{Name: "two", Scope: ratelimit.ScopeNumber, Limit: 2, Window: time.Hour}}
	for _, perPolicy := range []bool{false, true} {
		l, err := ratelimit.NewRedis(c, pol, ratelimit.RedisOptions{Prefix: redistest.Prefix(t), PerPolicy: perPolicy})
		if err != nil {
			t.Fatal(err)
		}
		s := verify.SendSubject{Tenant: "t", To: "+4915100000001", Channel: verify.ChannelSMS}
		ctx := t.Context()
		for i := range 2 {
			if err := l.Consume(ctx, s); err != nil {
				t.Fatalf("send %d: %v", i+1, err)
			}
		}
		var le *verify.LimitError
		if err := l.Consume(ctx, s); !errors.As(err, &le) || le.Policy != "two" || le.RetryAfter <= 0 || le.RetryAfter > time.Hour {
			t.Fatalf("3rd send: %v, want a denial by two with 0 < Retry-After <= 1h", err)
		}
		if err := l.Block(ctx, "+4915100000002", time.Hour); err != nil {
			t.Fatal(err)
		}
		s.To = "+4915100000002"
		if err := l.Consume(ctx, s); !errors.As(err, &le) || le.Policy != "blocked" || le.RetryAfter <= 0 || le.RetryAfter > time.Hour {
			t.Fatalf("blocked send: %v, want a denial by blocked with 0 < Retry-After <= 1h", err)
		}
	}
}

// TestRedisClusterThreeNodesContract runs the limiter contract on a Redis
// Cluster of three masters: one send's buckets live on different nodes, so
// the per-policy consume and its refunds cross nodes as in production.
func TestRedisClusterThreeNodesContract(t *testing.T) {
	_, url := redistest.StartClusterNodes(t, 3)
	c, err := store.OpenRedis(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	limittest.Run(t, func(t *testing.T, p []ratelimit.Policy, now func() time.Time) verify.Limiter {
		l, err := ratelimit.NewRedis(c, p, ratelimit.RedisOptions{Prefix: redistest.Prefix(t), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

// TestRedisClusterContract runs the contract on a real (one-node) Redis
// Cluster through go-redis's ClusterClient: policy by policy, each script
// within one slot.
func TestRedisClusterContract(t *testing.T) {
	srv := redistest.StartCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}})
	t.Cleanup(func() { c.Close() })
	limittest.Run(t, func(t *testing.T, p []ratelimit.Policy, now func() time.Time) verify.Limiter {
		l, err := ratelimit.NewRedis(c, p, ratelimit.RedisOptions{Prefix: redistest.Prefix(t), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}
