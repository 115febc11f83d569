package sip_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// TestUnusableSDPAnswerRecordsTheWire: the phone answers 200 OK with an
// SDP that has no codec in common (G.729 only). The call fails with the
// error code that was on the wire, 200, and the detail says why; no 488
// was ever sent or received.
func TestUnusableSDPAnswerRecordsTheWire(t *testing.T) {
	phone := newBarePhoneAnswering(t, 101, func(sdp string) string {
		sdp = strings.Replace(sdp, " RTP/AVP 0 101", " RTP/AVP 18 101", 1)
		return strings.Replace(sdp, "a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000", 1)
	})
	rep := newReporter()
	caller := dtmfCaller(t, rep, sip.Trunk{Name: "phone", Address: phone.addr.String()}, sip.Options{}, nil)
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatalf("Call: %v", err)
	}
	rep.waitFor(t, "v1", verify.EventFailed, 20*time.Second)
	for _, ev := range rep.all("v1") {
		if ev.Type != verify.EventFailed {
			continue
		}
		if ev.ErrorCode != "200" || !strings.Contains(ev.Detail, "no common codec") {
			t.Fatalf("failed event code %q detail %q, want 200 and the reason", ev.ErrorCode, ev.Detail)
		}
	}
}

// answerCall places an approve-mode call to a bare phone whose SDP answer
// passes through rewrite and that presses nothing, and waits until the
// call is over (three prompts unanswered).
func answerCall(t *testing.T, rewrite func(string) string) (*barePhone, *reporter) {
	t.Helper()
	phone := newBarePhoneAnswering(t, 101, rewrite)
	rep := newReporter()
	caller := dtmfCaller(t, rep, sip.Trunk{Name: "phone", Address: phone.addr.String()},
		sip.Options{KeyTimeout: 200 * time.Millisecond, MaxPrompts: 1}, nil)
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatalf("Call: %v", err)
	}
	rep.waitFor(t, "v1", verify.EventCompleted, 20*time.Second)
	waitIdle(t, caller, 10*time.Second)
	return phone, rep
}

// TestAnswerSendonlyGetsNoRTP: RFC 3264 §6.1, an answer marked sendonly
// (or inactive) will not receive media: the gateway sends it none, while
// the call still runs its script to the end.
func TestAnswerSendonlyGetsNoRTP(t *testing.T) {
	for _, dir := range []string{"sendonly", "inactive"} {
		t.Run(dir, func(t *testing.T) {
			phone, rep := answerCall(t, func(sdp string) string { return strings.Replace(sdp, "a=sendrecv", "a="+dir, 1) })
			if got := phone.sizes(); len(got) != 0 {
				t.Fatalf("the %s phone got rtp %v (payload size: packets), want none", dir, got)
			}
			if d, _ := detail(rep.all("v1"), verify.EventFailed); d != "not_confirmed" {
				t.Errorf("events %v, want the script run to not_confirmed", rep.types("v1"))
			}
		})
	}
}

// TestAnswerPtime30Gets30msPackets: an answer with a=ptime:30 receives
// 240-byte (30 ms) G.711 packets only, not 20 ms ones.
func TestAnswerPtime30Gets30msPackets(t *testing.T) {
	phone, _ := answerCall(t, func(sdp string) string { return strings.Replace(sdp, "a=ptime:20", "a=ptime:30", 1) })
	got := phone.sizes()
	if got[240] == 0 || len(got) != 1 {
		t.Fatalf("rtp payload sizes %v (size: packets), want 240 bytes only", got)
	}
}

// TestAnswerPayloadTypeIsSent: the offer lists PCMU and PCMA; an answer
// that chose PCMA (8) gets PCMA, never PCMU.
func TestAnswerPayloadTypeIsSent(t *testing.T) {
	phone, _ := answerCall(t, func(sdp string) string {
		sdp = strings.Replace(sdp, " RTP/AVP 0 101", " RTP/AVP 8 101", 1)
		return strings.Replace(sdp, "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", 1)
	})
	if got := phone.payloadTypes(); got[8] == 0 || len(got) != 1 {
		t.Fatalf("rtp payload types %v (type: packets), want 8 (PCMA) only", got)
	}
}
