package sip

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/internal/rtptest"
)

// raw builds a packet from a hex RTP header and event (spaces ignored) and
// pads audio packets (payload type 0) with a 20 ms µ-law silence payload.
func raw(t testing.TB, h string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	if b[1]&0x7F == 0 {
		b = append(b, bytes.Repeat([]byte{0xFF}, FrameSamples)...)
	}
	return b
}

// sippPound is the RFC 4733 traffic of sipp's dtmf_2833_pound.pcap, byte
// for byte: event 11 starting with duration 0, steps of 320, and three end
// packets that share sequence number 0x20fb.
var sippPound = []string{
	"80e5 20f4 000169e0 0e05384e 0b0a0000",
	"8065 20f5 000169e0 0e05384e 0b0a0140",
	"8065 20f6 000169e0 0e05384e 0b0a0280",
	"8065 20f7 000169e0 0e05384e 0b0a03c0",
	"8065 20f8 000169e0 0e05384e 0b0a0500",
	"8065 20f9 000169e0 0e05384e 0b0a0640",
	"8065 20fa 000169e0 0e05384e 0b0a0780",
	"8065 20fb 000169e0 0e05384e 0b8a08c0",
	"8065 20fb 000169e0 0e05384e 0b8a08c0",
	"8065 20fb 000169e0 0e05384e 0b8a08c0",
}

// baresipOneOne is baresip's way of pressing '1' twice: the event starts at
// duration 160 with the marker, ends with a single end packet, and both
// events take their sequence numbers from the audio stream around them.
var baresipOneOne = []string{
	"8000 0010 00003e80 1a2b3c4d",
	"8000 0011 00003f20 1a2b3c4d",
	"80e5 0012 00003fc0 1a2b3c4d 010a00a0",
	"8065 0013 00003fc0 1a2b3c4d 010a0140",
	"8065 0014 00003fc0 1a2b3c4d 018a01e0",
	"8000 0015 00004160 1a2b3c4d",
	"80e5 0016 00004200 1a2b3c4d 010a00a0",
	"8065 0017 00004200 1a2b3c4d 018a0140",
	"8000 0018 000042a0 1a2b3c4d",
}

// readDigits runs packets through an RFC4733Reader the way MediaSession
// does: telephone-event by payload type, everything else ignored.
func readDigits(t *testing.T, pkts [][]byte, pt uint8) string {
	t.Helper()
	var r RFC4733Reader
	var got []rune
	for i, b := range pkts {
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if p.PayloadType != pt {
			continue
		}
		d, ok, err := r.Read(p.Timestamp, p.Payload)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if ok {
			got = append(got, d)
		}
	}
	return string(got)
}

func rawAll(t testing.TB, hs []string) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = raw(t, h)
	}
	return out
}

func TestRFC4733EventPayload(t *testing.T) {
	for _, tc := range []struct {
		hex  string
		want DTMFEvent
		err  bool
	}{
		{hex: "0b0a0000", want: DTMFEvent{Event: 11, Volume: 10}},
		{hex: "0b8a08c0", want: DTMFEvent{Event: 11, End: true, Volume: 10, Duration: 2240}},
		{hex: "00bf ffff", want: DTMFEvent{Event: 0, End: true, Volume: 63, Duration: 0xFFFF}},
		{hex: "1000 00a0", want: DTMFEvent{Event: 16, Duration: 160}},
		{hex: "0b0a0000 0b0a0000", want: DTMFEvent{Event: 11, Volume: 10}}, // redundant blocks: first wins
		{hex: "110a0000", err: true},                                       // event 17 is not DTMF
		{hex: "0b0a00", err: true},                                         // short
		{hex: "", err: true},
	} {
		b, _ := hex.DecodeString(strings.ReplaceAll(tc.hex, " ", ""))
		var e DTMFEvent
		err := e.Unmarshal(b)
		if tc.err {
			if !errors.Is(err, ErrDTMFPayload) {
				t.Errorf("%s: err %v, want ErrDTMFPayload", tc.hex, err)
			}
			continue
		}
		if err != nil || e != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.hex, e, err, tc.want)
		}
		if m := e.Marshal(nil); !bytes.Equal(m, b[:4]) {
			t.Errorf("%s: marshals to %x", tc.hex, m)
		}
	}
	for ev, key := range "0123456789*#ABCD" {
		d, ok := EventDigit(uint8(ev))
		back, ok2 := DigitEvent(key)
		if !ok || !ok2 || d != key || back != uint8(ev) {
			t.Errorf("event %d <-> key %q broken", ev, key)
		}
	}
	if _, ok := EventDigit(16); ok {
		t.Error("flash must not be a digit")
	}
}

func TestRFC4733SippStyleOneDigit(t *testing.T) {
	if got := readDigits(t, rawAll(t, sippPound), 101); got != "#" {
		t.Fatalf("digits %q, want one #", got)
	}
}

func TestRFC4733BaresipStyleTwoPresses(t *testing.T) {
	if got := readDigits(t, rawAll(t, baresipOneOne), 101); got != "11" {
		t.Fatalf("digits %q, want 11 (two events, one digit each)", got)
	}
}

func TestRFC4733OnlyEndPacketsArrive(t *testing.T) {
	// The start and continuation packets were lost: the end still counts once.
	if got := readDigits(t, rawAll(t, sippPound[7:]), 101); got != "#" {
		t.Fatalf("digits %q, want one #", got)
	}
}

