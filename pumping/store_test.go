package pumping_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/pumpingtest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/pumping"
	"github.com/verigate/verigate/store"
)

func TestMemoryContract(t *testing.T) {
	pumpingtest.Run(t, func(*testing.T) pumping.Store { return pumping.NewMemory() })
}

func TestRedisContract(t *testing.T) {
	c := redistest.Client(t)
	ap, err := store.AutoPipeline(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
	}{{"plain", c}, {"auto-pipelined", ap}} {
		t.Run(tc.name, func(t *testing.T) {
			pumpingtest.Run(t, func(t *testing.T) pumping.Store { return pumping.NewRedis(tc.client, redistest.Prefix(t)) })
		})
	}
}

// TestRedisClusterContract runs the contract on a real (one-node) Redis
// Cluster: every key of the watch shares one hash tag.
func TestRedisClusterContract(t *testing.T) {
	srv := redistest.StartCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}})
	t.Cleanup(func() { c.Close() })
	pumpingtest.Run(t, func(t *testing.T) pumping.Store { return pumping.NewRedis(c, redistest.Prefix(t)) })
}
