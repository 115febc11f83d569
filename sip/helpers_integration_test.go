package sip_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/sip/media"
	"github.com/verigate/verigate/verify"
)

// reporter records the events a Caller reports, like verify.Service would.
type reporter struct {
	mu     sync.Mutex
	events map[string][]verify.Event
	change chan struct{}
}

func newReporter() *reporter {
	return &reporter{events: map[string][]verify.Event{}, change: make(chan struct{}, 1)}
}

func (r *reporter) Report(_ context.Context, id string, ev verify.Event) error {
	r.mu.Lock()
	r.events[id] = append(r.events[id], ev)
	r.mu.Unlock()
	select {
	case r.change <- struct{}{}:
	default:
	}
	return nil
}

// types returns the event types reported for id, in order.
func (r *reporter) types(id string) []verify.EventType {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ts []verify.EventType
	for _, ev := range r.events[id] {
		ts = append(ts, ev.Type)
	}
	return ts
}

func (r *reporter) all(id string) []verify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]verify.Event(nil), r.events[id]...)
}

// waitFor waits until id has an event of type t, and fails the test after d.
func (r *reporter) waitFor(t *testing.T, id string, want verify.EventType, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		for _, got := range r.types(id) {
			if got == want {
				return
			}
		}
		select {
		case <-r.change:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %s event for %s within %s; events: %v", want, id, d, r.types(id))
		}
	}
}

// tones speaks each prompt as a distinct tone, so a recording shows which
// prompts were played in which order.
type tones struct{ dur time.Duration }

// toneFreq gives each prompt its own frequency.
func toneFreq(id prompts.ID) float64 {
	h := 0
	for _, c := range id {
		h = h*31 + int(c)
	}
	return 300 + float64(h%30)*60
}

