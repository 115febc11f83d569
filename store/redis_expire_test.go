package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/storetest"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/metrics"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sms"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

// TestRedisSweepOnce runs the expiry sweep of two gateways (two Services,
// each with its own client and metrics) on one Redis at once, on the
// single-server path and on the Cluster path: each verification nobody
// read is marked expired once, with one expired event, one callback
// notice and one count between them.
func TestRedisSweepOnce(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(map[bool]string{false: "one server", true: "cluster path"}[cluster], func(t *testing.T) {
			prefix := redistest.Prefix(t)
			clock := verifytest.NewClock(time.Now())
			type gw struct {
				svc      *verify.Service
				m        *metrics.Verifications
				notifier *verifytest.Notifier
			}
			var gws []gw
			for range 2 {
				c := redistest.Client(t)
				lim, err := ratelimit.NewRedis(c, nil, ratelimit.RedisOptions{Prefix: prefix, PerPolicy: cluster})
				if err != nil {
					t.Fatal(err)
				}
				h, err := verify.NewHasher([]byte("sweep-test-secret-0123456789"))
				if err != nil {
					t.Fatal(err)
				}
				g := gw{m: metrics.NewVerifications(), notifier: &verifytest.Notifier{}}
				g.svc, err = verify.NewService(verify.Config{
					Store: store.NewRedis(c, store.RedisOptions{Prefix: prefix, Limits: lim, Cluster: cluster}), Limiter: lim,
					Parser: route.Classifier{}, Router: route.Defaults{}, Formatter: sms.Template{}, Hasher: h,
					Senders: map[string]verify.Sender{"console": &countingSender{}}, DefaultSender: "console",
					Notifier: g.notifier, Lifecycle: g.m, Now: clock.Now, Logger: slog.New(slog.DiscardHandler),
				})
				if err != nil {
					t.Fatal(err)
				}
				gws = append(gws, g)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			const n = 25
			ids := map[string]bool{}
			for i := range n {
				v, err := gws[i%2].svc.Start(ctx, verify.StartRequest{Tenant: "t", To: fmt.Sprintf("+491511234%04d", i),
					CallbackURL: "https://idp.example/cb"})
				if err != nil {
					t.Fatal(err)
				}
				ids[v.ID] = true
			}
			clock.Add(verify.DefaultLifetime)
			var wg sync.WaitGroup
			for _, g := range gws {
				wg.Go(func() {
					for range 3 {
						if _, _, err := g.svc.ExpireDue(ctx); err != nil {
							t.Errorf("sweep: %v", err)
						}
					}
				})
			}
			wg.Wait()
			var counted float64
			notices := map[string]int{}
			for _, g := range gws {
				counted += expiredCount(t, g.m)
				for _, v := range g.notifier.Notices() {
					notices[v.ID]++
				}
			}
			if counted != n {
				t.Errorf("expiries counted: %v, want %d", counted, n)
			}
			for id := range ids {
				if notices[id] != 1 {
					t.Errorf("%s: %d callback notices, want 1", id, notices[id])
				}
				v, err := gws[0].svc.Get(ctx, "t", id)
				if err != nil {
					t.Fatal(err)
				}
				expired := 0
				for _, ev := range v.Events {
					if ev.Type == verify.EventExpired {
						expired++
					}
				}
				if v.Status != verify.StatusExpired || expired != 1 {
					t.Errorf("%s: status %s with %d expired events, want expired with 1", id, v.Status, expired)
				}
			}
		})
	}
}

// expiredCount is the sum of m's verigate_verifications_ended_total
// series with status "expired".
func expiredCount(t *testing.T, m *metrics.Verifications) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "verigate_verifications_ended_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "status" && l.GetValue() == "expired" {
					sum += s.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// TestRedisExpireBacklog: more verifications due than one sweep may end
// (ExpiryBatchesSweep batches of ExpiryBatch) are all ended by consecutive
// ExpireDue calls, the first of which reports that more are due, so that
// RunExpiry works a backlog off at once rather than a sweep a tick.
func TestRedisExpireBacklog(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(map[bool]string{false: "one server", true: "cluster path"}[cluster], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c := redistest.Client(t)
			st := store.NewRedis(c, store.RedisOptions{Prefix: redistest.Prefix(t), Cluster: cluster})
			svc := verifytest.NewService(t, verifytest.WithConfig(func(cfg *verify.Config) { cfg.Store = st }))
			clock, notifier := svc.Clock, svc.Notifier
			n := verify.ExpiryBatch*verify.ExpiryBatchesSweep + verify.ExpiryBatch*5
			for i := range n {
				v := storetest.NewVerification(t, "t", fmt.Sprintf("+491512%07d", i), clock.Now())
				if _, _, err := st.Start(ctx, storetest.Subject(v), v, "h", clock.Now()); err != nil {
					t.Fatal(err)
				}
			}
			clock.Add(verify.DefaultLifetime + time.Hour)
			got, more, err := svc.ExpireDue(ctx)
			if err != nil || got != verify.ExpiryBatch*verify.ExpiryBatchesSweep || !more {
				t.Fatalf("first sweep = %d, more %v, %v; want %d and more", got, more, err, verify.ExpiryBatch*verify.ExpiryBatchesSweep)
			}
			for more {
				var k int
				if k, more, err = svc.ExpireDue(ctx); err != nil {
					t.Fatal(err)
				}
				got += k
			}
			if got != n || len(notifier.Notices()) != n {
				t.Errorf("%d expired, %d notices, want %d", got, len(notifier.Notices()), n)
			}
		})
	}
}
