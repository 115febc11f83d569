package pumping_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/pumpingtest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/pumping"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

// TestThroughService wires the watch as the gateway does, on the memory
// store and on Redis state: the Sender wrapper counts the SMS, the Service
// tells the watch of approvals by check (with the time each verification
// began, as the store gives it back), so a prefix whose codes are typed
// stays open and one whose codes are not is blocked, and then refuses SMS.
func TestThroughService(t *testing.T) {
	for _, onRedis := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "redis"}[onRedis], func(t *testing.T) {
			clock := verifytest.NewClock(pumpingtest.T0)
			var ps pumping.Store = pumping.NewMemory()
			if onRedis {
				ps = pumping.NewRedis(redistest.Client(t), redistest.Prefix(t))
			}
			w, err := pumping.New(pumpingtest.Config(), ps, pumping.Options{Now: clock.Now, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			engine, err := route.NewEngine(route.Config{}, route.Deps{Blocks: w, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			s := verifytest.NewService(t, verifytest.WithClock(clock), verifytest.WithConfig(func(cfg *verify.Config) {
				cfg.Observer, cfg.Router = verify.ObserveApprovals(nil, w), engine
				cfg.Senders[verifytest.Provider] = w.Wrap(cfg.Senders[verifytest.Provider])
				if onRedis {
					c := redistest.Client(t)
					prefix := redistest.Prefix(t)
					lim, err := ratelimit.NewRedis(c, ratelimit.DefaultPolicies(), ratelimit.RedisOptions{Prefix: prefix, Now: clock.Now})
					if err != nil {
						t.Fatal(err)
					}
					cfg.Store, cfg.Limiter = store.NewRedis(c, store.RedisOptions{Prefix: prefix, Limits: lim}), lim
				}
			}))
			ctx := context.Background()
			for i := range 25 {
				typed := fmt.Sprintf("+3361200%04d", i) // +33612: people who type their codes
				v, err := s.Start(ctx, verify.StartRequest{Tenant: "acme", To: typed})
				if err != nil {
					t.Fatal(err)
				}
				if i < 20 {
					if _, err := s.Check(ctx, "acme", v.ID, s.Sender.LastCode(t, typed)); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := s.Start(ctx, verify.StartRequest{Tenant: "acme", To: fmt.Sprintf("+3361300%04d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			clock.Add(20 * time.Minute)
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if _, ok := w.Blocked("+33612009999", verify.ChannelSMS); ok {
				t.Error("a prefix whose codes were typed (20 of 25) is blocked")
			}
			if _, ok := w.Blocked("+33613009999", verify.ChannelSMS); !ok {
				t.Fatal("a prefix whose codes nobody typed (25) is not blocked")
			}
			_, err = s.Start(ctx, verify.StartRequest{Tenant: "acme", To: "+33613009999", Channel: verify.ChannelSMS})
			var le *verify.LimitError
			if !errors.As(err, &le) || !le.Aggregate || le.Policy != verify.PolicyPumping {
				t.Errorf("SMS to the blocked prefix: %v, want an aggregate sms_pumping LimitError", err)
			}
			v, err := s.Start(ctx, verify.StartRequest{Tenant: "acme", To: "+33613009998", Channel: verify.ChannelAuto})
			if err != nil || v.Channel != verify.ChannelCall {
				t.Errorf("auto to the blocked prefix: %+v, %v; want a call", v, err)
			}
		})
	}
}
