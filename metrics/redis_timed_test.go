package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/metrics"
	"github.com/verigate/verigate/pumping"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sms"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

// fixedRoute sends every verification by the console SMS provider.
type fixedRoute struct{}

func (fixedRoute) Route(context.Context, verify.RouteRequest) (verify.Route, error) {
	return verify.Route{Channel: verify.ChannelSMS, Provider: "console"}, nil
}

// TestTimedClientTimesTheHotPath runs what the gateway sends on its
// auto-pipelined client (the store's scripts and plain commands, the
// limiter's consume, refund and block, the idempotency records, the
// SMS-pumping watch) through a TimedClient, and holds that every command
// the server received was timed: a command added to one of those
// packages that TimedClient does not time fails here.
func TestTimedClientTimesTheHotPath(t *testing.T) {
	base := redistest.StartServer(t).Client(t)
	sent := &sentCommands{} // counts what reaches the server
	base.AddHook(sent)
	ap, err := store.AutoPipeline(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	h := metrics.NewRedisHook()
	c := h.Wrap(ap)
	ctx := context.Background()

	lim, err := ratelimit.NewRedis(c, ratelimit.DefaultPolicies(), ratelimit.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := verify.NewHasher([]byte("timed-client-test-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := verify.NewService(verify.Config{
		Store: store.NewRedis(c, store.RedisOptions{Limits: lim}), Limiter: lim,
		Parser: route.Classifier{}, Router: fixedRoute{}, Formatter: sms.Template{}, Hasher: hasher,
		Senders:   map[string]verify.Sender{"console": sms.NewConsole(io.Discard)},
		CheckLock: verify.CheckLock{Max: 10, Window: time.Hour},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	const to = "+4915112345678"
	v, err := svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to, Channel: verify.ChannelSMS})
	must("start", err)
	_, err = svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to, Channel: verify.ChannelSMS}) // the resend
	must("resend", err)
	_, err = svc.Check(ctx, "t", v.ID, "000000") // a wrong code: the failed-check lock counts it
	must("check", err)
	_, err = svc.CheckByNumber(ctx, "t", to, "000000")
	must("check by number", err)
	_, err = svc.Get(ctx, "t", v.ID)
	must("get", err)
	must("refund", lim.Refund(ctx, verify.SendSubject{Tenant: "t", To: to, Country: "DE", Channel: verify.ChannelSMS, SendID: "refund-me"}))
	must("block", lim.Block(ctx, to, time.Minute))

	idem := store.NewIdempotencyRedis(c)
	_, _, err = idem.Reserve(ctx, "t", "key-1", []byte("pending"), time.Minute)
	must("reserve", err)
	_, _, err = idem.Reserve(ctx, "t", "key-1", []byte("pending"), time.Minute) // taken: reads it
	must("reserve again", err)
	must("save", idem.Save(ctx, "t", "key-1", []byte("done"), time.Minute))
	must("release", idem.Release(ctx, "t", "key-1", []byte("done")))

	pump := pumping.NewRedis(c, "")
	now := time.Now()
	_, _, err = pump.Add(ctx, pumping.Batch{Counts: []pumping.Count{{Prefix: "+4915112", Slot: 1, Tally: pumping.Tally{Sent: 1}}}, From: 0, To: 1, Keep: time.Hour, Now: now})
	must("pumping add", err)
	_, err = pump.Block(ctx, "+4915112", now.Add(time.Hour), now)
	must("pumping block", err)

	timed := timedCommands(t, h)
	if timed == 0 || timed != sent.n.Load() {
		t.Errorf("%d commands timed, %d sent to Redis: TimedClient misses a command the hot path sends", timed, sent.n.Load())
	}
}

// sentCommands counts the commands and pipelines a client sends, except
// the connection handshake (HELLO, CLIENT SETINFO), which go-redis sends
// on a connection of its own before any command.
type sentCommands struct{ n atomic.Int64 }

func (s *sentCommands) DialHook(next redis.DialHook) redis.DialHook { return next }

func (s *sentCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			s.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (s *sentCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return !handshake(c) }) {
			s.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

func handshake(c redis.Cmder) bool { return c.Name() == "hello" || c.Name() == "client" }

// timedCommands sums the sample counts of every series of the command
// duration histogram.
func timedCommands(t *testing.T, h *metrics.RedisHook) int64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(h); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, mf := range mfs {
		if mf.GetName() != "verigate_redis_command_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			n += int64(m.GetHistogram().GetSampleCount())
		}
	}
	return n
}