func TestRFC4733LateRetransmissionOfEarlierEvent(t *testing.T) {
	pkts := rawAll(t, baresipOneOne)
	// The end packet of the first event arrives again after the second event began.
	pkts = append(pkts, pkts[4], pkts[2])
	if got := readDigits(t, pkts, 101); got != "11" {
		t.Fatalf("digits %q, want 11", got)
	}
}

// TestRFC4733SippPcap reads sipp's own capture, as sipp's play_pcap_audio
// would send it, and must find exactly one '#'.
func TestRFC4733SippPcap(t *testing.T) {
	udp, err := rtptest.ReadPcapFile(rtptest.SippPoundPcap)
	if err != nil {
		t.Fatalf("sipp's RFC 4733 capture is needed: %v", err)
	}
	if len(udp) == 0 {
		t.Fatal("capture holds no UDP packets")
	}
	pkts := make([][]byte, len(udp))
	for i, u := range udp {
		pkts[i] = u.Payload
	}
	if got := readDigits(t, pkts, 101); got != "#" {
		t.Fatalf("digits %q from %d packets, want exactly one #", got, len(pkts))
	}
}

// TestMediaSessionReceivesSippPcapAndBaresip replays both senders' packets
// over loopback into a session, mixed with packets it must drop: a stray
// payload type 1 (as linphone sends) from the peer and a valid event from
// a stranger's address. The two captures carry different SSRCs: baresip's
// stream is taken once sipp's has been silent for ssrcSwitchAfter on the
// session's clock, as a PBX's new stream after a re-bridge would be.
func TestMediaSessionReceivesSippPcapAndBaresip(t *testing.T) {
	udp, err := rtptest.ReadPcapFile(rtptest.SippPoundPcap)
	if err != nil {
		t.Fatalf("sipp's RFC 4733 capture is needed: %v", err)
	}
	peer, stranger, local := listenLoopback(t), listenLoopback(t), listenLoopback(t)
	defer peer.Close()
	defer stranger.Close()
	clk := &fakeClock{}
	clk.Set(0)
	s, err := NewMediaSession(t.Context(), MediaConfig{Conn: local, Remote: addrOf(peer), Codec: audio.PCMU, DTMFPayloadType: 101, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	to := addrOf(local)
	send := func(c interface {
		WriteToUDPAddrPort([]byte, netip.AddrPort) (int, error)
	}, b []byte) {
		if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
			t.Fatal(err)
		}
	}
	send(stranger, raw(t, "80e5 0001 00000100 99999999 050a00a0")) // '5' from a stranger
	send(peer, raw(t, "8001 0002 00000200 99999999 00000000"))     // payload type 1
	for _, u := range udp {
		send(peer, u.Payload)
	}
	waitReceived(t, s, uint64(len(udp)))
	clk.Set(ssrcSwitchAfter)
	for _, p := range rawAll(t, baresipOneOne) {
		send(peer, p)
	}
	var got []rune
	deadline := time.After(5 * time.Second)
	for len(got) < 3 {
		select {
		case d := <-s.Digits():
			got = append(got, d)
		case <-deadline:
			t.Fatalf("digits %q, want #11", string(got))
		}
	}
	// Wait until the peer's packets were all accepted: the socket reads in
	// send order, so the two bad packets sent first were handled before.
	// (Not received+dropped: a stray packet from an earlier user of this
	// ephemeral port is dropped too and would end the wait early.)
	want := uint64(len(udp) + len(baresipOneOne))
	for st := s.Stats(); st.PacketsReceived < want; st = s.Stats() {
		select {
		case <-deadline:
			t.Fatalf("only %d of %d packets accepted", st.PacketsReceived, want)
		case <-time.After(time.Millisecond):
		}
	}
	_ = s.Close()
	select {
	case d := <-s.Digits():
		t.Fatalf("extra digit %q", d)
	default:
	}
	if string(got) != "#11" {
		t.Fatalf("digits %q, want #11", string(got))
	}
	st := s.Stats()
	if st.PacketsDropped < 2 {
		t.Errorf("dropped %d packets, want at least 2 (stranger, payload type 1)", st.PacketsDropped)
	}
	if st.PacketsReceived != want {
		t.Errorf("received %d packets, want %d", st.PacketsReceived, want)
	}
}

func FuzzRFC4733(f *testing.F) {
	for _, h := range append(append([]string{}, sippPound...), baresipOneOne...) {
		b, _ := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			return
		}
		var r RFC4733Reader
		d, ok, err := r.Read(p.Timestamp, p.Payload)
		if err != nil {
			if ok || !errors.Is(err, ErrDTMFPayload) {
				t.Fatalf("error %v with ok=%v", err, ok)
			}
			return
		}
		if ok && !strings.ContainsRune(dtmfKeys, d) {
			t.Fatalf("digit %q is not a key", d)
		}
		// The same event again is never a second digit.
		if _, again, _ := r.Read(p.Timestamp, p.Payload); again {
			t.Fatal("same event delivered twice")
		}
		var e DTMFEvent
		if e.Unmarshal(p.Payload) == nil {
			var e2 DTMFEvent
			if err := e2.Unmarshal(e.Marshal(nil)); err != nil || e2 != e {
				t.Fatalf("round trip %+v -> %+v %v", e, e2, err)
			}
		}
	})
}
