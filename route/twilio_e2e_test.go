package route_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/internal/routetest"
	"github.com/verigate/verigate/internal/twiliotest"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sms"
	"github.com/verigate/verigate/twilio"
	"github.com/verigate/verigate/verify"
)

const (
	twSID   = "AC00000000000000000000000000000001"
	twToken = "0123456789abcdef0123456789abcdef"
	twFrom  = "+15005550006"
)

// twilioGateway is a verifytest.Service routed by route.Engine and
// delivering through the twilio provider to the fake Twilio, whose status
// callbacks and TwiML requests reach the twilio webhooks on loopback.
type twilioGateway struct {
	*verifytest.Service
	fake  *twiliotest.Server
	watch *sms.DeliveryWatch
}

func newTwilioGateway(t *testing.T, cfg route.Config) *twilioGateway {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	fake := twiliotest.New(twiliotest.Config{AccountSID: twSID, AuthToken: twToken})
	t.Cleanup(fake.Close)
	e := echo.New()
	web := httptest.NewServer(e)
	t.Cleanup(web.Close)
	tcfg := twilio.Config{
		AccountSID: twSID, AuthToken: twToken, From: twFrom,
		BaseURL: fake.URL, PublicURL: web.URL, Secret: "gateway-secret-0123456789",
	}
	prov, err := twilio.New(tcfg, twilio.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prov.Close)
	engine, err := route.Open(cfg, route.OpenOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	g := &twilioGateway{fake: fake}
	clock := verifytest.NewClock(verifytest.Epoch)
	g.Service = verifytest.NewService(t, verifytest.WithClock(clock), verifytest.WithConfig(func(c *verify.Config) {
		g.watch = sms.NewDeliveryWatch(sms.WatchConfig{
			Timeout: cfg.Fallback.SMSTimeout, CheckEvery: cfg.Fallback.CheckEvery, Store: c.Store, Logger: quiet, Now: clock.Now,
		})
		c.Router, c.Observer = engine, engine.Observer()
		c.Senders = map[string]verify.Sender{"twilio": g.watch.Wrap(prov)}
		c.Callers = map[string]verify.Caller{"twilio": prov}
		c.DefaultSender, c.DefaultCaller = "twilio", "twilio"
	}))
	t.Cleanup(func() { g.watch.Close() })
	hooks, err := twilio.NewWebhooks(tcfg, g.Service.Service, twilio.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	hooks.Register(e.Group(twilio.PathPrefix))
	return g
}

func (g *twilioGateway) settle(t *testing.T) {
	t.Helper()
	g.fake.Wait()
	if errs := g.fake.Errors(); len(errs) > 0 {
		t.Fatalf("fake Twilio: %v", errs)
	}
}

func TestTwilioUndeliveredSMSFallsBackToCallApproved(t *testing.T) {
	g := newTwilioGateway(t, route.Config{})
	g.fake.SetSMSOutcome(deMobile, twiliotest.SMSOutcome{Statuses: []string{"queued", "sent", "undelivered"}, ErrorCode: "30003"})
	g.fake.SetPhone(deMobile, twiliotest.Phone{Keys: "#"})
	ctx := context.Background()
	v, err := g.Start(ctx, verify.StartRequest{Tenant: "t", To: deMobile, Channel: verify.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	if v.Channel != verify.ChannelSMS || v.Route.Fallback != verify.ChannelCall {
		t.Fatalf("route %+v", v.Route)
	}
	g.settle(t)
	if msgs, calls := g.fake.Messages(), g.fake.Calls(); len(msgs) != 1 || len(calls) != 1 || calls[0].To != deMobile {
		t.Fatalf("Twilio saw %d messages and %d calls, want 1 and 1", len(msgs), len(calls))
	}
	got, err := g.Get(ctx, "t", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != verify.StatusApproved || got.Channel != verify.ChannelCall ||
		!slices.Equal(got.Route.Reasons, []string{"default", "fallback after undelivered"}) {
		t.Errorf("status %s channel %s route %+v", got.Status, got.Channel, got.Route)
	}
	if !slices.ContainsFunc(got.Events, func(e verify.Event) bool { return e.Type == verify.EventUndelivered && e.ErrorCode == "30003" }) {
		t.Errorf("no undelivered event with Twilio's error code: %+v", got.Events)
	}
}

func TestTwilioRoamingAutoGetsACall(t *testing.T) {
	g := newTwilioGateway(t, route.Config{GeoIPDB: routetest.GeoIPDB(t, geoNets)})
	g.fake.SetPhone(deMobile, twiliotest.Phone{Keys: "#"})
	ctx := context.Background()
	// A German number, the client in Britain: roaming, so a call first.
	v, err := g.Start(ctx, verify.StartRequest{Tenant: "t", To: deMobile, Channel: verify.ChannelAuto, ClientIP: "81.2.69.160"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Channel != verify.ChannelCall || !slices.Equal(v.Route.Reasons, []string{"roaming"}) {
		t.Fatalf("route %+v", v.Route)
	}
	g.settle(t)
	if msgs, calls := g.fake.Messages(), g.fake.Calls(); len(msgs) != 0 || len(calls) != 1 {
		t.Fatalf("Twilio saw %d messages and %d calls, want 0 and 1", len(msgs), len(calls))
	}
	if got, _ := g.Get(ctx, "t", v.ID); got.Status != verify.StatusApproved {
		t.Errorf("status %s, events %+v", got.Status, got.Events)
	}
}

func TestTwilioUnansweredRoamingCallFallsBackToSMS(t *testing.T) {
	g := newTwilioGateway(t, route.Config{})
	g.fake.SetPhone(deMobile, twiliotest.Phone{Answer: "no-answer"})
	g.fake.SetSMSOutcome(deMobile, twiliotest.SMSOutcome{Statuses: []string{"queued", "sent", "delivered"}})
	ctx := context.Background()
	v, err := g.Start(ctx, verify.StartRequest{Tenant: "t", To: deMobile, Channel: verify.ChannelAuto, Roaming: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	g.settle(t)
	msgs := g.fake.Messages()
	if len(msgs) != 1 || len(g.fake.Calls()) != 1 {
		t.Fatalf("Twilio saw %d messages and %d calls, want 1 and 1", len(msgs), len(g.fake.Calls()))
	}
	code := verifytest.CodeOf(t, msgs[0].Body)
	got, err := g.Check(ctx, "t", v.ID, code)
	if err != nil || got.Status != verify.StatusApproved {
		t.Errorf("check the SMS code: %v %v", got, err)
	}
}

func TestTwilioSMSWithoutDeliveryReportFallsBackToCall(t *testing.T) {
	g := newTwilioGateway(t, route.Config{Fallback: route.FallbackConfig{SMSTimeout: 2 * time.Minute}})
	g.watch.Start(g.Service.Service)
	// Twilio reports the message sent, then nothing more.
	g.fake.SetSMSOutcome(deMobile, twiliotest.SMSOutcome{Statuses: []string{"queued", "sent"}})
	g.fake.SetPhone(deMobile, twiliotest.Phone{Keys: "#"})
	ctx := context.Background()
	v, err := g.Start(ctx, verify.StartRequest{Tenant: "t", To: deMobile, Channel: verify.ChannelAuto})
	if err != nil {
		t.Fatal(err)
	}
	g.settle(t)
	g.Clock.Add(time.Minute)
	g.watch.Check(ctx)
	if n := len(g.fake.Calls()); n != 0 {
		t.Fatalf("%d calls before the timeout", n)
	}
	g.Clock.Add(90 * time.Second)
	g.watch.Check(ctx)
	g.settle(t)
	if n := len(g.fake.Calls()); n != 1 {
		t.Fatalf("%d calls after the timeout, want 1", n)
	}
	got, _ := g.Get(ctx, "t", v.ID)
	if got.Status != verify.StatusApproved || !slices.Equal(got.Route.Reasons, []string{"default", "fallback after undelivered"}) {
		t.Errorf("status %s route %+v", got.Status, got.Route)
	}
}
