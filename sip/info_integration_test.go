package sip_test

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// TestCallerAnswersINFO drives the gateway's SIP INFO handling from a bare
// sipgo phone: a body that is not DTMF gets 415, a malformed one 400, an
// INFO of no call 481; keys by application/dtmf-relay and application/dtmf
// get 200 and approve, and an INFO sent again with its CSeq (a PBX
// repeating itself) gets 200 and no second key.
func TestCallerAnswersINFO(t *testing.T) {
	phone := newBarePhone(t, -1)
	client := phone.client
	rep := newReporter()
	caller := dtmfCaller(t, rep, sip.Trunk{Name: "phone", Address: phone.addr.String(), DTMF: "info"}, sip.Options{KeyTimeout: 5 * time.Second}, nil)
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatalf("Call: %v", err)
	}
	d, _ := phone.answered(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	info := func(ct, body string) *sipmsg.Request { return newINFO(d, ct, body) }
	send := func(what string, req *sipmsg.Request, want int) {
		t.Helper()
		res, err := d.Do(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if res.StatusCode != want {
			t.Fatalf("%s answered %d %s, want %d", what, res.StatusCode, res.Reason, want)
		}
	}
	send("text/plain info", info("text/plain", "hello"), 415)
	send("malformed dtmf-relay", info("application/dtmf-relay", "Signal=x\r\n"), 400)

	stranger := sipmsg.NewRequest(sipmsg.INFO, d.InviteRequest.Contact().Address)
	stranger.AppendHeader(sipmsg.NewHeader("Content-Type", "application/dtmf"))
	stranger.SetBody([]byte("#"))
	stranger.SetDestination(d.InviteRequest.Source())
	if res, err := client.Do(ctx, stranger); err != nil || res.StatusCode != 481 {
		t.Fatalf("info of no call: %v %v, want 481", res, err)
	}

	// '1' twice with one CSeq, then '#': with the repeat dropped the
	// gateway hears '1' (not recognised, asked again), then '#' approves;
	// had the repeat counted, a second '1' would have been heard.
	one := info("application/dtmf-relay", "Signal=1\r\nDuration=100\r\n")
	send("dtmf-relay 1", one, 200)
	again := one.Clone()
	again.RemoveHeader("Via")
	if res, err := client.Do(ctx, again, sipgo.ClientRequestAddVia); err != nil || res.StatusCode != 200 {
		t.Fatalf("repeated info: %v %v, want 200", res, err)
	}
	send("application/dtmf #", info("application/dtmf", "#"), 200)
	waitApproved(t, rep, "1#", "the repeated INFO dropped")
}

func keysPressed(rep *reporter) string {
	var keys string
	for _, ev := range rep.all("v1") {
		if ev.Type == verify.EventKeyPressed {
			keys += ev.Detail
		}
	}
	return keys
}
