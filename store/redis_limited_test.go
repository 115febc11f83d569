package store_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sms"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

// TestStartLimited runs a Service whose store consumes the limits in its
// start: Redis in its start script (one server), on the Cluster path
// (limiter per policy first, store in one slot), and memory through
// store.Limited (consume, then store). Each lets exactly the policy's sends
// through, denies the next with the limiter's error and Retry-After,
// stores and sends nothing for it, and honours a fraud block.
func TestStartLimited(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		memory, cluster, pipelined bool
	}{
		{"one script", false, false, false},
		{"one script, auto-pipelined", false, false, true},
		{"cluster path", false, true, false},
		{"cluster path, auto-pipelined", false, true, true},
		{"memory", true, false, false},
	} {
		cluster := tc.cluster
		t.Run(tc.name, func(t *testing.T) {
			var (
				st  verify.Store
				lim verify.Limiter
			)
			if tc.memory {
				ml, err := ratelimit.NewMemory(ratelimit.DefaultPolicies(), nil)
				if err != nil {
					t.Fatal(err)
				}
				st, lim = store.Limited{Memory: store.NewMemory(), Limits: ml}, ml
			} else {
				var c redis.UniversalClient = redistest.Client(t)
				if tc.pipelined {
					c = autoPipelined(t, c)
				}
				prefix := redistest.Prefix(t)
				rl, err := ratelimit.NewRedis(c, ratelimit.DefaultPolicies(), ratelimit.RedisOptions{Prefix: prefix, PerPolicy: cluster})
				if err != nil {
					t.Fatal(err)
				}
				st, lim = store.NewRedis(c, store.RedisOptions{Prefix: prefix, Limits: rl, Cluster: cluster}), rl
			}
			h, _ := verify.NewHasher([]byte("limited-test-secret-0123456789"))
			sender := &countingSender{}
			svc, err := verify.NewService(verify.Config{
				Store: st, Limiter: lim, Hasher: h,
				Parser: route.Classifier{}, Router: route.Defaults{}, Formatter: sms.Template{},
				Senders: map[string]verify.Sender{"console": sender}, DefaultSender: "console",
				Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			const to = "+4915112349001"
			var id string
			for i := range 5 {
				v, err := svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to})
				if err != nil {
					t.Fatalf("start %d: %v", i+1, err)
				}
				id = v.ID
			}
			_, err = svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to})
			var le *verify.LimitError
			if !errors.As(err, &le) || !errors.Is(err, verify.ErrRateLimited) {
				t.Fatalf("6th start: %v, want a *LimitError", err)
			}
			if le.Policy != "number_sms" || le.RetryAfter <= 9*time.Minute || le.RetryAfter > 10*time.Minute {
				t.Errorf("denial: policy %q, retry after %v; want number_sms, just under 10m", le.Policy, le.RetryAfter)
			}
			if !strings.HasPrefix(err.Error(), "You've reached our limit on text verification codes.") {
				t.Errorf("message %q", err.Error())
			}
			if n := sender.sent.Load(); n != 5 {
				t.Errorf("sent %d, want 5", n)
			}
			v, err := svc.Get(ctx, "t", id)
			if err != nil || v.Sends != 5 {
				t.Errorf("after the denial: %v sends (err %v), want 5: a denied start must store nothing", v.Sends, err)
			}

			const blocked = "+4915112349002"
			if err := lim.Block(ctx, blocked, time.Hour); err != nil {
				t.Fatal(err)
			}
			_, err = svc.Start(ctx, verify.StartRequest{Tenant: "t", To: blocked})
			if !errors.As(err, &le) || le.Policy != "blocked" {
				t.Fatalf("start to a blocked number: %v, want the block", err)
			}
			if _, err := svc.CheckByNumber(ctx, "t", blocked, "123456"); !errors.Is(err, verify.ErrNotFound) {
				t.Errorf("a blocked start stored something: check by number gave %v", err)
			}
		})
	}
}
