package media

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/verigate/verigate/audio"
)

// DefaultSilenceTimeout ends a call whose peer sent no RTP for this long.
const DefaultSilenceTimeout = 30 * time.Second

const (
	samplePeriod = time.Second / 8000
	rtpHeaderLen = 12
	maxRTPPacket = 1500
	// continuityTolerance: a Play starting this soon after the previous
	// frame slot continues the same talkspurt instead of starting a new one.
	continuityTolerance = 10 * time.Millisecond
	digitBuffer         = 32
	// ssrcSwitchAfter is how long the peer's stream must have been silent
	// before a new SSRC from its address takes over: PBXs start a new
	// stream when they re-bridge a call (and early media may leave another
	// stream's packets queued), while a packet of another SSRC amid the
	// running stream can only be forged.
	ssrcSwitchAfter = time.Second
)

// ErrSessionClosed is returned by Play, Silence and SendDTMF once the
// session has been closed (by Close or by its context).
var ErrSessionClosed = errors.New("media session closed")

// UDPConn is the socket a Session sends and receives on. *net.UDPConn
// and *PortConn satisfy it; tests may pass a fake.
type UDPConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// Config configures one Session.
type Config struct {
	// Conn is the RTP socket, usually from PortAllocator.Listen. The session
	// owns it once NewSession succeeds and closes it (returning the
	// port); if NewSession fails the caller still owns it.
	Conn UDPConn
	// Remote is where to send RTP: Answer.Addr from the peer's SDP.
	Remote netip.AddrPort
	// Codec is the negotiated G.711 codec (Answer.Codec).
	Codec audio.Codec
	// DTMFPayloadType is the negotiated telephone-event payload type
	// (Answer.DTMFPayloadType); 0 means none was negotiated. Events are
	// sent with it.
	DTMFPayloadType int
	// LocalDTMFPayloadType is the telephone-event payload type of this
	// end's own SDP. RFC 3264 §6.1 has each side send with the numbers the
	// other declared, so a PBX that answers 96 to an offer of 101 may still
	// send 101: events are accepted with either number. 0 means
	// DefaultDTMFPayloadType, what Verigate's offers declare; it is ignored
	// when DTMFPayloadType is 0.
	LocalDTMFPayloadType int
	// Symmetric latches the peer to the source address of the first valid
	// packet from Remote's IP address or one of PeerAddrs, on any port
	// (symmetric RTP, RFC 4961, for peers behind NAT): packets are then
	// sent there and accepted only from there. Without it packets are
	// accepted only from Remote. Either way the SSRC of the first packet
	// accepted is the only one taken while that stream runs.
	Symmetric bool
	// PeerAddrs are the addresses besides Remote's that Symmetric may latch
	// to: the peer's signalling addresses (a phone behind NAT sends SIP
	// and RTP from one public address while its SDP names a private one).
	// A packet from elsewhere is never latched to, so a stranger who sends
	// to the port first does not take the call's media.
	PeerAddrs []netip.Addr
	// SilenceTimeout fires Timeout() after this long without an accepted
	// RTP packet. 0 means DefaultSilenceTimeout; negative disables it.
	SilenceTimeout time.Duration
	// OnAudio, when set, is given the RTP timestamp and payload (in Codec)
	// of each audio packet accepted from the peer, on the session's receive
	// goroutine and never after Close returns; it must not keep payload.
	// The test phone records what it hears through it (siptest.Recorder).
	OnAudio func(timestamp uint32, payload []byte)
	// Ptime is the packetisation time the answer asked for (Answer.Ptime,
	// limited by Answer.MaxPtime); frames are sent at PacketTime(Ptime).
	// 0 means DefaultPtime.
	Ptime time.Duration
	// Direction is the answer's direction attribute (Answer.Direction), as
	// RFC 3264 §6.1 reads it from the answerer's side: "sendonly" and
	// "inactive" mean the peer takes no media, so nothing is sent (Play,
	// Silence and SendDTMF still take their time, so the call's script
	// runs as it would); "recvonly" and "inactive" mean the peer sends
	// none, so no silence timeout fires. "" is "sendrecv".
	Direction string
	// DTMF is where key presses come from; "" means DTMFAuto.
	DTMF DTMFMode
	// Now is the clock; time.Now when nil. Tests inject it.
	Now func() time.Time
	// Logger receives warnings; nothing is logged when nil.
	Logger *slog.Logger
}

