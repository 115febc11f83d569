package sip_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

func TestApproveWithPhone(t *testing.T) {
	// The phone rings for a while, as phones do: sipgo handles each
	// response in a goroutine of its own, so a 180 sent together with the
	// 200 may be passed over once the 200 has been handled.
	rep := newReporter()
	phone, ended := newPhone(t, siptest.PhoneConfig{Press: "#", After: pressAfter, Ring: 200 * time.Millisecond})
	caller := newCaller(t, rep, sip.Trunk{Name: "phone", Address: phone.Addr().String()}, sip.Options{})

	ref, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove, Locale: "en"})
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if ref == "" {
		t.Fatal("Call returned no Call-ID")
	}
	rep.waitFor(t, "v1", verify.EventCompleted, 20*time.Second)
	pc := waitCall(t, ended, 5*time.Second)
	got := rep.types("v1")
	if !hasInOrder(got, verify.EventRinging, verify.EventAnswered, verify.EventKeyPressed, verify.EventCallApproved, verify.EventCompleted) {
		t.Fatalf("events %v, want ringing, answered, key_pressed, call_approved, completed", got)
	}
	for _, ev := range rep.all("v1") {
		if ev.ProviderRef != ref || ev.Provider != sip.Provider {
			t.Errorf("event %s has ref %q provider %q, want %q %q", ev.Type, ev.ProviderRef, ev.Provider, ref, sip.Provider)
		}
		if ev.Type == verify.EventKeyPressed && ev.Detail != "#" {
			t.Errorf("key_pressed detail %q, want #", ev.Detail)
		}
	}
	if pc.KeysSent != "#" || pc.HungUpBy != "caller" || pc.Heard == 0 {
		t.Errorf("phone saw %+v, want # sent, the gateway hanging up and audio heard", pc)
	}
	// The call's goroutine ends just after it reported completed.
	waitIdle(t, caller, 10*time.Second)
}

func TestLoopbackPhone(t *testing.T) {
	events := make(chan siptest.PhoneEvent, 16)
	phone, err := siptest.NewLoopbackPhone(testLogger(t), func(c *siptest.PhoneConfig) {
		c.OnEvent = func(ev siptest.PhoneEvent) { events <- ev }
	})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	rep := newReporter()
	cfg := phone.LoopbackConfig(sip.Config{RTPPorts: rtpRange(t)})
	caller, err := sip.NewCaller(cfg, sip.Options{Audio: tones{dur: 400 * time.Millisecond}, KeyTimeout: 5 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	caller.ReportTo(rep)
	if !caller.Addr().Addr().IsLoopback() {
		t.Errorf("dev gateway listens on %s, want loopback", caller.Addr())
	}
	// The route names no trunk: the loopback phone is the default.
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventCallApproved, 20*time.Second)
	// The phone told of each step of the call, in order.
	var got []string
	for done := false; !done; {
		select {
		case ev := <-events:
			step := string(ev.Kind) + ev.Key
			if ev.Kind == siptest.PhoneEnded {
				step += " by " + ev.HungUpBy
				done = true
			}
			if ev.CallID == "" {
				t.Errorf("%s event without a Call-ID", ev.Kind)
			}
			got = append(got, step)
		case <-time.After(20 * time.Second):
			t.Fatalf("the call did not end; phone events so far %q", got)
		}
	}
	if want := []string{"incoming", "answered", "pressed#", "ended by caller"}; !slices.Equal(got, want) {
		t.Errorf("phone events %q, want %q", got, want)
	}
}
