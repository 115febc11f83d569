package sip_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/sms"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

// The person's number in these tests, and the SIP user baresip registers
// as: the trunk's default dial string "+{e164}" turns the one into the other.
const (
	pbxNumber     = "+4915123456789"
	pbxTenant     = "acme"
	gatewayUser   = "verigate"
	gatewayPass   = "gw-secret-1"
	phonePass     = "phone-secret-1"
	heardRMSFloor = 200
)

// pbxReporter hands a Caller's events to a verify.Service made after
// the Caller (the Service needs the Caller, the Caller its Reporter), and
// keeps a copy for the test to wait on.
type pbxReporter struct {
	svc *verify.Service
	rec *reporter
}

func (r *pbxReporter) Report(ctx context.Context, id string, ev verify.Event) error {
	_ = r.rec.Report(ctx, id, ev)
	return r.svc.Report(ctx, id, ev)
}

// pbxGateway is the gateway as serve wires it, with in-memory parts: a
// verify.Service whose only call provider is a sip.Caller with one trunk.
type pbxGateway struct {
	svc *verify.Service
	rep *pbxReporter
}

// greetingLength is how long the embedded English greeting plays.
func greetingLength(t *testing.T) time.Duration {
	t.Helper()
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatalf("prompts: %v", err)
	}
	g, err := cat.Audio("en", prompts.Greeting, audio.PCMU)
	if err != nil {
		t.Fatalf("greeting: %v", err)
	}
	return time.Duration(len(g)) * time.Second / 8000
}

