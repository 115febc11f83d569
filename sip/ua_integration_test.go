package sip_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// TestInviteLeavesFromListenAddress plays a trunk on a bare UDP socket:
// the INVITE must come from the Caller's listen address (trunks that admit
// calls by source address need it) and name it in Via and Contact.
func TestInviteLeavesFromListenAddress(t *testing.T) {
	trunk, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer trunk.Close()
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "raw", Address: trunk.LocalAddr().String(), Dial: "00{e164_digits}"}, sip.Options{})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	_ = trunk.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8192)
	n, from, err := trunk.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no INVITE: %v", err)
	}
	msg := string(buf[:n])
	if from.String() != caller.Addr().String() {
		t.Errorf("INVITE came from %s, want the listen address %s", from, caller.Addr())
	}
	if !strings.HasPrefix(msg, "INVITE sip:004915123456789@127.0.0.1:") {
		t.Errorf("request line %q, want the rewritten dial string", strings.SplitN(msg, "\r\n", 2)[0])
	}
	headers := map[string]string{}
	for _, line := range strings.Split(msg, "\r\n")[1:] {
		if line == "" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		headers[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(value)
	}
	port := ":" + strings.Split(caller.Addr().String(), ":")[1]
	if !strings.Contains(headers["via"], port) || !strings.Contains(headers["contact"], port) {
		t.Errorf("Via %q and Contact %q should name the listen port %s", headers["via"], headers["contact"], port)
	}
	if !strings.Contains(headers["content-type"], "application/sdp") || !strings.Contains(msg, "telephone-event/8000") {
		t.Errorf("INVITE carries no SDP offer with telephone-event:\n%s", msg)
	}
	// Answer 486 so the call ends (and the Caller ACKs).
	res := "SIP/2.0 486 Busy Here\r\nVia: " + headers["via"] + "\r\nFrom: " + headers["from"] +
		"\r\nTo: " + headers["to"] + ";tag=trunk1\r\nCall-ID: " + headers["call-id"] +
		"\r\nCSeq: " + headers["cseq"] + "\r\nContent-Length: 0\r\n\r\n"
	if _, err := trunk.WriteTo([]byte(res), from); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventBusy, 10*time.Second)
	n, _, err = trunk.ReadFrom(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "ACK ") {
		t.Errorf("no ACK for the 486: %v %q", err, buf[:n])
	}
}
