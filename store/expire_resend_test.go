package store

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/storetest"
	"github.com/verigate/verigate/verify"
)

// TestRedisExpireResent runs one sweep call's scripts twice, as go-redis
// does when a reply is lost (max_retries, the auto-pipeliner replaying
// unanswered commands): the second run must answer as the first did, or
// the batch the first took reaches no callback. On the Cluster path the
// expire script alone is run twice too, and another sweep's run finds
// nothing to report. On a real (one-node) Cluster too, whose client
// refuses a script whose reply key is in another slot than the index.
func TestRedisExpireResent(t *testing.T) {
	shared := func(t *testing.T) redis.UniversalClient { return redistest.Client(t) }
	for _, tc := range []struct {
		name    string
		client  func(t *testing.T) redis.UniversalClient
		cluster bool
	}{
		{"one server", shared, false},
		{"cluster path", shared, true},
		{"cluster", func(t *testing.T) redis.UniversalClient {
			c, err := OpenRedis(redistest.StartCluster(t).URL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster := tc.cluster
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r := NewRedis(tc.client(t), RedisOptions{Prefix: redistest.Prefix(t), Cluster: cluster})
			r.token = func() string { return "resent" }
			var due time.Time
			for range 3 {
				v := storetest.NewVerification(t, "t", storetest.Number(t), storetest.T0)
				if _, _, err := r.Start(ctx, storetest.Subject(v), v, "h", storetest.T0); err != nil {
					t.Fatal(err)
				}
				due = v.ExpiresAt
			}
			first, more, err := r.Expire(ctx, due, 10)
			if err != nil || more || len(first) != 3 {
				t.Fatalf("Expire = %d expired, more %v, %v; want 3, false", len(first), more, err)
			}
			second, more, err := r.Expire(ctx, due, 10)
			if err != nil || more || !reflect.DeepEqual(first, second) {
				t.Fatalf("the same call run again = %d expired (more %v, %v), want the first run's %d", len(second), more, err, len(first))
			}
			r.token = nil
			if got, _, err := r.Expire(ctx, due, 10); err != nil || len(got) != 0 {
				t.Fatalf("another sweep = %d expired, %v; want none", len(got), err)
			}
			if !cluster {
				return
			}
			ids := make([]string, len(first))
			for i, v := range first {
				ids[i] = v.ID
			}
			again, done, err := r.expireClaimed(ctx, ids, due, "resent")
			if err != nil || len(done) != len(ids) || !reflect.DeepEqual(views(again), views(first)) {
				t.Fatalf("expire scripts run again = %d expired, %d done, %v; want the first run's %d", len(again), len(done), err, len(first))
			}
			other, _, err := r.expireClaimed(ctx, ids, due, "another")
			if err != nil || len(other) != 0 {
				t.Fatalf("another sweep's expire scripts = %d expired, %v; want none", len(other), err)
			}
		})
	}
}

// views names each verification by id and status, to compare two
// sweeps' replies.
func views(vs []*verify.Verification) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.ID+" "+string(v.Status))
	}
	return out
}