func newPBXGateway(t *testing.T, trunk sip.Trunk) *pbxGateway {
	t.Helper()
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatalf("prompts: %v", err)
	}
	rep := &pbxReporter{rec: newReporter()}
	caller := newCaller(t, rep, trunk, sip.Options{Audio: sip.PromptAudio{Catalogue: cat}, KeyTimeout: 10 * time.Second})
	limiter, err := ratelimit.NewMemory(ratelimit.DefaultPolicies(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := verify.NewHasher([]byte("pbx-integration-test-key"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := verify.NewService(verify.Config{
		Store: store.Limited{Memory: store.NewMemory(), Limits: limiter}, Limiter: limiter, Parser: route.Classifier{}, Router: route.Defaults{},
		Formatter: sms.Template{}, Hasher: hasher,
		Callers: map[string]verify.Caller{sip.Provider: caller}, DefaultCaller: sip.Provider,
		Logger: testLogger(t).With("side", "service"),
	})
	if err != nil {
		t.Fatal(err)
	}
	rep.svc = svc
	return &pbxGateway{svc: svc, rep: rep}
}

// start asks for an approve-mode voice verification of pbxNumber.
func (g *pbxGateway) start(t *testing.T) *verify.Verification {
	t.Helper()
	v, err := g.svc.Start(context.Background(), verify.StartRequest{
		Tenant: pbxTenant, To: pbxNumber, Channel: verify.ChannelCall, CallMode: verify.CallModeApprove, Locale: "en",
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return v
}

// waitFinal waits (bounded) until the verification leaves pending.
func (g *pbxGateway) waitFinal(t *testing.T, id string, d time.Duration) *verify.Verification {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v, err := g.svc.Get(context.Background(), pbxTenant, id)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if v.Status.Final() {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("verification still %s after %s; events %v", v.Status, d, eventTypes(v.Events))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func eventTypes(evs []verify.Event) []string {
	var s []string
	for _, ev := range evs {
		s = append(s, string(ev.Type))
	}
	return s
}

// startPBX starts kamailio demanding digest auth and a baresip registered
// there as the person's phone.
func startPBX(t *testing.T, forbid bool) (*peertest.Kamailio, *peertest.Baresip) {
	t.Helper()
	k := peertest.StartKamailio(t, peertest.KamailioOptions{
		Users:               map[string]string{gatewayUser: gatewayPass, pbxNumber: phonePass},
		ForbidWrongPassword: forbid,
	})
	b := peertest.StartBaresip(t, peertest.BaresipOptions{User: pbxNumber, Password: phonePass, Registrar: k.Addr})
	if err := b.WaitRegistered(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	return k, b
}

// TestPBXDigestToBaresipApproves is issue 7's first Done-when: the
// gateway's INVITE is challenged by kamailio (407), answered with digest,
// relayed to the registered baresip, which answers and presses # by
// RFC 4733 over ctrl_tcp; the verification reaches approved, and baresip's
// recording of the call holds the spoken prompt, not silence.
func TestPBXDigestToBaresipApproves(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			k, b := startPBX(t, false)
			gw := newPBXGateway(t, sip.Trunk{
				Name: "pbx", Address: k.Addr, Transport: transport,
				Username: gatewayUser, Password: gatewayPass, Dial: "+{e164}",
			})
			v := gw.start(t)
			if _, err := b.WaitCall(20 * time.Second); err != nil {
				t.Fatalf("%v; gateway events %v", err, gw.rep.rec.types(v.ID))
			}
			// Keys count from the prompt that asks for them, after the
			// greeting and a 250 ms pause: press once that prompt plays.
			time.Sleep(greetingLength(t) + time.Second)
			if err := b.Press("#"); err != nil {
				t.Fatal(err)
			}
			got := gw.waitFinal(t, v.ID, 30*time.Second)
			if got.Status != verify.StatusApproved {
				t.Fatalf("verification %s (reason %q), want approved; events %v", got.Status, got.Reason, eventTypes(got.Events))
			}
			if !hasInOrder(gw.rep.rec.types(v.ID), verify.EventAnswered, verify.EventKeyPressed, verify.EventCallApproved) {
				t.Errorf("call events %v, want answered, key_pressed, call_approved", gw.rep.rec.types(v.ID))
			}
			if _, err := b.WaitClosed(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			if n := k.WaitCount(regexp.MustCompile(`proxy auth of `+gatewayUser+` ok`), 1, 5*time.Second); n < 1 {
				t.Errorf("kamailio did not authenticate the gateway's INVITE by digest")
			}
			invite := regexp.MustCompile(`request INVITE sip:` + regexp.QuoteMeta(pbxNumber) + `@.* \(` + transport + `\)`)
			if n := k.WaitCount(invite, 2, 5*time.Second); n < 2 {
				t.Errorf("kamailio saw %d INVITEs for the number over %s, want the challenged one and the authenticated one", n, transport)
			}
			// RFC 3581's rport, and the transport as Via writes it (SIP/2.0/TCP).
			via := regexp.MustCompile(`request INVITE .* Via=SIP/2\.0/` + strings.ToUpper(transport) + ` [^ ]*;rport`)
			if n := k.CountLog(via); n < 2 {
				t.Errorf("kamailio saw %d INVITEs whose Via says SIP/2.0/%s with rport, want 2:\n%s", n, strings.ToUpper(transport), k.Log())
			}
			heard, err := b.Heard()
			if err != nil || len(heard) != 1 {
				t.Fatalf("baresip's recordings of the call: %v, %v", heard, err)
			}
			pcm, err := peertest.ReadWAV(heard[0])
			if err != nil {
				t.Fatal(err)
			}
			if pcm.Duration() < 1 || pcm.RMS() < heardRMSFloor {
				t.Errorf("baresip heard %.1f s at RMS %.0f; want the prompt: at least 1 s above RMS %d", pcm.Duration(), pcm.RMS(), heardRMSFloor)
			}
			t.Logf("baresip heard %.1f s of the call at RMS %.0f", pcm.Duration(), pcm.RMS())
		})
	}
}

// TestPBXWrongPasswordFails is issue 7's second Done-when: with a wrong
// trunk password the verification ends failed, promptly, with an event
// that says why, and the phone never rings. kamailio either challenges
// again (its default, as Asterisk does) or answers 403 (as FreeSWITCH can).
func TestPBXWrongPasswordFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		forbid bool
		event  verify.EventType
		code   string
		detail string
	}{
		{"challenged again", false, verify.EventFailed, "407", "authentication failed"},
		{"forbidden", true, verify.EventRejected, "403", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, b := startPBX(t, tc.forbid)
			gw := newPBXGateway(t, sip.Trunk{
				Name: "pbx", Address: k.Addr, Username: gatewayUser, Password: "not-the-password",
			})
			v := gw.start(t)
			got := gw.waitFinal(t, v.ID, 20*time.Second)
			if got.Status != verify.StatusFailed || got.Reason != string(tc.event) {
				t.Fatalf("verification %s (reason %q), want failed (%s); events %v", got.Status, got.Reason, tc.event, eventTypes(got.Events))
			}
			var ev *verify.Event
			for i := range got.Events {
				if got.Events[i].Type == tc.event {
					ev = &got.Events[i]
				}
			}
			if ev == nil || ev.ErrorCode != tc.code || !strings.Contains(ev.Detail, tc.detail) || ev.Provider != sip.Provider {
				t.Errorf("event %+v, want %s with SIP status %s and detail containing %q", ev, tc.event, tc.code, tc.detail)
			}
			if !k.WaitLog(regexp.MustCompile(`proxy auth of `+gatewayUser+` failed: -2`), 5*time.Second) {
				t.Error("kamailio did not see a wrong password")
			}
			for _, e := range b.Events() {
				if strings.HasPrefix(e.Type, "CALL_") {
					t.Errorf("the phone saw %s although the gateway's password was wrong", e.Type)
				}
			}
		})
	}
}
