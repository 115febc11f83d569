package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/storetest"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

// runningChanges starts a RedisChanges on c for the store with prefix, as
// one gateway holds it, and returns it once its subscription stands.
func runningChanges(t *testing.T, c redis.UniversalClient, prefix string) *store.RedisChanges {
	t.Helper()
	feed := store.NewRedisChanges(c, prefix, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { feed.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	// The subscription's confirmation wakes every waiter.
	probe, stop, err := feed.Subscribe(ctx, "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	select {
	case <-probe:
	case <-time.After(10 * time.Second):
		t.Fatal("redis change subscription not established")
	}
	return feed
}

// TestRedisChangesContract runs the contract with two feeds on the store's
// Redis, as two gateways hold them: a change made through the store reaches
// the waiters of both.
func TestRedisChangesContract(t *testing.T) {
	c := redistest.Client(t)
	for _, tc := range []struct {
		name    string
		cluster bool
	}{
		{"one round trip", false},
		{"cluster path", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.RunChanges(t, func(t *testing.T) (verify.Store, []verify.Changes) {
				prefix := redistest.Prefix(t)
				st := store.NewRedis(c, store.RedisOptions{Prefix: prefix, Cluster: tc.cluster})
				return st, []verify.Changes{runningChanges(t, c, prefix), runningChanges(t, c, prefix)}
			})
		})
	}
}

// TestRedisClusterChanges runs the contract on a real Redis Cluster: the
// scripts PUBLISH from a Cluster script and the ClusterClient's one
// subscription hears them.
func TestRedisClusterChanges(t *testing.T) {
	srv := redistest.StartCluster(t)
	c, err := store.OpenRedis(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	storetest.RunChanges(t, func(t *testing.T) (verify.Store, []verify.Changes) {
		prefix := redistest.Prefix(t)
		st := store.NewRedis(c, store.RedisOptions{Prefix: prefix, Cluster: store.IsCluster(c)})
		return st, []verify.Changes{runningChanges(t, c, prefix)}
	})
}

// TestRedisClusterThreeNodesChanges: on three masters a change published
// from a script on one node reaches the one subscription held on another
// (classic PUBLISH is forwarded to every node).
func TestRedisClusterThreeNodesChanges(t *testing.T) {
	_, url := redistest.StartClusterNodes(t, 3)
	c, err := store.OpenRedis(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	storetest.RunChanges(t, func(t *testing.T) (verify.Store, []verify.Changes) {
		prefix := redistest.Prefix(t)
		st := store.NewRedis(c, store.RedisOptions{Prefix: prefix, Cluster: store.IsCluster(c)})
		return st, []verify.Changes{runningChanges(t, c, prefix)}
	})
}

// TestRedisChangesReconnect: a subscription that loses its connection wakes
// every waiter once it is back, since changes made meanwhile went unheard.
func TestRedisChangesReconnect(t *testing.T) {
	srv := redistest.StartServer(t)
	c, err := store.OpenRedis(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	feed := runningChanges(t, c, redistest.Prefix(t))
	waiter, stop, err := feed.Subscribe(context.Background(), "some-id")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	srv.Stop()
	srv.Restart()
	select {
	case <-waiter:
	case <-time.After(30 * time.Second):
		t.Fatal("waiter not woken after the subscription came back")
	}
}
