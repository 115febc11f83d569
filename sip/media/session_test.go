package media

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/testbuf"

	"github.com/pion/rtp"

	"github.com/verigate/verigate/audio"
)

// listenLoopback opens a UDP socket on 127.0.0.1 with an ephemeral port.
func listenLoopback(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// sessionPair connects two sessions over loopback, as a gateway and a phone.
func sessionPair(t *testing.T, codec audio.Codec, rec *testbuf.Buffer) (gw, phone *Session) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	cg, cp := listenLoopback(t), listenLoopback(t)
	gw, err := NewSession(ctx, Config{Conn: cg, Remote: addrOf(cp), Codec: codec, DTMFPayloadType: 101})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Conn: cp, Remote: addrOf(cg), Codec: codec, DTMFPayloadType: 101}
	if rec != nil {
		cfg.OnAudio = func(_ uint32, p []byte) { _, _ = rec.Write(p) }
	}
	phone, err = NewSession(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close(); _ = phone.Close() })
	return gw, phone
}

func TestSessionPlayAndDTMFOverLoopback(t *testing.T) {
	for _, codec := range []audio.Codec{audio.PCMU, audio.PCMA} {
		t.Run(codec.String(), func(t *testing.T) {
			rec := &testbuf.Buffer{}
			gw, phone := sessionPair(t, codec, rec)
			ctx := t.Context()
			played := bytes.Repeat([]byte{0x10, 0x20, 0x30, 0x40}, 5*FrameSamples/4) // 5 frames
			if err := gw.Play(ctx, played); err != nil {
				t.Fatalf("play: %v", err)
			}
			if err := phone.SendDTMF(ctx, '#', 100*time.Millisecond); err != nil {
				t.Fatalf("send dtmf: %v", err)
			}
			select {
			case d := <-gw.Digits():
				if d != '#' {
					t.Fatalf("digit %q, want #", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no digit received")
			}
			// Closing a socket discards what it has not read yet: wait until
			// the phone read the 5 frames (bounded), then close. Close waits
			// for the receive goroutines: counters are final.
			deadline := time.Now().Add(5 * time.Second)
			for phone.Stats().PacketsReceived < 5 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			_ = phone.Close()
			_ = gw.Close()
			select {
			case d := <-gw.Digits():
				t.Fatalf("second digit %q for one key press", d)
			default:
			}
			if got := gw.Stats().DigitsReceived; got != 1 {
				t.Fatalf("digits received %d, want 1", got)
			}
			if got := phone.Stats().PacketsReceived; got != 5 {
				t.Fatalf("phone received %d packets, want 5", got)
			}
			if !bytes.Equal(rec.Bytes(), played) {
				t.Fatalf("audio heard differs from the audio played (%d bytes, want %d)", rec.Len(), len(played))
			}
		})
	}
}

// TestSessionRTPHeaders checks the pacer's wire format with a raw
// socket as the peer: sequence numbers, timestamps, marker and SSRC.
func TestSessionRTPHeaders(t *testing.T) {
	peer := listenLoopback(t)
	defer peer.Close()
	c := listenLoopback(t)
	// The session's clock stands still unless the test moves it, so what is
	// a continuation and what is a pause does not depend on the machine's
	// load (frames still wait on real timers, for their distance to the
	// frozen now).
	clk := &fakeClock{}
	clk.Set(0)
	s, err := NewSession(t.Context(), Config{Conn: c, Remote: addrOf(peer), Codec: audio.PCMA, DTMFPayloadType: 101, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if err := s.Play(ctx, make([]byte, 3*FrameSamples)); err != nil {
		t.Fatal(err)
	}
	if err := s.Play(ctx, make([]byte, 2*FrameSamples)); err != nil { // continues the talkspurt
		t.Fatal(err)
	}
	clk.Set(time.Second) // a pause of 900 ms after the 5 frames: the next prompt is a new talkspurt
	if err := s.Play(ctx, make([]byte, FrameSamples+1)); err != nil {
		t.Fatal(err)
	}
	if err := s.SendDTMF(ctx, '5', 40*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var pkts []rtp.Packet
	buf := make([]byte, 1500)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(pkts) < 3+2+2+5 {
		n, _, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d packets: %v", len(pkts), err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	ssrc := pkts[0].SSRC
	for i, p := range pkts {
		if p.SSRC != ssrc {
			t.Errorf("packet %d: ssrc %x, want %x", i, p.SSRC, ssrc)
		}
	}
	// Audio: 3+2 contiguous frames, then 2 after a gap.
	for i := 1; i < 7; i++ {
		if pkts[i].SequenceNumber != pkts[i-1].SequenceNumber+1 {
			t.Errorf("packet %d: seq %d after %d", i, pkts[i].SequenceNumber, pkts[i-1].SequenceNumber)
		}
		if pkts[i].PayloadType != uint8(audio.PCMA) || len(pkts[i].Payload) != FrameSamples {
			t.Errorf("packet %d: pt %d, %d bytes", i, pkts[i].PayloadType, len(pkts[i].Payload))
		}
	}
	for i := 1; i < 5; i++ {
		if d := pkts[i].Timestamp - pkts[i-1].Timestamp; d != FrameSamples {
			t.Errorf("packet %d: timestamp step %d inside a talkspurt", i, d)
		}
	}
	if !pkts[0].Marker || pkts[1].Marker || pkts[3].Marker || !pkts[5].Marker || pkts[6].Marker {
		t.Errorf("markers %v %v %v %v %v, want marker only at each talkspurt start",
			pkts[0].Marker, pkts[1].Marker, pkts[3].Marker, pkts[5].Marker, pkts[6].Marker)
	}
	if d := pkts[5].Timestamp - pkts[4].Timestamp; d != FrameSamples+900*8 {
		t.Errorf("timestamp step %d across a 900 ms pause, want %d", d, FrameSamples+900*8)
	}
	if pkts[6].Payload[FrameSamples-1] != audio.PCMA.Silence() {
		t.Errorf("partial frame not padded with silence")
	}
	// DTMF: start, continuation, three ends with one seq and timestamp.
	ev := pkts[7:]
	if !ev[0].Marker {
		t.Error("first event packet without marker")
	}
	var e DTMFEvent
	for i, p := range ev {
		if p.PayloadType != 101 || p.Timestamp != ev[0].Timestamp {
			t.Errorf("event packet %d: pt %d ts %d", i, p.PayloadType, p.Timestamp)
		}
		if err := e.Unmarshal(p.Payload); err != nil || e.Event != 5 {
			t.Errorf("event packet %d: %+v %v", i, e, err)
		}
		if e.End != (i >= 2) {
			t.Errorf("event packet %d: end %v", i, e.End)
		}
	}
	if ev[1].SequenceNumber != ev[0].SequenceNumber+1 || ev[2].SequenceNumber != ev[1].SequenceNumber+1 ||
		ev[3].SequenceNumber != ev[2].SequenceNumber || ev[4].SequenceNumber != ev[2].SequenceNumber {
		t.Errorf("event sequence numbers %d %d %d %d %d", ev[0].SequenceNumber, ev[1].SequenceNumber,
			ev[2].SequenceNumber, ev[3].SequenceNumber, ev[4].SequenceNumber)
	}
	if ev[0].SequenceNumber != pkts[6].SequenceNumber+1 {
		t.Error("event does not share the audio sequence")
	}
	if ev[0].Timestamp != pkts[6].Timestamp+FrameSamples {
		t.Errorf("event timestamp %d right after the prompt, want the next slot %d", ev[0].Timestamp, pkts[6].Timestamp+FrameSamples)
	}
}

func TestSessionSilenceTimeout(t *testing.T) {
	peer := listenLoopback(t)
	defer peer.Close()
	s, err := NewSession(t.Context(), Config{Conn: listenLoopback(t), Remote: addrOf(peer), Codec: audio.PCMU, SilenceTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	select {
	case <-s.Timeout():
	case <-time.After(10 * time.Second):
		t.Fatal("no timeout without RTP")
	}
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = time.Unix(1_000_000, 0).Add(d)
}

// TestSessionPacketResetsSilenceTimeout uses an injected clock: the
// watchdog wakes on real timers but measures silence on the session's clock.
func TestSessionPacketResetsSilenceTimeout(t *testing.T) {
	clk := &fakeClock{}
	clk.Set(0)
	peer := listenLoopback(t)
	defer peer.Close()
	s, err := NewSession(t.Context(), Config{Conn: listenLoopback(t), Remote: addrOf(peer), Codec: audio.PCMU,
		SilenceTimeout: 50 * time.Millisecond, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clk.Set(40 * time.Millisecond)
	if _, err := peer.WriteToUDPAddrPort(raw(t, "8000 0001 00000100 01020304"), s.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	for s.Stats().PacketsReceived == 0 {
		time.Sleep(time.Millisecond)
	}
	clk.Set(60 * time.Millisecond) // 60 ms after start, but only 20 ms after the packet
	time.Sleep(150 * time.Millisecond)
	select {
	case <-s.Timeout():
		t.Fatal("timeout fired although a packet came 20 ms (session clock) ago")
	default:
	}
	clk.Set(100 * time.Millisecond)
	select {
	case <-s.Timeout():
	case <-time.After(10 * time.Second):
		t.Fatal("no timeout 60 ms (session clock) after the last packet")
	}
}

func TestSessionSymmetricLatching(t *testing.T) {
	peer := listenLoopback(t)
	defer peer.Close()
	// The SDP named a port the peer does not send from (NAT rewrote it).
	advertised := netip.AddrPortFrom(loopback, 9)
	s, err := NewSession(t.Context(), Config{Conn: listenLoopback(t), Remote: advertised, Codec: audio.PCMU, DTMFPayloadType: 101, Symmetric: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	to := s.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := peer.WriteToUDPAddrPort(raw(t, "8001 0001 00000100 01020304 00000000"), to); err != nil { // pt 1: not valid, no latch
		t.Fatal(err)
	}
	if _, err := peer.WriteToUDPAddrPort(raw(t, "8000 0002 00000200 01020304"), to); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Remote() != addrOf(peer) {
		if time.Now().After(deadline) {
			t.Fatalf("remote %v, want latched to %v", s.Remote(), addrOf(peer))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Play(t.Context(), make([]byte, FrameSamples)); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	if _, err := peer.Read(buf); err != nil {
		t.Fatalf("no RTP at the latched address: %v", err)
	}
}

func TestSessionLifecycle(t *testing.T) {
	a := allocatorForTest(t, "41400-41409")
	c, err := a.Listen(loopback)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	s, err := NewSession(ctx, Config{Conn: c, Remote: netip.AddrPortFrom(loopback, 9), Codec: audio.PCMU})
	if err != nil {
		t.Fatal(err)
	}
	playErr := make(chan error, 1)
	go func() { playErr <- s.Play(context.Background(), make([]byte, 1000*FrameSamples)) }() // 20 s
	time.Sleep(50 * time.Millisecond)
	cancel() // the call's context ends: the session closes itself
	select {
	case err := <-playErr:
		if !errors.Is(err, ErrSessionClosed) {
			t.Fatalf("play: %v, want ErrSessionClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("play did not stop")
	}
	<-s.Done()
	_ = s.Close()
	if a.InUse() != 0 {
		t.Fatal("port not returned after the session ended")
	}
	if err := s.SendDTMF(context.Background(), '1', 0); !errors.Is(err, ErrSessionClosed) && err == nil {
		t.Fatalf("send after close: %v", err)
	}
	if err := s.Play(context.Background(), make([]byte, 10)); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("play after close: %v", err)
	}
	for _, bad := range []Config{
		{Remote: netip.AddrPortFrom(loopback, 9), Codec: audio.PCMU},
		{Conn: listenLoopback(t), Codec: audio.PCMU},
		{Conn: listenLoopback(t), Remote: netip.AddrPortFrom(loopback, 9), Codec: 18},
		{Conn: listenLoopback(t), Remote: netip.AddrPortFrom(loopback, 9), Codec: audio.PCMU, DTMFPayloadType: 8},
		{Conn: listenLoopback(t), Remote: netip.MustParseAddrPort("0.0.0.0:4000"), Codec: audio.PCMU},
	} {
		if _, err := NewSession(t.Context(), bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
		if bad.Conn != nil {
			_ = bad.Conn.Close()
		}
	}
}

func TestLatenessHistogram(t *testing.T) {
	var h, o LatenessHistogram
	for i := range 100 {
		h.Add(time.Duration(i) * time.Millisecond / 10) // 0 .. 9.9 ms
	}
	o.Add(-time.Millisecond) // an early timer counts as on time
	o.Add(time.Second)       // past the buckets
	h.Merge(&o)
	if h.Count() != 102 || h.Max() != time.Second {
		t.Fatalf("count %d max %v", h.Count(), h.Max())
	}
	if q := h.Quantile(0.5); q < 4900*time.Microsecond || q > 5100*time.Microsecond {
		t.Errorf("p50 %v, want about 5 ms", q)
	}
	if q := h.Quantile(1); q != time.Second {
		t.Errorf("p100 %v, want the max", q)
	}
	if n := h.Above(5 * time.Millisecond); n != 51 { // 5.0 .. 9.9 ms and the 1 s one
		t.Errorf("above 5 ms: %d, want 51", n)
	}
}

// TestSessionDTMFDuringSilence checks the test phone's pattern: a
// silence stream with an RFC 4733 event in the middle. Audio stops for the
// event, the sequence stays one stream, and the event's timestamp is the
// slot it replaced.
func TestSessionDTMFDuringSilence(t *testing.T) {
	peer := listenLoopback(t)
	defer peer.Close()
	s, err := NewSession(t.Context(), Config{Conn: listenLoopback(t), Remote: addrOf(peer), Codec: audio.PCMU, DTMFPayloadType: 101})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() { done <- s.Silence(t.Context(), 600*time.Millisecond) }()
	time.Sleep(100 * time.Millisecond)
	if err := s.SendDTMF(t.Context(), '#', 60*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var pkts []rtp.Packet
	buf := make([]byte, 1500)
	_ = peer.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	for {
		n, _, err := peer.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		var p rtp.Packet
		if err := p.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	first, last := -1, -1
	for i, p := range pkts {
		if p.PayloadType == 101 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first <= 0 || last-first != 5 { // 3 event packets + 3 end packets
		t.Fatalf("event packets at %d..%d of %d", first, last, len(pkts))
	}
	for i := first; i <= last; i++ {
		if pkts[i].PayloadType != 101 {
			t.Fatalf("audio packet %d inside the event", i)
		}
	}
	if ts := pkts[first].Timestamp; ts != pkts[first-1].Timestamp+FrameSamples {
		t.Errorf("event timestamp %d, want the next audio slot %d", ts, pkts[first-1].Timestamp+FrameSamples)
	}
	for i := 1; i < len(pkts); i++ {
		d := pkts[i].SequenceNumber - pkts[i-1].SequenceNumber
		endRepeat := i > first+3 && i <= last
		if (endRepeat && d != 0) || (!endRepeat && d != 1) {
			t.Errorf("packet %d: sequence step %d", i, d)
		}
		if pkts[i].PayloadType == 0 && pkts[i-1].PayloadType == 0 && pkts[i].Timestamp-pkts[i-1].Timestamp != FrameSamples {
			t.Errorf("packet %d: audio timestamp step %d", i, pkts[i].Timestamp-pkts[i-1].Timestamp)
		}
	}
	if pkts[last+1].Marker {
		t.Error("audio after the event must continue the stream, not start a talkspurt")
	}
}

// TestSessionDTMFEitherPayloadNumber: the PBX answered telephone-event
// as 96 to Verigate's offer of 101 and, as RFC 3264 §6.1 lets it, sends its
// events with 101; a stray type is still dropped.
func TestSessionDTMFEitherPayloadNumber(t *testing.T) {
	peer := listenLoopback(t)
	defer peer.Close()
	s, err := NewSession(t.Context(), Config{Conn: listenLoopback(t), Remote: addrOf(peer), Codec: audio.PCMU, DTMFPayloadType: 96})
	if err != nil {
		t.Fatal(err)
	}
	to := s.LocalAddr().(*net.UDPAddr).AddrPort()
	// The stray type goes first: once both keys are in, it was handled.
	for _, h := range []string{
		"80e6 0003 00000500 01020304 030a00a0", // '3' as 102: not negotiated
		"80e5 0001 00000100 01020304 010a00a0", // '1' as 101
		"80e0 0002 00000300 01020304 020a00a0", // '2' as 96
	} {
		if _, err := peer.WriteToUDPAddrPort(raw(t, h), to); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for st := s.Stats(); st.PacketsReceived < 2; st = s.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("packets handled: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
	var got []rune
	_ = s.Close()
	for len(s.Digits()) > 0 {
		got = append(got, <-s.Digits())
	}
	// At least 1 dropped: a stray from an earlier user of the port counts too.
	if st := s.Stats(); string(got) != "12" || st.PacketsReceived != 2 || st.PacketsDropped < 1 {
		t.Fatalf("digits %q, stats %+v; want 12, 2 received, the stray dropped", string(got), st)
	}
}

// TestSessionAcceptsOnlyThePeersStream walks the receiver's source
// rules packet by packet over loopback: which address it takes (the SDP's,
// or under symmetric RTP the first from the SDP's IP or a peer address),
// which SSRC (the first accepted, until it has been silent for
// ssrcSwitchAfter on the session's clock), and that a stranger at another
// address is never latched to, even when it sends first.
func TestSessionAcceptsOnlyThePeersStream(t *testing.T) {
	const (
		peer     = "peer"     // the SDP's address and port
		nat      = "nat"      // the SDP's address, another port
		trunk    = "trunk"    // a signalling address of the peer (127.0.0.3)
		stranger = "stranger" // 127.0.0.2
	)
	type step struct {
		from    string
		ssrc    uint32
		advance time.Duration // session clock moved before sending
		accept  bool
	}
	for _, tc := range []struct {
		name      string
		symmetric bool
		sdpPeer   bool // the SDP names the peer socket; else an unused port on 127.0.0.1
		steps     []step
		latched   string // where the session sends at the end
	}{
		{
			name: "negotiated address and ssrc", sdpPeer: true, latched: peer,
			steps: []step{
				{stranger, 1, 0, false},
				{nat, 1, 0, false},
				{peer, 1, 0, true},
				{peer, 2, 0, false},
				{stranger, 1, 0, false},
				{peer, 1, ssrcSwitchAfter / 2, true},
				{peer, 2, ssrcSwitchAfter / 2, false}, // silent for less than ssrcSwitchAfter
				{peer, 2, ssrcSwitchAfter, true},      // a new stream after a silence
				{peer, 1, 0, false},
			},
		},
		{
			name: "symmetric latches to the sdp's address on another port", symmetric: true, latched: nat,
			steps: []step{
				{stranger, 1, 0, false}, // first, and still not latched to
				{nat, 1, 0, true},
				{peer, 1, 0, false},
				{stranger, 1, 0, false},
				{nat, 2, 0, false},
				{nat, 1, 0, true},
			},
		},
		{
			name: "symmetric latches to a signalling address", symmetric: true, latched: trunk,
			steps: []step{
				{stranger, 1, 0, false},
				{trunk, 7, 0, true},
				{nat, 7, 0, false},
				{trunk, 7, 0, true},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			socks := map[string]*net.UDPConn{peer: listenLoopback(t), nat: listenLoopback(t)}
			for name, ip := range map[string]string{trunk: "127.0.0.3", stranger: "127.0.0.2"} {
				c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
				if err != nil {
					t.Fatal(err)
				}
				socks[name] = c
			}
			for _, c := range socks {
				defer c.Close()
			}
			remote := netip.AddrPortFrom(loopback, 9)
			if tc.sdpPeer {
				remote = addrOf(socks[peer])
			}
			clk := &fakeClock{}
			clk.Set(0)
			var now time.Duration
			s, err := NewSession(t.Context(), Config{
				Conn: listenLoopback(t), Remote: remote, Codec: audio.PCMU, DTMFPayloadType: 101,
				Symmetric: tc.symmetric, PeerAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.3")}, Now: clk.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			to := s.LocalAddr().(*net.UDPAddr).AddrPort()
			for i, st := range tc.steps {
				now += st.advance
				clk.Set(now)
				before := s.Stats()
				pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(i), Timestamp: uint32(160 * i), SSRC: st.ssrc}, Payload: make([]byte, FrameSamples)}
				b, err := pkt.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := socks[st.from].WriteToUDPAddrPort(b, to); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(5 * time.Second)
				after := s.Stats()
				for after.PacketsReceived+after.PacketsDropped == before.PacketsReceived+before.PacketsDropped {
					if time.Now().After(deadline) {
						t.Fatalf("step %d: packet not handled", i)
					}
					time.Sleep(time.Millisecond)
					after = s.Stats()
				}
				if got := after.PacketsReceived > before.PacketsReceived; got != st.accept {
					t.Fatalf("step %d (%s, ssrc %d): accepted %v, want %v", i, st.from, st.ssrc, got, st.accept)
				}
			}
			if got, want := s.Remote(), addrOf(socks[tc.latched]); got != want {
				t.Errorf("sends to %v, want %v (%s)", got, want, tc.latched)
			}
		})
	}
}

// TestSessionDiscardsKeysQueuedBeforeItStarted: the RTP port is bound
// at the INVITE, so a '#' sent in early media (a 183's stream) waits in the
// socket until the answer starts the session. It must not be delivered,
// nor its end packets arriving after the start (the key was in flight at
// the answer); a key pressed afterwards is.
func TestSessionDiscardsKeysQueuedBeforeItStarted(t *testing.T) {
	peer, local := listenLoopback(t), listenLoopback(t)
	defer peer.Close()
	to := addrOf(local)
	send := func(pkts ...[]byte) {
		for _, b := range pkts {
			if _, err := peer.WriteToUDPAddrPort(b, to); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Early media: audio, then the start of '#' (event 11).
	send(raw(t, "8000 0001 00000100 0e05384e"), ev(t, true, 2, 0x200, 11, false, 160), ev(t, false, 3, 0x200, 11, false, 320))
	s, err := NewSession(t.Context(), Config{Conn: local, Remote: addrOf(peer), Codec: audio.PCMU, DTMFPayloadType: 101})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// After the answer: the rest of '#', then '1'.
	send(ev(t, false, 4, 0x200, 11, true, 480), ev(t, false, 4, 0x200, 11, true, 480), ev(t, true, 5, 0x800, 1, false, 160))
	select {
	case d := <-s.Digits():
		if d != '1' {
			t.Fatalf("first digit %q, want 1 (the # came before the session)", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the key pressed after the start was not delivered")
	}
	if st := s.Stats(); st.PacketsDropped < 3 {
		t.Errorf("dropped %d packets, want the 3 queued before the start", st.PacketsDropped)
	}
}

// readRTP reads the packets arriving on c until none came for a while
// after want arrived (or 5 s passed) and returns them.
func readRTP(t *testing.T, c *net.UDPConn, want int) []rtp.Packet {
	t.Helper()
	var out []rtp.Packet
	buf := make([]byte, 1500)
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < want && time.Now().Before(deadline) {
		_ = c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			break
		}
		var p rtp.Packet
		if err := p.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// TestSessionSendsAtTheAnsweredPtime: an answer with a=ptime:30 gets
// 30 ms packets: 240 bytes, timestamps 240 apart; a DTMF event's packets
// go at the same interval.
func TestSessionSendsAtTheAnsweredPtime(t *testing.T) {
	peer, local := listenLoopback(t), listenLoopback(t)
	defer peer.Close()
	s, err := NewSession(t.Context(), Config{Conn: local, Remote: addrOf(peer), Codec: audio.PCMU, DTMFPayloadType: 101, Ptime: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Play(t.Context(), bytes.Repeat([]byte{0x7F}, 240*4)); err != nil {
		t.Fatal(err)
	}
	pkts := readRTP(t, peer, 4)
	if len(pkts) != 4 {
		t.Fatalf("%d packets for 120 ms of audio, want 4 of 30 ms", len(pkts))
	}
	for i, p := range pkts {
		if len(p.Payload) != 240 {
			t.Errorf("packet %d: %d bytes, want 240", i, len(p.Payload))
		}
		if i > 0 && p.Timestamp-pkts[i-1].Timestamp != 240 {
			t.Errorf("packet %d: timestamp step %d, want 240", i, p.Timestamp-pkts[i-1].Timestamp)
		}
	}
	if err := s.SendDTMF(t.Context(), '#', 60*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ev := readRTP(t, peer, 5) // 2 steps, 3 end packets
	if len(ev) != 5 {
		t.Fatalf("%d event packets, want 5", len(ev))
	}
	var e DTMFEvent
	if err := e.Unmarshal(ev[1].Payload); err != nil || e.Duration != 480 {
		t.Errorf("second event packet %+v %v, want duration 480 (two 30 ms steps)", e, err)
	}
}

// TestSessionHonoursTheAnsweredDirection: RFC 3264 §6.1, an answer
// that is sendonly or inactive takes no media, so nothing is sent (Play
// still takes its time); one that is recvonly or inactive sends none, so
// no silence timeout ends the call.
func TestSessionHonoursTheAnsweredDirection(t *testing.T) {
	for _, tc := range []struct {
		dir        string
		send, recv bool
	}{
		{"", true, true},
		{"sendrecv", true, true},
		{"sendonly", false, true},
		{"recvonly", true, false},
		{"inactive", false, false},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			peer, local := listenLoopback(t), listenLoopback(t)
			defer peer.Close()
			s, err := NewSession(t.Context(), Config{Conn: local, Remote: addrOf(peer), Codec: audio.PCMU, DTMFPayloadType: 101, Direction: tc.dir})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Play(t.Context(), bytes.Repeat([]byte{0x7F}, 160*3)); err != nil {
				t.Fatal(err)
			}
			if err := s.SendDTMF(t.Context(), '1', 40*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if sent := s.Stats().PacketsSent; (sent > 0) != tc.send {
				t.Errorf("%d packets sent, want sending %v", sent, tc.send)
			}
			if tc.send {
				if got := len(readRTP(t, peer, 3)); got != 3 {
					t.Errorf("peer got %d audio packets, want 3", got)
				}
			}
			if (s.watchdog != nil) != tc.recv {
				t.Errorf("silence watchdog armed %v, want %v", s.watchdog != nil, tc.recv)
			}
		})
	}
	if _, err := NewSession(t.Context(), Config{Conn: listenLoopback(t), Remote: netip.MustParseAddrPort("127.0.0.1:9"), Codec: audio.PCMU, Direction: "sideways"}); err == nil {
		t.Error("an unknown direction was taken")
	}
}

// refusingConn is a socket whose every send fails, as a send to a port
// that answered ICMP unreachable does.
type refusingConn struct{ *net.UDPConn }

func (refusingConn) WriteToUDPAddrPort([]byte, netip.AddrPort) (int, error) {
	return 0, errors.New("connection refused")
}

// TestSessionCountsSendErrors: a send the socket refuses is counted in
// SendErrors (verigate_rtp_packets_total{kind="send_error"}) and the
// session goes on, RTP being best effort.
func TestSessionCountsSendErrors(t *testing.T) {
	s, err := NewSession(t.Context(), Config{Conn: refusingConn{listenLoopback(t)}, Remote: netip.AddrPortFrom(loopback, 9), Codec: audio.PCMU})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const frames = 5
	if err := s.Play(t.Context(), make([]byte, frames*FrameSamples)); err != nil {
		t.Fatalf("play: %v", err)
	}
	if st := s.Stats(); st.SendErrors != frames || st.PacketsSent != frames {
		t.Fatalf("send errors %d, sent %d: want %d each", st.SendErrors, st.PacketsSent, frames)
	}
}
