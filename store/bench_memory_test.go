package store_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/verigate/verigate/internal/limittest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/verify"
)

// BenchmarkRedisMemoryPerPending starts b.N SMS verifications of fresh
// numbers through verify.Service on a private redis-server, wired as the
// gateway wires it (the default policies, their aggregate caps out of
// reach), leaves them pending, and reports Redis's used_memory per pending
// verification: the verification's keys and its sends in the limit
// buckets, for docs/OPERATIONS.md ("Sizing"). The aggregate caps' entries
// (tenant, prefix, country, global) age out after their one-minute
// windows; bytes_per_verification_after_caps is the figure without them
// (the per-number bucket lives 10 minutes, the verification its lifetime
// and 24 h more).
func BenchmarkRedisMemoryPerPending(b *testing.B) {
	srv := redistest.StartServer(b)
	c := srv.Client(b)
	ctx := context.Background()
	svc, _ := redisServiceWith(b, c, "vg:", limittest.Unbounded(ratelimit.DefaultPolicies()))
	used := func() float64 {
		v, err := strconv.ParseFloat(infoValue(b, c, "memory", "used_memory"), 64)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	// Warm up: the scripts loaded, the aggregate buckets created.
	if _, err := svc.Start(ctx, verify.StartRequest{Tenant: "mem", To: "+4915199999999"}); err != nil {
		b.Fatal(err)
	}
	before := used()
	b.ResetTimer()
	for i := range b.N {
		if _, err := svc.Start(ctx, verify.StartRequest{Tenant: "mem", To: fmt.Sprintf("+49151%08d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	after := used()
	b.ReportMetric((after-before)/float64(b.N), "bytes_per_verification")
	// The four aggregate caps hold one member of about 127 bytes per send
	// each (docs/BENCHMARKS.md, "Redis"); take them out as their windows would.
	for _, p := range ratelimit.DefaultPolicies() {
		if p.Scope == ratelimit.ScopeNumber {
			continue
		}
		keys, err := c.Keys(ctx, "vg:rl:{"+p.Name+"*").Result()
		if err != nil {
			b.Fatal(err)
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric((used()-before)/float64(b.N), "bytes_per_verification_after_caps")
	n, err := c.DBSize(ctx).Result()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/float64(b.N), "keys_per_verification")
}
