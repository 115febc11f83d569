package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartClusterNodes starts n private redis-servers in cluster mode on
// loopback, shares the 16384 slots among them in even ranges and joins
// them into one Redis Cluster (what `redis-cli --cluster create` does,
// without replicas), then waits until every node says cluster_state:ok and
// knows every other. A start whose keys live in several slots then meets
// several nodes: MOVED redirections, one pipeline per master, PUBLISH
// forwarded between nodes. URL is "redis-cluster://" and every node's
// address. The servers stop when the test ends; Restart would bring a node
// back empty and out of the cluster, so these are not for restart tests.
func StartClusterNodes(t testing.TB, n int) (nodes []*Server, url string) {
	t.Helper()
	if n < 1 {
		t.Fatalf("redistest: StartClusterNodes(%d): want at least one node", n)
	}
	addrs := make([]string, n)
	for i := range n {
		nodes = append(nodes, startNode(t, true, true))
		addrs[i] = nodes[i].Addr()
	}
	// Gossip needs a few of the nodes' 100 ms cron rounds; a loaded
	// machine stretches them.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clients := make([]*redis.Client, n)
	for i, s := range nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		defer clients[i].Close()
	}
	const slots = 16384
	for i, c := range clients {
		first, last := i*slots/n, (i+1)*slots/n-1
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", first, last).Err(); err != nil {
			t.Fatalf("redistest: %s: CLUSTER ADDSLOTSRANGE %d %d: %v", nodes[i], first, last, err)
		}
		if i > 0 {
			if err := c.ClusterMeet(ctx, "127.0.0.1", fmt.Sprint(nodes[0].port)).Err(); err != nil {
				t.Fatalf("redistest: %s: CLUSTER MEET: %v", nodes[i], err)
			}
		}
	}
	for {
		ready := true
		var last string
		for _, c := range clients {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				t.Fatalf("redistest: CLUSTER INFO: %v", err)
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d\r", n)) {
				ready, last = false, info
				break
			}
		}
		if ready {
			return nodes, "redis-cluster://" + strings.Join(addrs, ",")
		}
		select {
		case <-ctx.Done():
			t.Fatalf("redistest: the %d-node cluster did not form: %v\n%s", n, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
