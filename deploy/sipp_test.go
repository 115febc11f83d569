package deploy

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/peertest"
)

// TestSippPressPoundTakesInviteRetransmission plays a gateway by hand
// against sipp running sipp/uas_press_pound.xml and sends its INVITE
// twice, as the gateway does when no provisional answer came within
// 500 ms: the copy crossing the 180 and the copy crossing the 200 OK. The
// call must go on to the key and end on the BYE, sipp finding it followed
// the scenario (its built-in UAS aborts the call on the second case).
func TestSippPressPoundTakesInviteRetransmission(t *testing.T) {
	for _, tc := range []struct {
		name        string
		afterAnswer bool // retransmit once the 200 OK came, not at once
	}{{"crossing the 180", false}, {"crossing the 200 OK", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := peertest.StartSippUAS(t, peertest.SippUASOptions{Scenario: "sipp/uas_press_pound.xml", Duration: 500 * time.Millisecond})
			sipp := netip.MustParseAddrPort(s.Addr)
			sigConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(peertest.Loopback)})
			if err != nil {
				t.Fatal(err)
			}
			defer sigConn.Close()
			media, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(peertest.Loopback)})
			if err != nil {
				t.Fatal(err)
			}
			defer media.Close()
			local := sigConn.LocalAddr().(*net.UDPAddr).AddrPort()
			send := func(b []byte) {
				t.Helper()
				if _, err := sigConn.WriteToUDPAddrPort(b, sipp); err != nil {
					t.Fatal(err)
				}
			}
			// wait reads until a response to method with status code comes.
			wait := func(code int, method string) string {
				t.Helper()
				buf := make([]byte, 65536)
				_ = sigConn.SetReadDeadline(time.Now().Add(20 * time.Second))
				for {
					n, err := sigConn.Read(buf)
					if err != nil {
						t.Fatalf("no %d to %s: %v", code, method, err)
					}
					msg := string(buf[:n])
					if strings.HasPrefix(msg, fmt.Sprintf("SIP/2.0 %d ", code)) && strings.Contains(msg, " "+method+"\r\n") {
						return msg
					}
				}
			}
			sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %[1]s\r\ns=-\r\nc=IN IP4 %[1]s\r\nt=0 0\r\nm=audio %[2]d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
				peertest.Loopback, media.LocalAddr().(*net.UDPAddr).Port)
			dialog := peertest.SIPRequest{URI: "sip:+4915123456789@" + s.Addr, CallID: "retransmission-test",
				From: fmt.Sprintf("<sip:verigate@%s>;tag=gw1", local), To: "<sip:+4915123456789@" + s.Addr + ">"}
			invite := dialog
			invite.Method, invite.CSeq, invite.ContentType, invite.Body = "INVITE", 1, "application/sdp", sdp
			// Byte for byte the same each time, as a retransmission is.
			inviteBytes := invite.Bytes(local, "z9hG4bK-invite1")
			send(inviteBytes)
			if !tc.afterAnswer {
				send(inviteBytes)
			}
			ok := wait(200, "INVITE")
			if tc.afterAnswer {
				send(inviteBytes)
			}
			var toTag string
			for _, line := range strings.Split(ok, "\r\n") {
				if v, found := strings.CutPrefix(line, "To:"); found {
					_, toTag, _ = strings.Cut(v, ";tag=")
				}
			}
			if toTag == "" {
				t.Fatalf("no To tag in the 200 OK:\n%s", ok)
			}
			dialog.To += ";tag=" + toTag
			ack := dialog
			ack.Method, ack.CSeq = "ACK", 1
			send(ack.Bytes(local, "z9hG4bK-ack1"))
			// The first packet of the # says sipp is past its pause and
			// waits for the BYE.
			_ = media.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := media.Read(make([]byte, 2048)); err != nil {
				t.Fatalf("no RTP from sipp: %v", err)
			}
			bye := dialog
			bye.Method, bye.CSeq = "BYE", 2
			send(bye.Bytes(local, "z9hG4bK-bye1"))
			wait(200, "BYE")
			if err := s.Wait(30 * time.Second); err != nil {
				t.Fatalf("sipp: %v", err)
			}
		})
	}
}
