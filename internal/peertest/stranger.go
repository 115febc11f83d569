package peertest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StrangerAddr is a loopback address other than Loopback. Linux routes all
// of 127.0.0.0/8 to the loopback interface, so a socket bound here is a
// host the gateway has never dealt with, while trunks and phones sit at
// Loopback.
const StrangerAddr = "127.0.0.2"

// Stranger is a UDP socket at StrangerAddr from which a test sends what an
// attacker would: SIP requests carrying another dialog's Call-ID and tags,
// RTP toward a call's media port, garbage. It is closed on cleanup.
type Stranger struct {
	conn *net.UDPConn
}

// NewStranger binds a UDP socket on StrangerAddr.
func NewStranger(t testing.TB) *Stranger {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(StrangerAddr)})
	if err != nil {
		t.Fatalf("peertest: stranger socket on %s: %v", StrangerAddr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &Stranger{conn: c}
}

// Addr returns the stranger's address.
func (s *Stranger) Addr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Send sends one datagram to to.
func (s *Stranger) Send(t testing.TB, to netip.AddrPort, b []byte) {
	t.Helper()
	if _, err := s.conn.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatalf("peertest: stranger send to %v: %v", to, err)
	}
}

// Request sends r to to and returns the status code of the first final
// response to it, failing the test when none comes within d. Datagrams
// that are not responses to r are skipped.
func (s *Stranger) Request(t testing.TB, to netip.AddrPort, r SIPRequest, d time.Duration) int {
	t.Helper()
	code, _ := s.Response(t, to, r, d)
	return code
}

// Response is Request returning the whole final response as well, for
// tests that look at its headers.
func (s *Stranger) Response(t testing.TB, to netip.AddrPort, r SIPRequest, d time.Duration) (int, string) {
	t.Helper()
	branch := "z9hG4bK-" + randomToken()
	s.Send(t, to, r.Bytes(s.Addr(), branch))
	deadline := time.Now().Add(d)
	buf := make([]byte, 65536)
	for {
		_ = s.conn.SetReadDeadline(deadline)
		n, err := s.conn.Read(buf)
		if err != nil {
			t.Fatalf("peertest: no final response to the stranger's %s within %s: %v", r.Method, d, err)
		}
		code, ok := finalStatus(string(buf[:n]), branch)
		if ok {
			_ = s.conn.SetReadDeadline(time.Time{})
			return code, string(buf[:n])
		}
	}
}

// finalStatus reads the status code of a final response to the request
// sent with branch.
func finalStatus(msg, branch string) (int, bool) {
	line, rest, _ := strings.Cut(msg, "\r\n")
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "SIP/2.0" || !strings.Contains(rest, branch) {
		return 0, false
	}
	code, err := strconv.Atoi(f[1])
	if err != nil || code < 200 {
		return 0, false
	}
	return code, true
}

// SIPRequest is a SIP request written by hand, for forging one that a
// SIP stack would not send (another dialog's Call-ID and tags from the
// wrong address).
type SIPRequest struct {
	Method string
	URI    string
	// From and To are the header values, tags included.
	From, To    string
	CallID      string
	CSeq        int
	ContentType string
	Body        string
}

// Bytes returns the request as sent from via: a Via with rport and branch,
// Max-Forwards and Content-Length added.
func (r SIPRequest) Bytes(via netip.AddrPort, branch string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", r.Method, r.URI)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=%s;rport\r\n", via, branch)
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n", r.From, r.To, r.CallID, r.CSeq, r.Method)
	if r.ContentType != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", r.ContentType)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(r.Body), r.Body)
	return []byte(b.String())
}

func randomToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