// Session is the RTP media of one call: a paced G.711 sender and a
// receiver that delivers DTMF and watches for silence. It owns one receive
// goroutine, stopped by Close or by the context given to NewSession.
type Session struct {
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	stopCtx func() bool
	done    chan struct{} // closed when the receive goroutine has returned
	once    sync.Once

	remoteMu sync.Mutex
	remote   netip.AddrPort
	latched  bool      // the first valid packet from the peer was accepted
	peerSSRC uint32    // the SSRC of the peer's stream once latched
	peerLast time.Time // when the last packet of peerSSRC was accepted
	warned   bool      // a stranger's packet was logged

	playMu sync.Mutex // one Play or Silence at a time

	frame        time.Duration // the packetisation time
	frameSamples int           // samples (G.711 bytes) per frame
	mute         bool          // the answer takes no media: send nothing

	sendMu       sync.Mutex
	seq          uint16
	ssrc         uint32
	sentAny      bool
	nextDeadline time.Time // the slot after the last frame sent
	nextTS       uint32    // timestamp of that slot
	dtmfActive   bool      // mutes audio frames while an event is sent
	playing      bool      // a Play or Silence is sending frames
	inj          *injection
	sendBuf      [maxRTPPacket]byte
	lateness     LatenessHistogram

	digits   chan rune
	srcMu    sync.Mutex
	locked   dtmfSource // DTMFAuto: the source that delivered first
	lastINFO uint32     // CSeq of the last INFO handled
	sawINFO  bool
	timeout  chan struct{}
	timedOut sync.Once
	watchdog *time.Timer
	lastRx   atomic.Int64 // unix nanoseconds of the last accepted packet
	// early is the RFC 4733 reader after the packets queued before the
	// session started; the receive goroutine takes it over.
	early RFC4733Reader

	sent, sendErrors, received, dropped, digitsIn, digitsLost atomic.Uint64
	// lost counts the sequence numbers skipped by the accepted packets.
	lost atomic.Uint64
	// bySource counts the keys taken, by dtmfSource.
	bySource [4]atomic.Uint64
}