func (t tones) Audio(_ string, id prompts.ID, c audio.Codec) ([]byte, error) {
	n := int(t.dur.Seconds() * 8000)
	pcm := make([]int16, n)
	f := toneFreq(id)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*f*float64(i)/8000))
	}
	return c.Encode(nil, pcm), nil
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	if os.Getenv("VERIGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// portBlock hands each test its own RTP port ranges, so parallel packages
// and tests never share one. The blocks stay within 21000-29999: below the
// kernel's ephemeral ports (32768-60999), where a socket bound to port 0
// could take a port that an ended call's peer still sends RTP to, and clear
// of the other fixed ranges of the tests. They are handed out round: a run
// (with -count=N) needs more than the 45 blocks, and a block comes round
// again only long after the test that had it ended.
var portBlock = struct {
	sync.Mutex
	next int
}{next: rtpBlocksFirst}

const rtpBlocksFirst, rtpBlocksEnd, rtpBlockSize = 21000, 30000, 200

func rtpRange(t *testing.T) string {
	t.Helper()
	portBlock.Lock()
	defer portBlock.Unlock()
	lo := portBlock.next
	if portBlock.next += rtpBlockSize; portBlock.next+rtpBlockSize > rtpBlocksEnd {
		portBlock.next = rtpBlocksFirst
	}
	return fmt.Sprintf("%d-%d", lo, lo+rtpBlockSize-1)
}

// newCaller starts a gateway Caller on loopback with one trunk to addr,
// reporting to rep (nil: the caller of newCaller sets it).
func newCaller(t *testing.T, rep verify.Reporter, trunk sip.Trunk, o sip.Options) *sip.Caller {
	t.Helper()
	cfg := sip.Config{Listen: "127.0.0.1:0", RTPPorts: rtpRange(t), DefaultTrunk: trunk.Name, Trunks: []sip.Trunk{trunk}}
	if o.Audio == nil {
		o.Audio = tones{dur: 400 * time.Millisecond}
	}
	if o.Logger == nil {
		o.Logger = testLogger(t).With("side", "gateway")
	}
	if o.KeyTimeout == 0 {
		o.KeyTimeout = 2 * time.Second
	}
	c, err := sip.NewCaller(cfg, o)
	if err != nil {
		t.Fatalf("NewCaller: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if rep != nil {
		c.ReportTo(rep)
	}
	return c
}

// pressAfter is when a test phone presses its first key after answering:
// once the gateway's test prompts (400 ms tones) have played the greeting
// and the 250 ms pause and begun the prompt that asks for the key. Keys
// before that prompt do not count.
const pressAfter = 1200 * time.Millisecond

// askingPackets is how many RTP packets the gateway has sent when the
// prompt asking for a key has begun, with the 400 ms test prompts: 20 of
// the greeting, 13 of the pause, and a few of the prompt itself.
const askingPackets = 40

// newPhone starts a test phone on loopback; its finished calls arrive on the channel.
func newPhone(t *testing.T, cfg siptest.PhoneConfig) (*siptest.Phone, <-chan siptest.PhoneCall) {
	t.Helper()
	ended := make(chan siptest.PhoneCall, 4)
	cfg.Listen = "127.0.0.1:0"
	cfg.RTPPorts = rtpRange(t)
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t).With("side", "phone")
	}
	cfg.OnCallEnd = func(pc siptest.PhoneCall) { ended <- pc }
	p, err := siptest.NewPhone(cfg)
	if err != nil {
		t.Fatalf("NewPhone: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p, ended
}

func waitCall(t *testing.T, ended <-chan siptest.PhoneCall, d time.Duration) siptest.PhoneCall {
	t.Helper()
	select {
	case pc := <-ended:
		return pc
	case <-time.After(d):
		t.Fatalf("the phone's call did not end within %s", d)
	}
	return siptest.PhoneCall{}
}

func hasInOrder(got []verify.EventType, want ...verify.EventType) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// waitApproved waits for the call of verification v1 to complete and
// fails the test unless it was answered and approved by a key press, with
// exactly keys heard; why says what else the keys would show.
func waitApproved(t *testing.T, rep *reporter, keys, why string) {
	t.Helper()
	rep.waitFor(t, "v1", verify.EventCompleted, 30*time.Second)
	got := rep.types("v1")
	if !hasInOrder(got, verify.EventAnswered, verify.EventKeyPressed, verify.EventCallApproved, verify.EventCompleted) {
		t.Fatalf("events %v, want answered, key_pressed, call_approved, completed", got)
	}
	if heard := keysPressed(rep); heard != keys {
		t.Fatalf("keys %q, want %s (%s)", heard, keys, why)
	}
}

// waitIdle waits until caller has no active call and holds no RTP port:
// a call's goroutine removes itself just after reporting its last event,
// so a test that saw that event waits for the condition, bounded by d.
func waitIdle(t *testing.T, caller *sip.Caller, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for caller.ActiveCalls() != 0 || caller.RTPPortsInUse() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls still active, %d rtp ports held %s after the call ended", caller.ActiveCalls(), caller.RTPPortsInUse(), d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// barePhone is a phone made of sipgo alone whose media socket the test
// holds: it answers one call with an SDP answer naming that socket, and
// the test sends the RTP and in-dialog requests it wants, forged ones
// included, and reads what the gateway plays.
type barePhone struct {
	// addr is its SIP address (UDP) on loopback.
	addr   netip.AddrPort
	client *sipgo.Client
	// media is the RTP socket its answer names.
	media *net.UDPConn
	// dialogs delivers the answered call's dialog; offers the gateway's
	// RTP address read from its offer.
	dialogs chan *sipgo.DialogServerSession
	offers  chan netip.AddrPort
	// heard is closed when the gateway's first RTP packet arrives.
	heard chan struct{}
	// byeStatus answers the gateway's BYE; 0 is 200.
	byeStatus atomic.Int32
	// packets counts the gateway's RTP packets by payload size.
	mu      sync.Mutex
	packets map[int]int
	types   map[uint8]int // packets by payload type
}

// payloadTypes returns how many of the gateway's RTP packets had each
// payload type.
func (p *barePhone) payloadTypes() map[uint8]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[uint8]int, len(p.types))
	for k, v := range p.types {
		m[k] = v
	}
	return m
}

// sizes returns how many of the gateway's RTP packets had each payload
// size (the packet less its 12-byte header).
func (p *barePhone) sizes() map[int]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[int]int, len(p.packets))
	for k, v := range p.packets {
		m[k] = v
	}
	return m
}

// newBarePhone starts a bare phone; dtmfPT is the telephone-event payload
// type of its answer, -1 for none (a phone sending SIP INFO).
func newBarePhone(t *testing.T, dtmfPT int) *barePhone {
	t.Helper()
	return newBarePhoneAnswering(t, dtmfPT, nil)
}

