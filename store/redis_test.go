package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/storetest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

func TestRedisContract(t *testing.T) {
	c := redistest.Client(t)
	ap := autoPipelined(t, c)
	for _, tc := range []struct {
		name    string
		client  redis.UniversalClient
		cluster bool
	}{
		{"one round trip", c, false},
		// The Cluster path (id key read before the script) on one server.
		{"cluster path", c, true},
		{"auto-pipelined", ap, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) verify.Store {
				return limitedRedis(t, tc.client, tc.cluster)
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
	runPlainAndPipelined(t, c)
}

// TestRedisClusterThreeNodesContract runs the contract on a Redis Cluster
// of three masters (redistest.StartClusterNodes), reached by the
// redis-cluster:// form with every node as a seed: a start's limit buckets,
// its verification and its id key live on different nodes, so the
// per-policy limits, the id key read before a script, MOVED redirections
// and the auto-pipeliner's one stream per master all meet real nodes.
func TestRedisClusterThreeNodesContract(t *testing.T) {
	_, url := redistest.StartClusterNodes(t, 3)
	c, err := store.OpenRedis(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if !store.IsCluster(c) {
		t.Fatalf("OpenRedis(redis-cluster://...) gave %T, want a cluster client", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.RedisHealth(c)(ctx); err != nil {
		t.Fatalf("health of the three-node cluster: %v", err)
	}
	runPlainAndPipelined(t, c)
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
	runPlainAndPipelined(t, c)
}

// autoPipelined is store.AutoPipeline(c), closed when the test ends.
func autoPipelined(t testing.TB, c redis.UniversalClient) redis.UniversalClient {
	t.Helper()
	ap, err := store.AutoPipeline(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	return ap
}

// runPlainAndPipelined runs the store contract on c and on c auto-pipelined,
// telling the store about a cluster as the gateway does (store.IsCluster).
func runPlainAndPipelined(t *testing.T, c redis.UniversalClient) {
	for _, pipelined := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "auto-pipelined"}[pipelined], func(t *testing.T) {
			cmds := c
			if pipelined {
				cmds = autoPipelined(t, c)
			}
			storetest.Run(t, func(t *testing.T) verify.Store {
				return limitedRedis(t, cmds, store.IsCluster(c))
			})
		})
	}
}

// limitedRedis is a Redis store whose starts consume from a Redis limiter
// without policies, as the gateway wires them: the start script (or, on
// the Cluster path, the limiter first) runs the consume, and no start is
// denied.
func limitedRedis(t *testing.T, c redis.UniversalClient, cluster bool) *store.Redis {
	t.Helper()
	prefix := redistest.Prefix(t)
	lim, err := ratelimit.NewRedis(c, nil, ratelimit.RedisOptions{Prefix: prefix, PerPolicy: cluster})
	if err != nil {
		t.Fatal(err)
	}
	return store.NewRedis(c, store.RedisOptions{Prefix: prefix, Limits: lim, Cluster: cluster})
}