// NewSession starts the media of a call on cfg.Conn. The session ends
// when ctx is done or Close is called; either closes the socket.
func NewSession(ctx context.Context, cfg Config) (*Session, error) {
	if cfg.Conn == nil {
		return nil, errors.New("media session: no socket")
	}
	// An unspecified address (old-style hold, c=0.0.0.0) or multicast is
	// no peer to send a call's audio to.
	if !cfg.Remote.IsValid() || cfg.Remote.Port() == 0 || cfg.Remote.Addr().IsUnspecified() || cfg.Remote.Addr().IsMulticast() {
		return nil, fmt.Errorf("media session: invalid remote address %v", cfg.Remote)
	}
	if !cfg.Codec.Valid() {
		return nil, fmt.Errorf("media session: unsupported codec %v", cfg.Codec)
	}
	for _, pt := range []int{cfg.DTMFPayloadType, cfg.LocalDTMFPayloadType} {
		if pt != 0 && (pt < 96 || pt > 127) {
			return nil, fmt.Errorf("media session: invalid telephone-event payload type %d", pt)
		}
	}
	if cfg.LocalDTMFPayloadType == 0 {
		cfg.LocalDTMFPayloadType = DefaultDTMFPayloadType
	}
	if cfg.SilenceTimeout == 0 {
		cfg.SilenceTimeout = DefaultSilenceTimeout
	}
	mode, err := ParseDTMFMode(string(cfg.DTMF))
	if err != nil {
		return nil, fmt.Errorf("media session: %w", err)
	}
	cfg.DTMF = mode
	var mute, deaf bool
	switch cfg.Direction {
	case "", "sendrecv":
	case "sendonly":
		mute = true
	case "recvonly":
		deaf = true
	case "inactive":
		mute, deaf = true, true
	default:
		return nil, fmt.Errorf("media session: direction %q", trunc(cfg.Direction))
	}
	if deaf {
		cfg.SilenceTimeout = -1
	}
	s := &Session{
		frame: PacketTime(cfg.Ptime), mute: mute,
		cfg:     cfg,
		now:     cfg.Now,
		log:     cfg.Logger,
		done:    make(chan struct{}),
		remote:  unmapPort(cfg.Remote),
		digits:  make(chan rune, digitBuffer),
		timeout: make(chan struct{}),
	}
	s.frameSamples = int(s.frame / samplePeriod)
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	// SSRC, first sequence number and first timestamp are random
	// (RFC 3550 §5.1, §8.1).
	var rnd [10]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("media session: random ssrc: %w", err)
	}
	s.ssrc = binary.BigEndian.Uint32(rnd[0:4])
	s.nextTS = binary.BigEndian.Uint32(rnd[4:8])
	s.seq = binary.BigEndian.Uint16(rnd[8:10])
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.lastRx.Store(s.now().UnixNano())
	if cfg.SilenceTimeout > 0 {
		s.watchdog = time.AfterFunc(cfg.SilenceTimeout, s.checkSilence)
	}
	// With ctx already over, AfterFunc runs its function at once, before
	// it returns and s.stopCtx is set: that path must not read stopCtx,
	// so it calls shutdown rather than Close.
	s.stopCtx = context.AfterFunc(s.ctx, func() { _ = s.shutdown() })
	// Before NewSession returns, so that nothing sent after it is
	// taken for early media.
	s.discardQueued(make([]byte, maxRTPPacket), &s.early)
	go s.receive()
	return s, nil
}

// Codec returns the negotiated codec; Play takes audio in it.
func (s *Session) Codec() audio.Codec { return s.cfg.Codec }

// LocalAddr returns the address of the RTP socket.
func (s *Session) LocalAddr() net.Addr { return s.cfg.Conn.LocalAddr() }

// Remote returns where RTP is sent: the negotiated address, or the latched
// source address once symmetric RTP has latched.
func (s *Session) Remote() netip.AddrPort {
	s.remoteMu.Lock()
	defer s.remoteMu.Unlock()
	return s.remote
}

// Digits delivers each key the peer pressed, once per key press, from the
// sources the DTMF mode allows (RFC 4733 events, SIP INFO handed over with
// HandleINFO, in-band tones). It holds up to 32 keys nobody has read yet;
// more are counted in Stats().DigitsDropped. It is never closed: select on
// it together with Done.
func (s *Session) Digits() <-chan rune { return s.digits }

// Timeout is closed when no RTP was accepted for SilenceTimeout.
func (s *Session) Timeout() <-chan struct{} { return s.timeout }

// Done is closed when the session has been closed.
func (s *Session) Done() <-chan struct{} { return s.ctx.Done() }

// Close stops the session: it closes the socket (returning its port) and
// waits for the receive goroutine, so the recorder is no longer written
// when Close returns. Calls in progress return ErrSessionClosed.
func (s *Session) Close() error {
	// The owner got s from NewSession, after stopCtx was set.
	s.stopCtx()
	return s.shutdown()
}

// shutdown is Close without unregistering the context's AfterFunc, which
// is what calls it when the context ends.
func (s *Session) shutdown() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		if s.watchdog != nil {
			s.watchdog.Stop()
		}
		err = s.cfg.Conn.Close()
		<-s.done
	})
	return err
}

