package sip_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// TestCallerRefusesInDialogRequestsFromStrangers: during a real call, a
// stranger at another address sends the requests of the call's dialog
// (right Call-ID, both tags, a CSeq above the phone's): an INFO with '#',
// a BYE and a re-INVITE. Each gets 403 and changes nothing; the phone's
// own INFOs then count ('1' is not recognised, '#' approves), so the keys
// heard are exactly "1#".
func TestCallerRefusesInDialogRequestsFromStrangers(t *testing.T) {
	var logs syncBuffer
	phone := newBarePhone(t, -1)
	rep := newReporter()
	caller := dtmfCaller(t, rep, sip.Trunk{Name: "phone", Address: phone.addr.String(), DTMF: "info"},
		sip.Options{KeyTimeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatalf("Call: %v", err)
	}
	d, _ := phone.answered(t)

	stranger := peertest.NewStranger(t)
	gw := caller.Addr()
	forged := func(method string, cseq int) peertest.SIPRequest {
		return peertest.SIPRequest{
			Method: method, URI: d.InviteRequest.Contact().Address.String(),
			From: d.InviteResponse.To().Value(), To: d.InviteRequest.From().Value(),
			CallID: d.InviteRequest.CallID().Value(), CSeq: cseq,
		}
	}
	info := forged("INFO", 100)
	info.ContentType, info.Body = "application/dtmf", "#"
	wrongTag := info
	wrongTag.To = strings.Replace(wrongTag.To, "tag=", "tag=x", 1)
	for _, tc := range []struct {
		name string
		req  peertest.SIPRequest
		want int
	}{
		{"info with #", info, 403},
		{"bye", forged("BYE", 101), 403},
		{"re-invite", forged("INVITE", 102), 403},
		{"info outside the dialog", wrongTag, 481},
	} {
		if got := stranger.Request(t, gw, tc.req, 10*time.Second); got != tc.want {
			t.Errorf("stranger's %s answered %d, want %d", tc.name, got, tc.want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, key := range []string{"1", "#"} {
		req := newINFO(d, "application/dtmf", key)
		res, err := d.Do(ctx, req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("the phone's INFO %s: %v %v, want 200", key, res, err)
		}
	}
	rep.waitFor(t, "v1", verify.EventCompleted, 30*time.Second)
	got := rep.types("v1")
	if !hasInOrder(got, verify.EventAnswered, verify.EventKeyPressed, verify.EventCallApproved, verify.EventCompleted) {
		t.Fatalf("events %v, want answered, key_pressed, call_approved, completed", got)
	}
	if keys := keysPressed(rep); keys != "1#" {
		t.Fatalf("keys %q, want 1# (the stranger's # refused)", keys)
	}
	if n := strings.Count(logs.String(), "sip in-dialog request from a stranger refused"); n != 3 {
		t.Errorf("%d log lines about the stranger, want 3:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "source="+peertest.StrangerAddr) {
		t.Errorf("the stranger's address is not logged:\n%s", logs.String())
	}
}
