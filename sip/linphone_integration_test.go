package sip_test

import (
	"context"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// TestLinphoneApprovesDirectly is the first of issue 14's linphone peers:
// the gateway calls linphone-daemon directly over UDP, linphone answers by
// itself and presses # by RFC 4733 (among its stray payload type 1
// packets) or by SIP INFO; the call is approved and linphone's call ends by
// the gateway's BYE.
func TestLinphoneApprovesDirectly(t *testing.T) {
	// The trunk takes keys only the way linphone sends them, so a key
	// arriving by the other way (or in-band) does not pass the test.
	for _, dtmf := range []string{"rfc4733", "info"} {
		t.Run(dtmf, func(t *testing.T) {
			l := peertest.StartLinphone(t, peertest.LinphoneOptions{DTMF: dtmf})
			rep := newReporter()
			caller := newCaller(t, rep, sip.Trunk{Name: "linphone", Address: l.Addr, Dial: "{e164_digits}", DTMF: dtmf},
				sip.Options{KeyTimeout: 10 * time.Second})
			approveByLinphone(t, caller, rep, l, "+4915123456789")
		})
	}
}

// TestLinphoneThroughKamailio is issue 14's linphone through a PBX: linphone
// registers at kamailio (its Contact in dialogs is then a GRUU, which
// kamailio resolves through its location table), and the gateway calls it
// through kamailio, both over the same transport. In one call linphone
// presses # (approved; the gateway's BYE reaches linphone), in the next
// linphone hangs up mid-prompt (its BYE reaches the gateway: completed,
// hung up by the phone).
func TestLinphoneThroughKamailio(t *testing.T) {
	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			certs := peertest.NewCerts(t)
			k := peertest.StartKamailio(t, peertest.KamailioOptions{
				Users: map[string]string{gatewayUser: gatewayPass, pbxNumber: phonePass},
				TLS:   certs,
			})
			registrar, o := k.Addr, sip.Options{KeyTimeout: 10 * time.Second}
			if transport == "tls" {
				registrar, o.TLSConfig = k.TLSAddr, certs.ClientTLS(peertest.Loopback)
			}
			l := peertest.StartLinphone(t, peertest.LinphoneOptions{
				User: pbxNumber, Password: phonePass, Registrar: registrar, Transport: transport, CAFile: certs.CAFile,
			})
			if err := l.WaitRegistered(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			rep := newReporter()
			caller := newCaller(t, rep, sip.Trunk{
				Name: "pbx", Address: registrar, Transport: transport, Username: gatewayUser, Password: gatewayPass,
			}, o)

			approveByLinphone(t, caller, rep, l, pbxNumber)

			if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v2", To: pbxNumber, Mode: verify.CallModeApprove}); err != nil {
				t.Fatalf("Call: %v", err)
			}
			if err := l.WaitCall(20 * time.Second); err != nil {
				t.Fatalf("%v; gateway events %v", err, rep.types("v2"))
			}
			time.Sleep(500 * time.Millisecond)
			if err := l.Hangup(); err != nil {
				t.Fatal(err)
			}
			rep.waitFor(t, "v2", verify.EventCompleted, 20*time.Second)
			if d, _ := detail(rep.all("v2"), verify.EventCompleted); d != "hung up by the phone" {
				t.Fatalf("completed %q, events %v", d, rep.types("v2"))
			}
		})
	}
}

// approveByLinphone places verification call v1 to to through caller, has
// linphone press # once the prompt asks, and waits for the approval, the
// end of the call and linphone's side of it (the gateway's BYE reached it).
func approveByLinphone(t *testing.T, caller *sip.Caller, rep *reporter, l *peertest.Linphone, to string) {
	t.Helper()
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: to, Mode: verify.CallModeApprove}); err != nil {
		t.Fatalf("Call: %v", err)
	}
	if err := l.WaitCall(20 * time.Second); err != nil {
		t.Fatalf("%v; gateway events %v", err, rep.types("v1"))
	}
	// Keys pressed during the greeting do not count: press once it asks.
	time.Sleep(time.Second)
	if err := l.Press("#"); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventCompleted, 30*time.Second)
	if !hasInOrder(rep.types("v1"), verify.EventAnswered, verify.EventKeyPressed, verify.EventCallApproved, verify.EventCompleted) {
		t.Fatalf("events %v, want answered, key_pressed, call_approved, completed", rep.types("v1"))
	}
	if err := l.WaitIdle(10 * time.Second); err != nil {
		t.Fatalf("the gateway's BYE did not end linphone's call: %v", err)
	}
}
