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
	"github.com/verigate/verigate/sms"
	"github.com/verigate/verigate/verify"
)

// gateway is a verifytest.Service routed by a real Engine, with the SMS
// watch wrapped around its recording Sender.
type gateway struct {
	*verifytest.Service
	engine *route.Engine
	watch  *sms.DeliveryWatch
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
		g.watch = sms.NewDeliveryWatch(sms.WatchConfig{
			Timeout: cfg.Fallback.SMSTimeout, CheckEvery: cfg.Fallback.CheckEvery,
			Store: c.Store, Logger: slog.New(slog.DiscardHandler), Now: watchNow,
		})
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