// newBarePhoneAnswering is newBarePhone whose SDP answer passes through
// rewrite (nil: unchanged) before it is sent: a=sendonly, a=ptime:30, an
// answer without a common codec.
func newBarePhoneAnswering(t *testing.T, dtmfPT int, rewrite func(sdp string) string) *barePhone {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("bare-phone"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rtpConn.Close() })
	p := &barePhone{
		addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), client: client, media: rtpConn,
		dialogs: make(chan *sipgo.DialogServerSession, 1), offers: make(chan netip.AddrPort, 1),
		heard: make(chan struct{}), packets: map[int]int{}, types: map[uint8]int{},
	}
	go func() {
		buf := make([]byte, 1500)
		for first := true; ; first = false {
			n, _, err := rtpConn.ReadFrom(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.packets[n-12]++
			if n > 1 {
				p.types[buf[1]&0x7F]++
			}
			p.mu.Unlock()
			if first {
				close(p.heard)
			}
		}
	}()
	contact := sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: "phone", Host: "127.0.0.1", Port: int(p.addr.Port())}}
	dua := &sipgo.DialogUA{Client: client, ContactHDR: contact, RewriteContact: true}
	var current atomic.Pointer[sipgo.DialogServerSession]
	srv.OnInvite(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		d, err := dua.ReadInvite(req, tx)
		if err != nil {
			t.Errorf("ReadInvite: %v", err)
			return
		}
		current.Store(d)
		answer, neg, err := media.BuildAnswer(req.Body(), media.OfferParams{
			Addr: netip.MustParseAddr("127.0.0.1"), Port: rtpConn.LocalAddr().(*net.UDPAddr).Port, DTMFPayloadType: dtmfPT})
		if err != nil {
			t.Errorf("BuildAnswer: %v", err)
			return
		}
		if rewrite != nil {
			answer = []byte(rewrite(string(answer)))
		}
		if err := d.RespondSDP(answer); err != nil {
			t.Errorf("answer: %v", err)
			return
		}
		p.offers <- neg.Addr
		p.dialogs <- d
		<-d.Context().Done()
	})
	srv.OnAck(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if d := current.Load(); d != nil {
			_ = d.ReadAck(req, tx)
		}
	})
	srv.OnBye(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		code, reason := 200, "OK"
		if c := int(p.byeStatus.Load()); c != 0 {
			code, reason = c, "Refused by the test"
		}
		_ = tx.Respond(sipmsg.NewResponseFromRequest(req, code, reason, nil))
	})
	// Handlers first: sipgo's server reads its handler map unlocked.
	go srv.ServeUDP(pc)
	return p
}

// answered waits for the call to be answered and the gateway's prompt
// asking for a key to play, and returns the dialog and the gateway's
// RTP address.
func (p *barePhone) answered(t *testing.T) (*sipgo.DialogServerSession, netip.AddrPort) {
	t.Helper()
	var d *sipgo.DialogServerSession
	var gw netip.AddrPort
	select {
	case d = <-p.dialogs:
		gw = <-p.offers
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway's call did not arrive")
	}
	// Keys count once the prompt asking for them plays: wait until the
	// gateway has sent the greeting and the pause (counted in packets).
	deadline := time.After(10 * time.Second)
	for n := 0; n < askingPackets; {
		select {
		case <-deadline:
			t.Fatalf("the gateway sent %d rtp packets, want %d", n, askingPackets)
		case <-time.After(10 * time.Millisecond):
		}
		n = 0
		for _, c := range p.sizes() {
			n += c
		}
	}
	return d, gw
}

// newINFO returns an INFO in the dialog d (the phone's side) with body.
func newINFO(d *sipgo.DialogServerSession, contentType, body string) *sipmsg.Request {
	req := sipmsg.NewRequest(sipmsg.INFO, d.InviteRequest.Contact().Address)
	req.AppendHeader(sipmsg.NewHeader("Content-Type", contentType))
	req.SetBody([]byte(body))
	return req
}

// rtpStream builds the packets of one RTP stream (one SSRC): G.711
// silence frames and RFC 4733 keys as sipp sends them.
type rtpStream struct {
	ssrc uint32
	seq  uint16
	ts   uint32
}

func (s *rtpStream) packet(pt uint8, marker bool, payload []byte) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: s.seq, Timestamp: s.ts, SSRC: s.ssrc}, Payload: payload}
	s.seq++
	b, err := p.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// audio returns n frames of PCMU silence.
func (s *rtpStream) audio(n int) [][]byte {
	var out [][]byte
	for range n {
		out = append(out, s.packet(0, false, bytes.Repeat([]byte{0xFF}, 160)))
		s.ts += 160
	}
	return out
}

// key returns one RFC 4733 event on payload type 101: a first packet with
// the marker, two more, and three end packets sharing a sequence number.
func (s *rtpStream) key(k rune) [][]byte {
	ev, ok := media.DigitEvent(k)
	if !ok {
		panic("not a key")
	}
	var out [][]byte
	for i := range 3 {
		out = append(out, s.packet(101, i == 0, media.DTMFEvent{Event: ev, Volume: 10, Duration: uint16(160 * (i + 1))}.Marshal(nil)))
	}
	for i := range 3 {
		if i > 0 {
			s.seq-- // retransmitted end packets reuse the number
		}
		out = append(out, s.packet(101, false, media.DTMFEvent{Event: ev, End: true, Volume: 10, Duration: 480}.Marshal(nil)))
	}
	s.ts += 480
	return out
}

// sendAll sends packets from conn to to, in order.
func sendAll(t *testing.T, conn interface {
	WriteToUDPAddrPort([]byte, netip.AddrPort) (int, error)
}, to netip.AddrPort, packets ...[][]byte) {
	t.Helper()
	for _, ps := range packets {
		for _, p := range ps {
			if _, err := conn.WriteToUDPAddrPort(p, to); err != nil {
				t.Fatalf("send rtp: %v", err)
			}
		}
	}
}