// Stats returns a snapshot of the session's counters.
func (s *Session) Stats() Stats {
	st := Stats{
		PacketsSent:     s.sent.Load(),
		SendErrors:      s.sendErrors.Load(),
		PacketsReceived: s.received.Load(),
		PacketsDropped:  s.dropped.Load(),
		DigitsReceived:  s.digitsIn.Load(),
		DigitsDropped:   s.digitsLost.Load(),
		PacketsLost:     s.lost.Load(),
		DigitsRFC4733:   s.bySource[srcRFC4733].Load(),
		DigitsInfo:      s.bySource[srcInfo].Load(),
		DigitsInband:    s.bySource[srcInband].Load(),
	}
	s.sendMu.Lock()
	st.SendLateness = s.lateness
	s.sendMu.Unlock()
	return st
}

// Play sends G.711 audio in the session's codec in frames of the
// answered packetisation time (20 ms unless the answer asked otherwise),
// paced against absolute deadlines (start + n×ptime) so that timer jitter never
// accumulates, and returns when the last frame has been sent. A final
// partial frame is padded with silence. A Play that follows the previous
// one within a frame continues its talkspurt; otherwise it starts a new one
// with the marker bit set and a timestamp advanced by the wall-clock gap.
// It returns ctx.Err() or ErrSessionClosed when stopped early.
func (s *Session) Play(ctx context.Context, g711 []byte) error {
	return s.sendAudio(ctx, (len(g711)+s.frameSamples-1)/s.frameSamples, func(i int, dst []byte) {
		n := copy(dst, g711[min(i*s.frameSamples, len(g711)):])
		for j := n; j < s.frameSamples; j++ {
			dst[j] = s.cfg.Codec.Silence()
		}
	})
}

// Silence sends silence frames for d, keeping the stream continuous for
// peers that treat a pause in RTP as a dead call. Between prompts a caller
// can send silence this way, or simply nothing.
func (s *Session) Silence(ctx context.Context, d time.Duration) error {
	sil := s.cfg.Codec.Silence()
	return s.sendAudio(ctx, int((d+s.frame-1)/s.frame), func(_ int, dst []byte) {
		for j := range dst {
			dst[j] = sil
		}
	})
}

