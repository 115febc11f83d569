package sms_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sms"
	"github.com/verigate/verigate/verify"
)

const (
	deMobile = "+4915123456789"
	frMobile = "+33612345678"
)

// gateway is a verifytest.Service routed by a real route.Engine (which
// gives an auto verification of a mobile an SMS with a call as fallback),
// with the delivery watch wrapped around its recording Sender.
type gateway struct {
	*verifytest.Service
	watch *sms.DeliveryWatch
}

// newGateway builds the gateway with the watch's timeout and period;
// watchNow is the watch's clock (the service's verifytest.Clock if nil).
func newGateway(t *testing.T, timeout, every time.Duration, watchNow func() time.Time) *gateway {
	t.Helper()
	clock := verifytest.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	if watchNow == nil {
		watchNow = clock.Now
	}
	engine, err := route.Open(route.Config{Fallback: route.FallbackConfig{SMSTimeout: timeout}}, route.OpenOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	g := &gateway{}
	g.Service = verifytest.NewService(t, verifytest.WithClock(clock), verifytest.WithConfig(func(c *verify.Config) {
		g.watch = sms.NewDeliveryWatch(sms.WatchConfig{
			Timeout: timeout, CheckEvery: every, Store: c.Store, Logger: slog.New(slog.DiscardHandler), Now: watchNow,
		})
		c.Senders = map[string]verify.Sender{verifytest.Provider: g.watch.Wrap(c.Senders[verifytest.Provider])}
		c.Router, c.Observer = engine, engine.Observer()
	}))
	t.Cleanup(func() { g.watch.Close() })
	return g
}

func (g *gateway) calls() []verify.Call { return g.Caller.Calls() }

func TestDeliveryWatchTimeout(t *testing.T) {
	g := newGateway(t, 2*time.Minute, 0, nil)
	g.watch.Start(g.Service)
	ctx := context.Background()
	slow, err := g.Start(ctx, verify.StartRequest{Tenant: "t", To: deMobile, Channel: verify.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := g.Start(ctx, verify.StartRequest{Tenant: "t", To: frMobile, Channel: verify.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	// verifytest.Sender's reference for a message is test-sms-<verification id>.
	if err := g.Report(ctx, fast.ID, verify.Event{Type: verify.EventDelivered, Channel: verify.ChannelSMS, ProviderRef: "test-sms-" + fast.ID}); err != nil {
		t.Fatal(err)
	}
	g.Clock.Add(time.Minute)
	g.watch.Check(ctx)
	if n := len(g.calls()); n != 0 || g.watch.Watching() != 2 {
		t.Fatalf("before the timeout: %d calls, %d watched", n, g.watch.Watching())
	}
	g.Clock.Add(90 * time.Second)
	g.watch.Check(ctx)
	calls := g.calls()
	if len(calls) != 1 || calls[0].VerificationID != slow.ID || g.watch.Watching() != 0 {
		t.Fatalf("after the timeout: calls %+v, %d watched", calls, g.watch.Watching())
	}
	got, _ := g.Get(ctx, "t", slow.ID)
	if got.Channel != verify.ChannelCall || !slices.ContainsFunc(got.Events, func(e verify.Event) bool {
		return e.Type == verify.EventUndelivered && e.Detail == "no delivery report within 2m0s"
	}) {
		t.Errorf("slow verification: %s %+v", got.Channel, got.Events)
	}
	if got, _ := g.Get(ctx, "t", fast.ID); got.Channel != verify.ChannelSMS {
		t.Errorf("the delivered SMS fell back: %+v", got.Route)
	}
}

func TestDeliveryWatchTicker(t *testing.T) {
	// Real clock: the watch's own ticker finds the SMS without a report.
	g := newGateway(t, time.Millisecond, 5*time.Millisecond, time.Now)
	g.watch.Start(g.Service)
	g.watch.Start(g.Service) // a second Start is a no-op
	v, err := g.Start(context.Background(), verify.StartRequest{Tenant: "t", To: deMobile, Channel: verify.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for len(g.calls()) == 0 {
		select {
		case <-deadline:
			t.Fatal("no fallback call within 10s")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := g.watch.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.watch.Close(); err != nil { // closing twice is harmless
		t.Fatal(err)
	}
	if c := g.calls(); c[0].VerificationID != v.ID {
		t.Errorf("call %+v", c[0])
	}
}

// TestDeliveryWatchTimeoutOfAResentSMS: the first SMS times out after the
// person asked for a second one; only the second one's timeout falls back.
func TestDeliveryWatchTimeoutOfAResentSMS(t *testing.T) {
	g := newGateway(t, 2*time.Minute, 0, nil)
	g.watch.Start(g.Service)
	ctx := context.Background()
	v, err := g.Start(ctx, verify.StartRequest{Tenant: "t", To: deMobile, Channel: verify.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	g.Clock.Add(90 * time.Second)
	if again, err := g.Start(ctx, verify.StartRequest{Tenant: "t", To: deMobile, Channel: verify.ChannelAuto}); err != nil || again.ID != v.ID || again.Sends != 2 {
		t.Fatalf("resend: %+v, %v", again, err)
	}
	g.Clock.Add(40 * time.Second) // the first SMS's timeout has passed, not the second's
	g.watch.Check(ctx)
	if calls := g.calls(); len(calls) != 0 {
		t.Fatalf("the first SMS's timeout placed %d calls while the second SMS is on its way", len(calls))
	}
	got, _ := g.Get(ctx, "t", v.ID)
	if got.Status != verify.StatusPending || got.Channel != verify.ChannelSMS ||
		!slices.ContainsFunc(got.Events, func(e verify.Event) bool { return e.Type == verify.EventUndelivered && e.Attempt == 1 }) {
		t.Fatalf("after the first timeout: %s %s %+v", got.Status, got.Channel, got.Events)
	}
	g.Clock.Add(90 * time.Second)
	g.watch.Check(ctx)
	if calls := g.calls(); len(calls) != 1 || calls[0].Attempt != 3 {
		t.Fatalf("after the second SMS's timeout: calls %+v, want the fallback as attempt 3", calls)
	}
}
