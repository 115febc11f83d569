package store_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/limittest"
	"github.com/verigate/verigate/internal/loadtest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

// benchService is a Service on a private redis-server on loopback, and a
// plain client of that server; pipelined puts the Service on
// store.AutoPipeline, as the gateway does by default. No hook is on the
// Service's client: a hook sends go-redis's full-duplex pipeline down a
// slower path the gateway does not take.
func benchService(b *testing.B, pipelined bool) (*verify.Service, *countingSender, redis.UniversalClient) {
	b.Helper()
	srv := redistest.StartServer(b)
	c := srv.Client(b)
	b.Cleanup(func() {
		// How long Redis spent in each script, for docs/BENCHMARKS.md.
		if info, err := c.Info(context.Background(), "commandstats").Result(); err == nil {
			for _, l := range strings.Split(info, "\n") {
				if strings.Contains(l, "cmdstat_evalsha") {
					b.Log(strings.TrimSpace(l))
				}
			}
		}
	})
	var cmds redis.UniversalClient = c
	if pipelined {
		cmds = autoPipelined(b, c)
	}
	// The default policies, their aggregate caps out of reach: one tenant
	// at machine speed into one prefix would meet them within a second.
	svc, sender := redisServiceWith(b, cmds, "vg:", limittest.Unbounded(ratelimit.DefaultPolicies()))
	return svc, sender, c
}

var benchNumbers atomic.Int64

// pair starts a verification of a fresh number and checks its code.
func pair(ctx context.Context, b *testing.B, svc *verify.Service, sender *countingSender) error {
	to := fmt.Sprintf("+49151%08d", benchNumbers.Add(1))
	v, err := svc.Start(ctx, verify.StartRequest{Tenant: "bench", To: to})
	if err != nil {
		return err
	}
	got, err := svc.Check(ctx, "bench", v.ID, sender.code(b, to))
	if err != nil {
		return err
	}
	if got.Status != verify.StatusApproved {
		return fmt.Errorf("status %s", got.Status)
	}
	return nil
}

// BenchmarkRedisStartCheck runs start+check pairs through verify.Service
// as fast as 32 goroutines can, with gateway and Redis on one machine, on
// a plain and on an auto-pipelined client. It reports the commands per
// pair Redis ran (INFO commandstats: every command is a script), and the
// socket reads Redis made per pair (INFO stats): a round trip each on the
// plain client, and the commands of many pairs per read on the
// auto-pipelined one.
func BenchmarkRedisStartCheck(b *testing.B) {
	for _, pipelined := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "autopipelined"}[pipelined], func(b *testing.B) {
			svc, sender, rc := benchService(b, pipelined)
			ctx := context.Background()
			if err := pair(ctx, b, svc, sender); err != nil { // loads the scripts
				b.Fatal(err)
			}
			reads := redisReads(b, rc)
			_, scripts := redisMicros(b, rc)
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := pair(ctx, b, svc, sender); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pairs/s")
			_, scriptsAfter := redisMicros(b, rc)
			b.ReportMetric((scriptsAfter-scripts)/float64(b.N), "commands/pair")
			b.ReportMetric((redisReads(b, rc)-reads)/float64(b.N), "redis_reads/pair")
		})
	}
}

// BenchmarkRedisStartCheckHalfLoad finds the pairs per second the machine
// sustains (three seconds flat out), then issues b.N pairs open loop at half
// that rate and reports latency percentiles, measured from each pair's
// scheduled time so that queueing counts.
func BenchmarkRedisStartCheckHalfLoad(b *testing.B) {
	svc, sender, _ := benchService(b, true)
	ctx := context.Background()
	if err := pair(ctx, b, svc, sender); err != nil {
		b.Fatal(err)
	}
	loadtest.HalfLoad(b, func() error { return pair(ctx, b, svc, sender) })
}

// infoClient is what reads Redis's INFO.
type infoClient interface {
	Info(ctx context.Context, section ...string) *redis.StringCmd
}

// infoValue is the value of the line "<key>:<value>" in Redis's INFO
// section; the benchmark fails without it.
func infoValue(b *testing.B, c infoClient, section, key string) string {
	b.Helper()
	info, err := c.Info(context.Background(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), key+":"); ok {
			return v
		}
	}
	b.Fatalf("INFO %s has no %s", section, key)
	return ""
}

