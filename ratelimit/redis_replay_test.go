package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/verify"
)

// TestConsumeRunTwiceCountsOnce: go-redis sends a script again when its
// reply is late and Redis may run both copies. The second run of one
// consume (same member) must neither count the send again nor, at the
// limit, deny the send the first run allowed, on the one-script and the
// per-policy (Cluster) path.
func TestConsumeRunTwiceCountsOnce(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	for _, perPolicy := range []bool{false, true} {
		t.Run(map[bool]string{false: "one script", true: "per policy"}[perPolicy], func(t *testing.T) {
			p := Policy{Name: "n", Scope: ScopeNumber, Limit: 2, Window: time.Hour}
			r, err := NewRedis(c, []Policy{p}, RedisOptions{Prefix: redistest.Prefix(t), PerPolicy: perPolicy})
			if err != nil {
				t.Fatal(err)
			}
			s := verify.SendSubject{Tenant: "acme", To: "+4915123456789", Channel: verify.ChannelSMS}
			if err := r.Consume(ctx, s); err != nil {
				t.Fatal(err)
			}
			buckets := r.buckets(s)
			for run := 1; run <= 2; run++ { // the last send that fits, run twice
				if err := r.consume(ctx, s, "", "the-member", "b", buckets); err != nil {
					t.Fatalf("run %d of one consume: %v", run, err)
				}
			}
			if n := c.ZCard(ctx, buckets[0].key).Val(); n != 2 {
				t.Fatalf("bucket holds %d sends, want 2", n)
			}
			if err := r.Consume(ctx, s); err == nil {
				t.Fatal("a third send was allowed under a limit of 2")
			}
		})
	}
}
