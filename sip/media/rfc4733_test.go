package media

import (
	"bytes"
	"encoding/binary"
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

// readDigits runs packets through an RFC4733Reader the way Session
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

// TestSessionReceivesSippPcapAndBaresip replays both senders' packets
// over loopback into a session, mixed with packets it must drop: a stray
// payload type 1 (as linphone sends) from the peer and a valid event from
// a stranger's address. The two captures carry different SSRCs: baresip's
// stream is taken once sipp's has been silent for ssrcSwitchAfter on the
// session's clock, as a PBX's new stream after a re-bridge would be.
func TestSessionReceivesSippPcapAndBaresip(t *testing.T) {
	udp, err := rtptest.ReadPcapFile(rtptest.SippPoundPcap)
	if err != nil {
		t.Fatalf("sipp's RFC 4733 capture is needed: %v", err)
	}
	peer, stranger, local := listenLoopback(t), listenLoopback(t), listenLoopback(t)
	defer peer.Close()
	defer stranger.Close()
	clk := &fakeClock{}
	clk.Set(0)
	s, err := NewSession(t.Context(), Config{Conn: local, Remote: addrOf(peer), Codec: audio.PCMU, DTMFPayloadType: 101, Now: clk.Now})
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

// ev builds one telephone-event packet (payload type 101, SSRC 0x0e05384e)
// byte by byte: marker, sequence number, timestamp, event, E bit, duration.
func ev(t testing.TB, marker bool, seq uint16, ts uint32, event uint8, end bool, dur uint16) []byte {
	t.Helper()
	b := []byte{0x80, 101, byte(seq >> 8), byte(seq), byte(ts >> 24), byte(ts >> 16), byte(ts >> 8), byte(ts),
		0x0e, 0x05, 0x38, 0x4e, event, 10, byte(dur >> 8), byte(dur)}
	if marker {
		b[1] |= 0x80
	}
	if end {
		b[13] |= 0x80
	}
	return b
}

// heldKey is one key held for segments×0xFFFF timestamp units and more, as
// RFC 4733 §2.5.1.3 sends it: each segment's packets carry the segment's
// start timestamp and a duration growing by 160; a segment that reaches
// the largest duration the field can carry (65440, the last multiple of
// 160) ends without the E bit, its last packet sent three times
// (§2.5.1.4), and the next starts at its timestamp plus that duration
// without the marker bit. The last segment ends with three E packets.
func heldKey(t testing.TB, seq *uint16, ts uint32, event uint8, segments int) (pkts [][]byte, next uint32) {
	const segMax = 65440
	for s := range segments + 1 {
		last := s == segments
		for d := uint16(160); ; d += 160 {
			final := last && d == 800 || !last && d == segMax
			n := 1
			if final {
				n = 3
			}
			for range n {
				pkts = append(pkts, ev(t, s == 0 && d == 160, *seq, ts, event, final && last, d))
			}
			*seq++
			if final {
				break
			}
		}
		if !last {
			ts += segMax
		}
	}
	return pkts, ts + 800 + 1600
}

// readPackets runs packets through one RFC4733Reader.
func readPackets(t *testing.T, pkts [][]byte) string {
	t.Helper()
	return readDigits(t, pkts, 101)
}

// TestRFC4733LongEventSegments: RFC 4733 §2.5.1.3. A held '0' sent as
// three segments followed by '#' is the fraud report "0#", not "00#".
func TestRFC4733LongEventSegments(t *testing.T) {
	seq := uint16(100)
	pkts, next := heldKey(t, &seq, 0xFFFF0000, 0, 2) // the timestamp wraps on the way
	pound, _ := heldKey(t, &seq, next, 11, 0)
	if got := readPackets(t, append(pkts, pound...)); got != "0#" {
		t.Fatalf("digits %q, want 0# (one key per event, however many segments)", got)
	}
}

// TestRFC4733LongEventSegmentLastPacketLost: the segment's last packets
// (all three sends) were lost; the next segment still continues the event
// because it starts where the event had reached, within a few packets.
func TestRFC4733LongEventSegmentLastPacketLost(t *testing.T) {
	seq := uint16(1)
	pkts, _ := heldKey(t, &seq, 5000, 0, 1)
	var kept [][]byte
	for _, p := range pkts {
		var e DTMFEvent
		_ = e.Unmarshal(p[12:])
		if binary.BigEndian.Uint32(p[4:8]) == 5000 && e.Duration > 65440-480 {
			continue
		}
		kept = append(kept, p)
	}
	if got := readPackets(t, kept); got != "0" {
		t.Fatalf("digits %q, want 0", got)
	}
}

// TestRFC4733EndedEventIsNotContinued: §2.5.1.3 continues only an event
// that has not ended; once the E bit was seen, a packet at the event's
// timestamp plus its duration is a new press of the key.
func TestRFC4733EndedEventIsNotContinued(t *testing.T) {
	pkts := [][]byte{
		ev(t, true, 1, 8000, 5, false, 160),
		ev(t, false, 2, 8000, 5, true, 320),
		ev(t, true, 3, 8320, 5, false, 160),
		ev(t, false, 4, 8320, 5, true, 320),
	}
	if got := readPackets(t, pkts); got != "55" {
		t.Fatalf("digits %q, want 55", got)
	}
}

// TestRFC4733OtherEventEndsTheHeldOne: a new event (another timestamp)
// ends the one before it, so the earlier key cannot be continued later.
func TestRFC4733OtherEventEndsTheHeldOne(t *testing.T) {
	pkts := [][]byte{
		ev(t, true, 1, 8000, 5, false, 160), // '5', end packets lost
		ev(t, true, 2, 8160, 1, false, 160), // '1' at once
		ev(t, true, 3, 8160+160, 5, false, 160),
	}
	if got := readPackets(t, pkts); got != "515" {
		t.Fatalf("digits %q, want 515", got)
	}
}

// TestRFC4733EndRetransmissions: §2.5.1.4, the final packet sent three
// times (with one or with three sequence numbers) is one key.
func TestRFC4733EndRetransmissions(t *testing.T) {
	for _, seqs := range [][3]uint16{{7, 7, 7}, {7, 8, 9}} {
		pkts := [][]byte{ev(t, true, 6, 1000, 11, false, 160)}
		for _, s := range seqs {
			pkts = append(pkts, ev(t, false, s, 1000, 11, true, 320))
		}
		if got := readPackets(t, pkts); got != "#" {
			t.Fatalf("seqs %v: digits %q, want #", seqs, got)
		}
	}
}

// TestRFC4733MarkerBit: §2.5.1.2 sets the marker on an event's first
// packet, but the key must not depend on it: an event whose marked packet
// was lost counts once, and a marked packet repeated counts once.
func TestRFC4733MarkerBit(t *testing.T) {
	lost := [][]byte{ev(t, false, 2, 1000, 3, false, 320), ev(t, false, 3, 1000, 3, true, 480)}
	repeated := [][]byte{ev(t, true, 1, 1000, 3, false, 160), ev(t, true, 1, 1000, 3, false, 160), ev(t, false, 2, 1000, 3, true, 320)}
	for name, pkts := range map[string][][]byte{"first packet lost": lost, "first packet repeated": repeated} {
		if got := readPackets(t, pkts); got != "3" {
			t.Errorf("%s: digits %q, want 3", name, got)
		}
	}
}

// TestRFC4733TimestampIdentifiesTheEvent: §2.5.1.2, every packet of an
// event carries its start timestamp; the same key with a new timestamp is
// a new event, and a reordered packet of an earlier event is not.
func TestRFC4733TimestampIdentifiesTheEvent(t *testing.T) {
	pkts := [][]byte{
		ev(t, true, 1, 1000, 0, false, 160),
		ev(t, false, 2, 1000, 0, true, 320),
		ev(t, true, 4, 3000, 0, false, 160),
		ev(t, false, 3, 1000, 0, true, 320), // late
		ev(t, false, 5, 3000, 0, true, 320),
	}
	if got := readPackets(t, pkts); got != "00" {
		t.Fatalf("digits %q, want 00", got)
	}
}

// TestRFC4733ShortEventIsNotSegmented: §2.5.1.3 segments only an event
// that outgrew the duration field; a short press whose end packets were
// lost, followed at once by the same key, is two keys.
func TestRFC4733ShortEventIsNotSegmented(t *testing.T) {
	pkts := [][]byte{
		ev(t, true, 1, 8000, 5, false, 160),
		ev(t, false, 2, 8000, 5, false, 320),
		ev(t, true, 3, 8000+320, 5, false, 160),
		ev(t, false, 4, 8000+320, 5, true, 320),
	}
	if got := readPackets(t, pkts); got != "55" {
		t.Fatalf("digits %q, want 55", got)
	}
}
