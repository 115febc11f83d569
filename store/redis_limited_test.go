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

// TestStartLimited runs a Service whose Redis store consumes the limits in
// its start script (one server) and, for comparison, the Cluster path
// (limiter per policy, store in one slot), on which StartLimited consumes
// first: both let exactly the policy's sends through, deny the next with
// the limiter's error and Retry-After, store and send nothing for it, and
// honour a fraud block.
func TestStartLimited(t *testing.T) {
	for _, tc := range []struct {
		name               string
		cluster, pipelined bool
	}{
		{"one script", false, false},
		{"one script, auto-pipelined", false, true},
		{"cluster path", true, false},
		{"cluster path, auto-pipelined", true, true},
	} {
		cluster := tc.cluster
		t.Run(tc.name, func(t *testing.T) {
			var c redis.UniversalClient = redistest.Client(t)
			if tc.pipelined {
				c = autoPipelined(t, c)
			}
			prefix := redistest.Prefix(t)
			lim, err := ratelimit.NewRedis(c, ratelimit.DefaultPolicies(), ratelimit.RedisOptions{Prefix: prefix, PerPolicy: cluster})
			if err != nil {
				t.Fatal(err)
			}
			st := store.NewRedis(c, store.RedisOptions{Prefix: prefix, Limits: lim, Cluster: cluster})
			if !st.ConsumesFor(lim) {
				t.Fatal("store does not consume for its own limiter")
			}
			other, _ := ratelimit.NewRedis(c, ratelimit.DefaultPolicies(), ratelimit.RedisOptions{Prefix: prefix})
			if st.ConsumesFor(other) || store.NewRedis(c, store.RedisOptions{Prefix: prefix}).ConsumesFor(lim) {
				t.Fatal("ConsumesFor must name exactly the store's limiter")
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
