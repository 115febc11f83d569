package route_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/routetest"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/verify"
)

// gateway is a verifytest.Service routed by a real Engine, with the SMS
// watch wrapped around its recording Sender.
type gateway struct {
	*verifytest.Service
	engine *route.Engine
	watch  *route.SMSWatch
}

// newGateway builds the gateway; watchNow is the SMS watch's clock (the
// service's verifytest.Clock if nil).
func newGateway(t *testing.T, cfg route.Config, watchNow func() time.Time) *gateway {
	t.Helper()
	clock := verifytest.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	if watchNow == nil {
		watchNow = clock.Now
	}
	g := &gateway{}
	var err error
	g.engine, err = route.Open(cfg, route.OpenOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.engine.Close() })
	g.Service = verifytest.NewService(t, verifytest.WithClock(clock), verifytest.WithConfig(func(c *verify.Config) {
		g.watch = route.NewSMSWatch(cfg.Fallback, c.Store, slog.New(slog.DiscardHandler), watchNow)
		c.Senders = map[string]verify.Sender{verifytest.Provider: g.watch.Wrap(c.Senders[verifytest.Provider])}
		c.Router, c.Observer = g.engine, g.engine.Observer()
	}))
	t.Cleanup(func() { g.watch.Close() })
	return g
}

func (g *gateway) calls() []verify.Call { return g.Caller.Calls() }

func TestRoamingAutoGetsACall(t *testing.T) {
	g := newGateway(t, route.Config{GeoIPDB: routetest.GeoIPDB(t, geoNets)}, nil)
	ctx := context.Background()
	// The client is in Britain, the number is German: roaming, so a call.
	v, err := g.Start(ctx, verify.StartRequest{Tenant: "t", To: deMobile, Channel: verify.ChannelAuto, ClientIP: "81.2.69.160"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Channel != verify.ChannelCall || !slices.Equal(v.Route.Reasons, []string{"roaming"}) || v.Route.Fallback != verify.ChannelSMS {
		t.Errorf("route %+v", v.Route)
	}
	if n := len(g.calls()); n != 1 {
		t.Fatalf("%d calls", n)
	}
	if err := g.Report(ctx, v.ID, verify.Event{Type: verify.EventCallApproved, Outcome: &verify.Outcome{Status: verify.StatusApproved}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.Get(ctx, "t", v.ID); got.Status != verify.StatusApproved {
		t.Errorf("status %s", got.Status)
	}
	// The roaming hint alone does it too.
	v, err = g.Start(ctx, verify.StartRequest{Tenant: "t", To: frMobile, Channel: verify.ChannelAuto, Roaming: ptr(true)})
	if err != nil || v.Channel != verify.ChannelCall {
		t.Errorf("hint: %+v %v", v, err)
	}
}

func TestUndeliveredSMSFallsBackToCallAndApproves(t *testing.T) {
	g := newGateway(t, route.Config{}, nil)
	ctx := context.Background()
	v, err := g.Start(ctx, verify.StartRequest{Tenant: "t", To: deMobile, Channel: verify.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	if v.Channel != verify.ChannelSMS || v.Route.Fallback != verify.ChannelCall {
		t.Fatalf("route %+v", v.Route)
	}
	if err := g.Report(ctx, v.ID, verify.Event{Type: verify.EventUndelivered, Channel: verify.ChannelSMS, ErrorCode: "30003", Key: "SM1/undelivered"}); err != nil {
		t.Fatal(err)
	}
	if n := len(g.calls()); n != 1 {
		t.Fatalf("%d calls after the undelivered SMS", n)
	}
	if err := g.Report(ctx, v.ID, verify.Event{Type: verify.EventCallApproved, Outcome: &verify.Outcome{Status: verify.StatusApproved}}); err != nil {
		t.Fatal(err)
	}
	got, _ := g.Get(ctx, "t", v.ID)
	if got.Status != verify.StatusApproved || !slices.Equal(got.Route.Reasons, []string{"default", "fallback after undelivered"}) {
		t.Errorf("status %s route %+v", got.Status, got.Route)
	}
	// The history now sends this number's next auto verification to a call.
	v, err = g.Start(ctx, verify.StartRequest{Tenant: "t", To: deMobile, Channel: verify.ChannelAuto})
	if err != nil || v.Channel != verify.ChannelCall || !slices.Equal(v.Route.Reasons, []string{route.ReasonUndelivered}) {
		t.Errorf("next start: %+v %v", v, err)
	}
}

func TestSMSWatchTimeout(t *testing.T) {
	g := newGateway(t, route.Config{Fallback: route.FallbackConfig{SMSTimeout: 2 * time.Minute}}, nil)
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

func TestSMSWatchTicker(t *testing.T) {
	// Real clock: the watch's own ticker finds the SMS without a report.
	g := newGateway(t, route.Config{Fallback: route.FallbackConfig{SMSTimeout: time.Millisecond, CheckEvery: 5 * time.Millisecond}}, time.Now)
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
