package sip_test

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/testbuf"

	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/internal/siptest"
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
	var logs testbuf.Buffer
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
	waitApproved(t, rep, "1#", "the stranger's # refused")
	if n := strings.Count(logs.String(), "sip in-dialog request from a stranger refused"); n != 3 {
		t.Errorf("%d log lines about the stranger, want 3:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "source="+peertest.StrangerAddr) {
		t.Errorf("the stranger's address is not logged:\n%s", logs.String())
	}
}

// TestCallerTakesRTPOnlyFromThePeer: during a real call, RFC 4733 keys
// reach the gateway's RTP port from a stranger at another address, and
// from the peer's own address under another SSRC; neither counts. The
// peer's '1' and '#' on its stream do, so the keys heard are exactly
// "1#". With symmetric RTP the peer sends from another port than its SDP
// names (as behind NAT), the stranger sends first, and the gateway must
// latch to the peer, not the stranger, and play its prompts there.
func TestCallerTakesRTPOnlyFromThePeer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		symmetric bool
	}{
		{"negotiated address", false},
		{"symmetric rtp behind nat", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			phone := newBarePhone(t, 101)
			rep := newReporter()
			caller := dtmfCaller(t, rep, sip.Trunk{Name: "phone", Address: phone.addr.String(), DTMF: "rfc4733"},
				sip.Options{KeyTimeout: 5 * time.Second, SymmetricRTP: tc.symmetric}, nil)
			if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
				t.Fatalf("Call: %v", err)
			}
			_, gw := phone.answered(t)

			// from is the peer's RTP source: its SDP port, or behind NAT
			// another port on the same address.
			from := phone.media
			if tc.symmetric {
				nat, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					t.Fatal(err)
				}
				defer nat.Close()
				from = nat
			}
			stranger := peertest.NewStranger(t)
			peer := &rtpStream{ssrc: 0x11111111, seq: 1000, ts: 8000}
			spoof := &rtpStream{ssrc: 0x22222222, seq: 5000, ts: 99999}
			other := &rtpStream{ssrc: 0x33333333, seq: 7000, ts: 50000}

			// A socket reads in the order datagrams were sent to it, so
			// each forged key reaches the gateway before the peer's next.
			for _, p := range append(spoof.audio(2), spoof.key('#')...) {
				stranger.Send(t, gw, p)
			}
			sendAll(t, from, gw, peer.audio(5))
			for _, p := range spoof.key('#') {
				stranger.Send(t, gw, p)
			}
			sendAll(t, from, gw, other.key('#'), peer.audio(2), peer.key('1'), peer.audio(2), peer.key('#'), peer.audio(2))

			waitApproved(t, rep, "1#", "the forged # dropped")
			if tc.symmetric {
				// The goodbye went to where the peer's RTP came from.
				_ = from.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 1500)
				_, src, err := from.ReadFromUDPAddrPort(buf)
				if err != nil || src != gw {
					t.Fatalf("no RTP from the gateway at the peer's NAT port: %v %v", src, err)
				}
			}
			if st := settled(t, caller); st.Media.PacketsDropped == 0 {
				t.Errorf("media %+v, want the forged packets counted as dropped", st.Media)
			}
		})
	}
}

// TestMethodNotAllowedCarriesAllow: a request of a method the gateway (or
// the test phone) does not take is answered 405 with the Allow header
// RFC 3261 §8.2.1 requires.
func TestMethodNotAllowedCarriesAllow(t *testing.T) {
	caller := dtmfCaller(t, newReporter(), sip.Trunk{Name: "t", Address: "127.0.0.1:9"}, sip.Options{}, nil)
	phone, err := siptest.NewLoopbackPhone(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	stranger := peertest.NewStranger(t)
	for name, ua := range map[string]struct {
		addr  netip.AddrPort
		allow string
	}{
		"gateway": {caller.Addr(), "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"},
		"phone":   {phone.Addr(), "INVITE, ACK, BYE, CANCEL, OPTIONS"},
	} {
		req := peertest.SIPRequest{Method: "MESSAGE", URI: "sip:x@" + ua.addr.String(),
			From: "<sip:a@127.0.0.2>;tag=1", To: "<sip:x@" + ua.addr.String() + ">", CallID: "allow-" + name, CSeq: 1}
		code, res := stranger.Response(t, ua.addr, req, 10*time.Second)
		if code != 405 {
			t.Fatalf("%s: MESSAGE answered %d, want 405", name, code)
		}
		if !strings.Contains(res, "\r\nAllow: "+ua.allow+"\r\n") {
			t.Errorf("%s: 405 without Allow: %s\r\n:\n%s", name, ua.allow, res)
		}
	}
}