func (s *Session) sendAudio(ctx context.Context, frames int, fill func(i int, dst []byte)) (err error) {
	s.playMu.Lock()
	defer s.playMu.Unlock()
	if err := s.alive(ctx); err != nil {
		return err
	}
	if frames == 0 {
		return nil
	}
	s.sendMu.Lock()
	start, ts, marker := s.talkspurtLocked(s.now())
	s.playing = true
	s.sendMu.Unlock()
	defer func() {
		s.sendMu.Lock()
		s.playing = false
		if s.inj != nil { // stopped early: the tone was not (fully) sent
			close(s.inj.done)
			s.inj = nil
		}
		s.sendMu.Unlock()
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := 0; ; i++ {
		s.sendMu.Lock()
		more := i < frames || s.inj != nil
		s.sendMu.Unlock()
		if !more {
			return nil
		}
		deadline := start.Add(time.Duration(i) * s.frame)
		if err := s.waitUntil(ctx, timer, deadline); err != nil {
			return err
		}
		s.sendMu.Lock()
		if !s.dtmfActive {
			hdr := rtp.Header{Version: 2, Marker: marker, PayloadType: s.cfg.Codec.PayloadType(),
				SequenceNumber: s.seq, Timestamp: ts, SSRC: s.ssrc}
			payload := s.sendBuf[rtpHeaderLen : rtpHeaderLen+s.frameSamples]
			switch {
			case s.inj != nil:
				// An in-band key replaces the audio of this frame.
				n := copy(payload, s.inj.audio)
				for j := n; j < s.frameSamples; j++ {
					payload[j] = s.cfg.Codec.Silence()
				}
				if s.inj.audio = s.inj.audio[n:]; len(s.inj.audio) == 0 {
					s.inj.sent = true
					close(s.inj.done)
					s.inj = nil
				}
			case i < frames:
				fill(i, payload)
			default:
				for j := range payload {
					payload[j] = s.cfg.Codec.Silence()
				}
			}
			if err := s.writeLocked(hdr, payload, deadline); err != nil {
				s.sendMu.Unlock()
				return err
			}
			marker = false
		}
		s.advanceLocked(deadline, ts)
		s.sendMu.Unlock()
		ts += uint32(s.frameSamples)
	}
}

// talkspurtLocked decides where a new run of frames starts on the stream's
// timeline: right after the previous frame if that is due about now, else
// now, with the timestamp advanced by the silent gap and the marker set.
func (s *Session) talkspurtLocked(now time.Time) (start time.Time, ts uint32, marker bool) {
	if !s.sentAny {
		return now, s.nextTS, true
	}
	if !now.After(s.nextDeadline.Add(continuityTolerance)) {
		// The next slot is due (or still ahead, inside the previous frame).
		return s.nextDeadline, s.nextTS, false
	}
	gap := now.Sub(s.nextDeadline)
	return now, s.nextTS + uint32(gap/samplePeriod), true
}

// advanceLocked records that the slot at deadline (timestamp ts) is used.
func (s *Session) advanceLocked(deadline time.Time, ts uint32) {
	next := deadline.Add(s.frame)
	if !s.sentAny || next.After(s.nextDeadline) {
		s.nextDeadline = next
	}
	if !s.sentAny || int32(ts+uint32(s.frameSamples)-s.nextTS) > 0 {
		s.nextTS = ts + uint32(s.frameSamples)
	}
	s.sentAny = true
}

// writeLocked marshals hdr and the payload (already in sendBuf after the
// header) and sends it, recording how late it left.
func (s *Session) writeLocked(hdr rtp.Header, payload []byte, deadline time.Time) error {
	if _, err := hdr.MarshalTo(s.sendBuf[:rtpHeaderLen]); err != nil {
		return fmt.Errorf("marshal rtp: %w", err)
	}
	if s.mute {
		return nil
	}
	remote := s.Remote()
	s.lateness.Add(s.now().Sub(deadline))
	if _, err := s.cfg.Conn.WriteToUDPAddrPort(s.sendBuf[:rtpHeaderLen+len(payload)], remote); err != nil {
		if s.ctx.Err() != nil {
			return ErrSessionClosed
		}
		// ICMP unreachable from a peer that is not listening yet surfaces
		// here on Linux; RTP is best effort, so count it and go on.
		s.log.Debug("rtp send failed", "err", err)
		s.sendErrors.Add(1)
	}
	s.seq++
	s.sent.Add(1)
	return nil
}

func (s *Session) alive(ctx context.Context) error {
	if s.ctx.Err() != nil {
		return ErrSessionClosed
	}
	return ctx.Err()
}

func (s *Session) waitUntil(ctx context.Context, t *time.Timer, deadline time.Time) error {
	d := deadline.Sub(s.now())
	if d <= 0 {
		return s.alive(ctx)
	}
	t.Reset(d)
	select {
	case <-t.C:
		return s.alive(ctx)
	case <-ctx.Done():
		return s.alive(ctx)
	case <-s.ctx.Done():
		return ErrSessionClosed
	}
}

// SendDTMF sends one key as an RFC 4733 event on the negotiated
// telephone-event payload type: a first packet with the marker bit,
// continuation packets every frame (20 ms, or the answered ptime) with the growing duration, then three
// end packets with one sequence number and timestamp (as sipp does), all
// with the event's start timestamp. Audio frames of a concurrent Play are
// muted meanwhile. duration is rounded up to a frame, at least two.
func (s *Session) SendDTMF(ctx context.Context, digit rune, duration time.Duration) error {
	ev, ok := DigitEvent(digit)
	if !ok {
		return fmt.Errorf("send dtmf: %q is not a dtmf key", digit)
	}
	if s.cfg.DTMFPayloadType == 0 {
		return errors.New("send dtmf: no telephone-event payload type negotiated")
	}
	if err := s.alive(ctx); err != nil {
		return err
	}
	steps := max(int((duration+s.frame-1)/s.frame), 2)
	s.sendMu.Lock()
	if s.dtmfActive {
		s.sendMu.Unlock()
		return errors.New("send dtmf: another event is being sent")
	}
	s.dtmfActive = true
	var start time.Time
	var ts uint32
	if s.playing && s.sentAny {
		// A running stream: the event takes the next slot, however late
		// the stream's frames are running.
		start, ts = s.nextDeadline, s.nextTS
	} else {
		start, ts, _ = s.talkspurtLocked(s.now())
	}
	s.sendMu.Unlock()
	defer func() {
		s.sendMu.Lock()
		s.dtmfActive = false
		s.sendMu.Unlock()
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	pt := uint8(s.cfg.DTMFPayloadType)
	var endSeq uint16
	for i := range steps + 3 {
		deadline := start.Add(time.Duration(i) * s.frame)
		if err := s.waitUntil(ctx, timer, deadline); err != nil {
			return err
		}
		end := i >= steps
		dur := uint16(min((i+1)*s.frameSamples, 0xFFFF))
		if end {
			dur = uint16(min(steps*s.frameSamples, 0xFFFF))
		}
		s.sendMu.Lock()
		hdr := rtp.Header{Version: 2, Marker: i == 0, PayloadType: pt,
			SequenceNumber: s.seq, Timestamp: ts, SSRC: s.ssrc}
		if end {
			if i == steps {
				endSeq = s.seq
			} else {
				hdr.SequenceNumber = endSeq
				s.seq-- // retransmissions reuse the number: do not advance
			}
		}
		payload := DTMFEvent{Event: ev, End: end, Volume: 10, Duration: dur}.Marshal(s.sendBuf[rtpHeaderLen:rtpHeaderLen])
		err := s.writeLocked(hdr, payload, deadline)
		s.advanceLocked(deadline, ts+uint32(i*s.frameSamples))
		s.sendMu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// receive is the session's goroutine: it reads until the socket is closed.
func (s *Session) receive() {
	defer close(s.done)
	buf := make([]byte, maxRTPPacket)
	var (
		pkt  rtp.Packet
		dtmf RFC4733Reader
	)
	dtmf = s.early
	codecPT := s.cfg.Codec.PayloadType()
	dtmfPT := s.cfg.DTMFPayloadType
	var inband *InbandDetector
	var lin []int16
	var keys []rune
	var seq lossCounter
	if s.cfg.DTMF == DTMFInband || s.cfg.DTMF == DTMFAuto && dtmfPT == 0 {
		inband = &InbandDetector{}
	}
	for {
		n, src, err := s.cfg.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("rtp read failed", "err", err)
			continue
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil || pkt.Version != 2 {
			s.dropped.Add(1)
			continue
		}
		pt := pkt.PayloadType
		isDTMF := dtmfPT != 0 && (int(pt) == dtmfPT || int(pt) == s.cfg.LocalDTMFPayloadType)
		now := s.now()
		// Packets from anyone but the peer's stream stop here, before any
		// detector hears them.
		if (pt != codecPT && !isDTMF) || !s.acceptFrom(src, pkt.SSRC, now) {
			s.dropped.Add(1)
			continue
		}
		s.received.Add(1)
		if n := seq.next(pkt.SequenceNumber); n > 0 {
			s.lost.Add(n)
		}
		s.lastRx.Store(now.UnixNano())
		if isDTMF {
			d, ok, err := dtmf.Read(pkt.Timestamp, pkt.Payload)
			if err != nil {
				s.dropped.Add(1)
				continue
			}
			if ok {
				s.deliver(srcRFC4733, d)
			}
			continue
		}
		if inband != nil {
			lin = s.cfg.Codec.Decode(lin[:0], pkt.Payload)
			keys = inband.Feed(keys[:0], lin)
			for _, k := range keys {
				s.deliver(srcInband, k)
			}
		}
		if s.cfg.OnAudio != nil {
			s.cfg.OnAudio(pkt.Timestamp, pkt.Payload)
		}
	}
}

// queuedWindow bounds how long discardQueued reads: what the socket holds
// comes out at once, and a read that finds nothing waits no longer.
const queuedWindow = 5 * time.Millisecond

// discardQueued reads and drops what the socket received before the
// session started: the RTP port is bound when the INVITE is sent, so early
// media (a 183's stream) waits in it, and a key pressed then must not be
// read as if pressed now. Telephone-events among it from the peer's
// addresses go through dtmf without a key being delivered, so the later
// packets of an event already in flight at the answer (continuations and
// end packets carry its timestamp) do not count either. A socket that
// cannot take a read deadline (a test's fake) is left as it is.
func (s *Session) discardQueued(buf []byte, dtmf *RFC4733Reader) {
	dl, ok := s.cfg.Conn.(interface{ SetReadDeadline(time.Time) error })
	if !ok || dl.SetReadDeadline(time.Now().Add(queuedWindow)) != nil {
		return
	}
	defer func() { _ = dl.SetReadDeadline(time.Time{}) }()
	var pkt rtp.Packet
	n, keys := 0, 0
	for {
		m, src, err := s.cfg.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		n++
		s.dropped.Add(1)
		if pkt.Unmarshal(buf[:m]) != nil || s.cfg.DTMFPayloadType == 0 || !s.latchable(src.Addr()) {
			continue
		}
		if pt := int(pkt.PayloadType); pt == s.cfg.DTMFPayloadType || pt == s.cfg.LocalDTMFPayloadType {
			if _, ok, _ := dtmf.Read(pkt.Timestamp, pkt.Payload); ok {
				keys++
			}
		}
	}
	if n > 0 {
		s.log.Info("rtp received before the answer discarded", "packets", n, "keys", keys)
	}
}

// deliver hands a key to Digits if the session's DTMF mode takes keys from
// src; in DTMFAuto the first source to deliver is the only one from then on.
func (s *Session) deliver(src dtmfSource, d rune) {
	s.srcMu.Lock()
	ok := false
	switch s.cfg.DTMF {
	case DTMFRFC4733:
		ok = src == srcRFC4733
	case DTMFInfo:
		ok = src == srcInfo
	case DTMFInband:
		ok = src == srcInband
	default:
		if s.locked == srcNone {
			s.locked = src
			s.log.Debug("dtmf source chosen", "source", src.String())
		}
		ok = s.locked == src
	}
	s.srcMu.Unlock()
	if !ok {
		return
	}
	s.bySource[src].Add(1)
	select {
	case s.digits <- d:
		s.digitsIn.Add(1)
	default:
		s.digitsLost.Add(1)
		s.log.Warn("dtmf digit dropped: nobody reads Digits()")
	}
}

// HandleINFO takes the key of a SIP INFO request of the call's dialog (its
// CSeq number and the key ParseINFO read from its body) and delivers it to
// Digits when the DTMF mode takes SIP INFO. A request whose CSeq is not
// above the last one handled is a duplicate and ignored: RFC 3261 §12.2.1.1
// makes CSeq grow within a dialog, so a second INFO for one key press can
// only be a repeat.
func (s *Session) HandleINFO(cseq uint32, digit rune) {
	s.srcMu.Lock()
	dup := s.sawINFO && int32(cseq-s.lastINFO) <= 0
	if !dup {
		s.lastINFO, s.sawINFO = cseq, true
	}
	s.srcMu.Unlock()
	if !dup && s.ctx.Err() == nil {
		s.deliver(srcInfo, digit)
	}
}

// SendInbandDTMF sends the tone of a key in the audio (for trunks that want
// in-band DTMF and for `verigate phone --dtmf inband`) followed by 60 ms of
// silence so that the same key can follow. While a Play or Silence is
// running (a phone keeps its stream going) the tone replaces its frames;
// otherwise it is played on its own. It returns when the tone has been sent.
func (s *Session) SendInbandDTMF(ctx context.Context, digit rune, duration time.Duration) error {
	tone := DTMFTone(digit, max(duration, 50*time.Millisecond), -8)
	if tone == nil {
		return fmt.Errorf("send dtmf: %q is not a dtmf key", digit)
	}
	audio := s.cfg.Codec.Encode(nil, append(tone, make([]int16, 480)...))
	if err := s.alive(ctx); err != nil {
		return err
	}
	s.sendMu.Lock()
	if !s.playing {
		s.sendMu.Unlock()
		return s.Play(ctx, audio)
	}
	if s.inj != nil {
		s.sendMu.Unlock()
		return errors.New("send dtmf: another in-band key is being sent")
	}
	inj := &injection{audio: audio, done: make(chan struct{})}
	s.inj = inj
	s.sendMu.Unlock()
	select {
	case <-inj.done:
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.inj == inj { // given up before it was sent
		s.inj = nil
	}
	if !inj.sent {
		if err := s.alive(ctx); err != nil {
			return err
		}
		return errors.New("send dtmf: playback stopped before the tone was sent")
	}
	return nil
}

// injection is an in-band tone waiting to replace the frames of the
// running playback.
type injection struct {
	audio []byte
	done  chan struct{} // closed when sent or abandoned
	sent  bool
}

// acceptFrom reports whether a packet from src with ssrc belongs to the
// peer's stream. The first one accepted latches the stream: under
// symmetric RTP its source address (which must be on Remote's IP or one
// of PeerAddrs), always its SSRC. After that only that address is taken,
// and another SSRC only once the latched one has been silent for
// ssrcSwitchAfter.
func (s *Session) acceptFrom(src netip.AddrPort, ssrc uint32, now time.Time) bool {
	src = unmapPort(src)
	s.remoteMu.Lock()
	defer s.remoteMu.Unlock()
	if !s.latched {
		if s.cfg.Symmetric && s.latchable(src.Addr()) {
			s.remote = src
		}
		if src != s.remote {
			s.stranger("rtp from a stranger dropped", src, ssrc)
			return false
		}
		s.latched, s.peerSSRC, s.peerLast = true, ssrc, now
		return true
	}
	if src != s.remote {
		s.stranger("rtp from a stranger dropped", src, ssrc)
		return false
	}
	if ssrc != s.peerSSRC {
		if now.Sub(s.peerLast) < ssrcSwitchAfter {
			s.stranger("rtp of another ssrc dropped", src, ssrc)
			return false
		}
		s.log.Info("rtp ssrc changed", "ssrc", ssrc, "previous", s.peerSSRC)
		s.peerSSRC = ssrc
	}
	s.peerLast = now
	return true
}

// latchable reports whether symmetric RTP may latch to a source on ip.
func (s *Session) latchable(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip == s.cfg.Remote.Addr().Unmap() || slices.ContainsFunc(s.cfg.PeerAddrs, func(a netip.Addr) bool { return a.Unmap() == ip })
}

// stranger logs the first packet of the session dropped for its source
// or SSRC; the rest are only counted (Stats().PacketsDropped), so a flood
// makes one line per call.
func (s *Session) stranger(msg string, src netip.AddrPort, ssrc uint32) {
	if !s.warned {
		s.warned = true
		s.log.Info(msg, "source", src.String(), "ssrc", ssrc)
	}
}

// checkSilence runs on the watchdog timer: it fires Timeout when the last
// accepted packet is SilenceTimeout old, else re-arms for the remainder.
func (s *Session) checkSilence() {
	if s.ctx.Err() != nil {
		return
	}
	idle := s.now().Sub(time.Unix(0, s.lastRx.Load()))
	if idle >= s.cfg.SilenceTimeout {
		s.timedOut.Do(func() { close(s.timeout) })
		return
	}
	s.watchdog.Reset(s.cfg.SilenceTimeout - idle)
}

func unmapPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
