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
