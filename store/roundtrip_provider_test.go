package store_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/internal/twiliotest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/sms"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/twilio"
	"github.com/verigate/verigate/verify"
)

// byNumber routes each number to the channel and provider the test names.
type byNumber map[string]verify.Route

func (b byNumber) Route(_ context.Context, r verify.RouteRequest) (verify.Route, error) {
	return b[r.Number.E164], nil
}

// ignoreReports takes the SIP calls' progress reports and drops them: the
// count below is of the start alone, not of a call's later events.
type ignoreReports struct{}

func (ignoreReports) Report(context.Context, string, verify.Event) error { return nil }

// TestRoundTripsPerProvider counts the round trips to Redis of a start
// through each real provider (the console SMS provider, Twilio's REST API
// through twilio-go to a fake Twilio, a SIP call to a loopback test phone)
// and of the delivery reports Twilio's status callbacks make, with the
// gateway's wiring of a Service on Redis (limits consumed in the start
// script, a delivery observer). docs/REDIS.md states these counts: the
// test fails if one grows.
func TestRoundTripsPerProvider(t *testing.T) {
	c := redistest.StartServer(t).Client(t)
	rt := &redistest.RoundTrips{}
	c.AddHook(rt)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	fake := twiliotest.New(twiliotest.Config{AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "0123456789abcdef0123456789abcdef", SMSStatuses: []string{}})
	t.Cleanup(fake.Close)
	tw, err := twilio.New(twilio.Config{
		AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "0123456789abcdef0123456789abcdef", From: "+15005550006",
		BaseURL: fake.URL, PublicURL: "https://gateway.example.com", Secret: "a server secret of enough length",
	}, twilio.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tw.Close)

	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	phone, err := siptest.NewLoopbackPhone(quiet, func(c *siptest.PhoneConfig) { c.Press = "" })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { phone.Close() })
	caller, err := sip.NewCaller(phone.LoopbackConfig(sip.DefaultConfig()), sip.Options{Audio: sip.PromptAudio{Catalogue: cat}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { caller.Close() })
	caller.ReportTo(ignoreReports{})

	lim, err := ratelimit.NewRedis(c, ratelimit.DefaultPolicies(), ratelimit.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := verify.NewHasher([]byte("roundtrip-test-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	routes := byNumber{}
	// The gateway's routing history on Redis (route.Engine.Observer): with
	// it, a delivery report reads the verification before it records the
	// event, and tells the history after.
	deliveries := route.NewRedisHistory(c, time.Hour, quiet)
	svc, err := verify.NewService(verify.Config{
		Store: store.NewRedis(c, store.RedisOptions{Limits: lim}), Limiter: lim,
		Parser: route.Classifier{}, Router: routes, Formatter: sms.Template{}, Hasher: h,
		Senders:  map[string]verify.Sender{"console": sms.NewConsole(io.Discard), twilio.ProviderName: tw},
		Callers:  map[string]verify.Caller{twilio.ProviderName: tw, sip.Provider: caller},
		Observer: deliveries, CheckLock: verify.CheckLock{Max: 10, Window: time.Hour}, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := 0
	for pass := range 2 { // the first pass loads the scripts (EVALSHA, then EVAL)
		start := func(ch verify.Channel, provider string) (string, error) {
			n++
			to := "+491511234" + string(rune('0'+n/10)) + string(rune('0'+n%10)) + "00"
			routes[to] = verify.Route{Channel: ch, Provider: provider}
			v, err := svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to, Channel: ch, CallMode: verify.CallModeApprove})
			if err != nil {
				return "", err
			}
			return v.ID, nil
		}
		var smsID string
		steps := []struct {
			name string
			do   func() error
			want int64
		}{
			{"start: SMS, console", func() (err error) { _, err = start(verify.ChannelSMS, "console"); return err }, 1},
			{"start: SMS, Twilio", func() (err error) { smsID, err = start(verify.ChannelSMS, twilio.ProviderName); return err }, 1},
			{"start: call, Twilio", func() (err error) { _, err = start(verify.ChannelCall, twilio.ProviderName); return err }, 1},
			{"start: call, SIP", func() (err error) { _, err = start(verify.ChannelCall, sip.Provider); return err }, 1},
			// Twilio's status callbacks, as the webhook reports them. sent
			// (which records the message SID) only adds its event; a
			// delivery outcome first reads the verification (superseded
			// attempt? fallback due? the observer is told what it was),
			// then adds the event, then tells the routing history the
			// gateways share.
			{"report: sent (Twilio status callback)", func() error {
				return svc.Report(ctx, smsID, verify.Event{Type: verify.EventSent, Channel: verify.ChannelSMS, Provider: twilio.ProviderName, ProviderRef: "SM1", Attempt: 1})
			}, 1},
			{"report: delivered (Twilio status callback)", func() error {
				return svc.Report(ctx, smsID, verify.Event{Type: verify.EventDelivered, Channel: verify.ChannelSMS, Provider: twilio.ProviderName, ProviderRef: "SM1", Attempt: 1})
			}, 3},
		}
		for _, s := range steps {
			rt.Reset()
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if got := rt.Count(); pass > 0 && got != s.want {
				t.Errorf("%s: %d round trips, want %d", s.name, got, s.want)
			} else if pass > 0 {
				t.Logf("%s: %d round trips", s.name, got)
			}
		}
	}
}
