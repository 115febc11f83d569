package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/storetest"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

func TestRedisContract(t *testing.T) {
	c := redistest.Client(t)
	for _, tc := range []struct {
		name    string
		cluster bool
	}{
		{"one round trip", false},
		// The Cluster path (id key read before the script) on one server.
		{"cluster path", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) verify.Store {
				return store.NewRedis(c, store.RedisOptions{Prefix: redistest.Prefix(t), Cluster: tc.cluster})
			})
		})
	}
}

func TestRedisHealth(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *redistest.Server
	}{
		{"server", redistest.StartServer},
		{"cluster", redistest.StartCluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.start(t)
			c, err := store.OpenRedis(srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			health := store.RedisHealth(c)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := health(ctx); err != nil {
				t.Fatalf("health with Redis up: %v", err)
			}
			srv.Stop()
			if err := health(ctx); err == nil {
				t.Fatal("health with Redis down: nil, want an error")
			}
			srv.Restart()
			for {
				// go-redis probes a server that refused its dials once a second.
				err := health(ctx)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("health after restart: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// TestRedisClusterContract runs the contract on a real (one-node) Redis
// Cluster through go-redis's ClusterClient, which refuses any script that
// touches two slots: the key layout keeps each script within one.
func TestRedisClusterContract(t *testing.T) {
	srv := redistest.StartCluster(t)
	c, err := store.OpenRedis(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	storetest.Run(t, func(t *testing.T) verify.Store {
		return store.NewRedis(c, store.RedisOptions{Prefix: redistest.Prefix(t)})
	})
}

// TestRedisSentinelContract reaches a private server through a real
// Sentinel, by the redis-sentinel:// URL form, and runs the contract there.
func TestRedisSentinelContract(t *testing.T) {
	srv := redistest.StartServer(t)
	sentinel := redistest.StartSentinel(t, srv)
	c, err := store.OpenRedis("redis-sentinel://" + sentinel + "/" + redistest.SentinelMaster + "?db=0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	storetest.Run(t, func(t *testing.T) verify.Store {
		return store.NewRedis(c, store.RedisOptions{Prefix: redistest.Prefix(t)})
	})
}