// redisReads is how many times Redis has read from a client socket.
func redisReads(b *testing.B, c infoClient) float64 {
	b.Helper()
	f, err := strconv.ParseFloat(infoValue(b, c, "stats", "total_reads_processed"), 64)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// redisMicros is the time Redis spent running EVALSHA so far, and how many.
func redisMicros(b *testing.B, c infoClient) (usec, calls float64) {
	b.Helper()
	for _, kv := range strings.Split(infoValue(b, c, "commandstats", "cmdstat_evalsha"), ",") {
		k, v, _ := strings.Cut(kv, "=")
		f, _ := strconv.ParseFloat(v, 64)
		switch k {
		case "usec":
			usec = f
		case "calls":
			calls = f
		}
	}
	return usec, calls
}

// BenchmarkRedisScripts measures each script alone, sequentially, and
// reports the time Redis spent in it (INFO commandstats), which depends
// less on the gateway's share of the CPU than the wall clock does.
func BenchmarkRedisScripts(b *testing.B) {
	srv := redistest.StartServer(b)
	c := srv.Client(b)
	ctx := context.Background()
	st := store.NewRedis(c, store.RedisOptions{}) // consumes nothing: the start script alone
	lim, err := ratelimit.NewRedis(c, limittest.Unbounded(ratelimit.DefaultPolicies()), ratelimit.RedisOptions{})
	if err != nil {
		b.Fatal(err)
	}
	// A start as the gateway runs it: the limits consumed in the start script.
	limited := store.NewRedis(c, store.RedisOptions{Limits: lim})
	now := time.Now()
	newV := func(i int) *verify.Verification {
		return &verify.Verification{ID: fmt.Sprintf("VE%032d", i), Tenant: "bench", To: fmt.Sprintf("+49151%08d", i), Country: "DE",
			Channel: verify.ChannelSMS, CallMode: verify.CallModeApprove, Locale: "en", Status: verify.StatusPending,
			MaxAttempts: 5, Sends: 1, Route: verify.Route{Channel: verify.ChannelSMS, Provider: "console", Reasons: []string{"requested"}},
			CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	}
	lock := verify.CheckLock{Max: 10, Window: time.Hour}
	var seq atomic.Int64
	ops := []struct {
		name  string
		setup func(i int)
		op    func(i int) error
	}{
		{"consume", nil, func(i int) error {
			return lim.Consume(ctx, verify.SendSubject{Tenant: "bench", To: fmt.Sprintf("+49152%08d", i), Country: "DE", Channel: verify.ChannelSMS})
		}},
		{"start", nil, func(i int) error { _, _, err := st.Start(ctx, verify.SendSubject{}, newV(i), "hash", now); return err }},
		{"start_limited", nil, func(i int) error {
			v := newV(i)
			_, _, err := limited.Start(ctx, verify.SendSubject{Tenant: v.Tenant, To: v.To, Country: v.Country, Channel: v.Channel}, v, "hash", now)
			return err
		}},
		{"check", func(i int) { _, _, _ = st.Start(ctx, verify.SendSubject{}, newV(i), "hash", now) }, func(i int) error {
			_, err := st.Check(ctx, verify.CheckQuery{Tenant: "bench", ID: fmt.Sprintf("VE%032d", i), Hash: "hash", Now: now, Lock: lock})
			return err
		}},
		{"check_wrong", func(i int) { _, _, _ = st.Start(ctx, verify.SendSubject{}, newV(i), "hash", now) }, func(i int) error {
			_, err := st.Check(ctx, verify.CheckQuery{Tenant: "bench", ID: fmt.Sprintf("VE%032d", i), Hash: "wrong", Now: now, Lock: lock})
			return err
		}},
	}
	for _, o := range ops {
		b.Run(o.name, func(b *testing.B) {
			base := int(seq.Add(int64(b.N) + 1))
			seq.Add(int64(b.N))
			if o.setup != nil {
				for i := range b.N + 1 {
					o.setup(base + i)
				}
			}
			if err := o.op(base + b.N); err != nil { // loads the script
				b.Fatal(err)
			}
			u0, c0 := redisMicros(b, c)
			b.ResetTimer()
			for i := range b.N {
				if err := o.op(base + i); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			u1, c1 := redisMicros(b, c)
			b.ReportMetric((u1-u0)/(c1-c0), "redis_µs/script")
		})
	}
}
