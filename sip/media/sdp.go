package media

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/verigate/verigate/audio"
)

// DefaultDTMFPayloadType is the payload type Verigate offers for
// telephone-event. 101 is what nearly every PBX uses, and what sipp's
// RFC 4733 pcaps carry, so a peer that echoes the offer just works.
const DefaultDTMFPayloadType = 101

// DefaultPtime is the packetisation time Verigate offers, and sends
// unless the answer asks for another.
const DefaultPtime = 20 * time.Millisecond

// Errors returned by the SDP functions; callers branch on them to choose the
// SIP response (488 Not Acceptable Here for both) or the verification event.
var (
	// ErrSDP marks a body that is not a usable session description.
	ErrSDP = errors.New("malformed sdp")
	// ErrNoAudio marks a description without an active RTP/AVP audio stream
	// (none at all, port 0, or only SRTP).
	ErrNoAudio = errors.New("sdp has no active audio stream")
	// ErrNoCommonCodec marks an audio stream with neither PCMU nor PCMA.
	ErrNoCommonCodec = errors.New("sdp has no common codec")
)

// OfferParams describes the local end of a call for BuildOffer and BuildAnswer.
type OfferParams struct {
	// Addr is the address the peer sends RTP to: the configured public
	// address behind NAT, otherwise the address the RTP socket is bound to.
	Addr netip.Addr
	// Port is the local RTP port (from PortAllocator).
	Port int
	// SessionID and Version fill the o= line. A zero SessionID picks a random
	// one; re-offers in the same dialog keep the ID and raise Version.
	SessionID uint64
	Version   uint64
	// Username fills the o= line; "verigate" when empty.
	Username string
	// Codecs lists the codecs in order of preference; PCMU, PCMA when empty.
	Codecs []audio.Codec
	// DTMFPayloadType is the telephone-event payload type to offer:
	// 0 means DefaultDTMFPayloadType, negative means offer no telephone-event
	// (a trunk configured for SIP INFO or in-band DTMF).
	DTMFPayloadType int
}

// Answer is the negotiated view of the remote end, read from the peer's SDP.
type Answer struct {
	// Addr is where to send RTP (the c= address and m= port of the audio).
	Addr netip.AddrPort
	// Codec is the first codec of the peer's list that Verigate supports.
	Codec audio.Codec
	// DTMFPayloadType is the peer's telephone-event/8000 payload type, or 0
	// when the peer offered or accepted none.
	DTMFPayloadType int
	// Ptime is the peer's a=ptime, DefaultPtime when absent; MaxPtime its
	// a=maxptime, 0 when absent. RFC 3264 §6.1 has the offerer send at the
	// answer's ptime: Config.Ptime takes PacketTime(min of the two).
	Ptime    time.Duration
	MaxPtime time.Duration
	// Direction is sendrecv, sendonly, recvonly or inactive.
	Direction string
}

// Bounds of the packetisation times Verigate sends G.711 at. G.711 has no
// frames of its own, so any multiple of the 10 ms RFC 3551 §4.5 counts in
// works; below 10 ms the headers outweigh the audio, and above 60 ms the
// delay is felt and the packets grow past what PBXs commonly accept.
const (
	MinPtime = 10 * time.Millisecond
	MaxPtime = 60 * time.Millisecond
)

// PacketTime is the packetisation time Verigate sends at for an answer
// asking for ptime (0: DefaultPtime): rounded down to a multiple of 10 ms
// and kept within MinPtime and MaxPtime.
func PacketTime(ptime time.Duration) time.Duration {
	if ptime <= 0 {
		return DefaultPtime
	}
	ptime -= ptime % (10 * time.Millisecond)
	return min(max(ptime, MinPtime), MaxPtime)
}

// SendPtime is the packetisation time to send at for this answer: its
// ptime, no more than its maxptime, through PacketTime.
func (a Answer) SendPtime() time.Duration {
	p := a.Ptime
	if a.MaxPtime > 0 && (p <= 0 || a.MaxPtime < p) {
		p = a.MaxPtime
	}
	return PacketTime(p)
}

// BuildOffer returns an SDP offer (RFC 4566, RFC 3264) for one audio stream
// with the configured G.711 codecs, telephone-event 0-16, ptime 20, sendrecv.
func BuildOffer(p OfferParams) []byte {
	return buildSDP(p, p.codecs(), p.dtmfPT(), "sendrecv")
}

func (p OfferParams) codecs() []audio.Codec {
	if len(p.Codecs) == 0 {
		return []audio.Codec{audio.PCMU, audio.PCMA}
	}
	return p.Codecs
}

func (p OfferParams) dtmfPT() int {
	switch {
	case p.DTMFPayloadType == 0:
		return DefaultDTMFPayloadType
	case p.DTMFPayloadType < 0:
		return 0
	}
	return p.DTMFPayloadType
}

func buildSDP(p OfferParams, codecs []audio.Codec, dtmfPT int, dir string) []byte {
	sid := p.SessionID
	if sid == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		sid = binary.BigEndian.Uint64(b[:]) >> 2 // keep it positive in any signed parser
	}
	user := p.Username
	if user == "" {
		user = "verigate"
	}
	ipv := "IP4"
	if p.Addr.Is6() && !p.Addr.Is4In6() {
		ipv = "IP6"
	}
	addr := p.Addr.Unmap().String()
	var b bytes.Buffer
	fmt.Fprintf(&b, "v=0\r\no=%s %d %d IN %s %s\r\ns=verigate\r\nc=IN %s %s\r\nt=0 0\r\n",
		user, sid, p.Version, ipv, addr, ipv, addr)
	fmt.Fprintf(&b, "m=audio %d RTP/AVP", p.Port)
	for _, c := range codecs {
		fmt.Fprintf(&b, " %d", c.PayloadType())
	}
	if dtmfPT > 0 {
		fmt.Fprintf(&b, " %d", dtmfPT)
	}
	b.WriteString("\r\n")
	for _, c := range codecs {
		fmt.Fprintf(&b, "a=rtpmap:%d %s/8000\r\n", c.PayloadType(), c)
	}
	if dtmfPT > 0 {
		fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", dtmfPT, dtmfPT)
	}
	fmt.Fprintf(&b, "a=ptime:%d\r\na=%s\r\n", DefaultPtime.Milliseconds(), dir)
	return b.Bytes()
}

// ParseAnswer reads the peer's SDP answer to BuildOffer: the first active
// RTP/AVP audio stream, its address, the first codec of its list that
// Verigate supports, and its telephone-event payload type (honoured even
// when it differs from the 101 offered, as some PBXs renumber).
// Errors wrap ErrSDP, ErrNoAudio or ErrNoCommonCodec.
func ParseAnswer(b []byte) (Answer, error) {
	m, err := parseSDP(b)
	if err != nil {
		return Answer{}, err
	}
	return m.negotiate([]audio.Codec{audio.PCMU, audio.PCMA})
}

// BuildAnswer answers an SDP offer for the test phone side: it picks the
// first codec of the offer that local.Codecs allows, answers telephone-event
// with the offer's own payload type (RFC 3264 §6.1, and 101 for Verigate's
// offers, which is what sipp's pcaps need) and returns the answer body with
// the negotiated view of the offerer. Errors as ParseAnswer.
func BuildAnswer(offer []byte, local OfferParams) ([]byte, Answer, error) {
	m, err := parseSDP(offer)
	if err != nil {
		return nil, Answer{}, err
	}
	neg, err := m.negotiate(local.codecs())
	if err != nil {
		return nil, Answer{}, err
	}
	if local.DTMFPayloadType < 0 {
		neg.DTMFPayloadType = 0
	}
	dir := "sendrecv"
	switch neg.Direction {
	case "sendonly":
		dir = "recvonly"
	case "recvonly":
		dir = "sendonly"
	case "inactive":
		dir = "inactive"
	}
	return buildSDP(local, []audio.Codec{neg.Codec}, neg.DTMFPayloadType, dir), neg, nil
}

// sdpMedia is what Verigate needs of a session description: its first
// active audio stream, with the connection address that applies to it.
type sdpMedia struct {
	addr     netip.Addr
	port     int
	formats  []int
	rtpmap   map[int]string // payload type -> lower-case "encoding/rate"
	ptime    time.Duration
	maxptime time.Duration
	dir      string
}

const maxSDP = 64 << 10

func parseSDP(b []byte) (*sdpMedia, error) {
	if len(b) > maxSDP {
		return nil, fmt.Errorf("%d bytes: %w", len(b), ErrSDP)
	}
	var (
		sessAddr, mediaAddr netip.Addr
		sessDir             = "sendrecv"
		cur                 *sdpMedia // the audio stream being read, nil in session part or other media
		chosen              *sdpMedia
		sawVersion          bool
		inMedia             bool
	)
	finish := func() {
		if cur != nil && chosen == nil && cur.port != 0 {
			if mediaAddr.IsValid() {
				cur.addr = mediaAddr
			}
			chosen = cur
		}
		cur = nil
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return nil, fmt.Errorf("line %q: %w", trunc(line), ErrSDP)
		}
		val := line[2:]
		switch line[0] {
		case 'v':
			if val != "0" {
				return nil, fmt.Errorf("version %q: %w", trunc(val), ErrSDP)
			}
			sawVersion = true
		case 'c':
			a, err := parseConnection(val)
			if err != nil {
				return nil, err
			}
			if inMedia {
				mediaAddr = a
			} else {
				sessAddr = a
			}
		case 'm':
			finish()
			inMedia = true
			mediaAddr = netip.Addr{}
			m, err := parseMediaLine(val)
			if err != nil {
				return nil, err
			}
			if m != nil {
				m.addr = sessAddr
				m.dir = sessDir
				cur = m
			}
		case 'a':
			name, arg, _ := strings.Cut(val, ":")
			switch name {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				if cur != nil {
					cur.dir = name
				} else if !inMedia {
					sessDir = name
				}
			case "rtpmap":
				if cur == nil {
					continue
				}
				ptS, enc, ok := strings.Cut(arg, " ")
				pt, err := strconv.Atoi(ptS)
				if !ok || err != nil || pt < 0 || pt > 127 {
					return nil, fmt.Errorf("rtpmap %q: %w", trunc(arg), ErrSDP)
				}
				cur.rtpmap[pt] = strings.ToLower(strings.TrimSpace(enc))
			case "ptime", "maxptime":
				if cur == nil {
					continue
				}
				ms, err := strconv.Atoi(strings.TrimSpace(arg))
				if err != nil || ms <= 0 || ms > 1000 {
					return nil, fmt.Errorf("%s %q: %w", name, trunc(arg), ErrSDP)
				}
				if name == "ptime" {
					cur.ptime = time.Duration(ms) * time.Millisecond
				} else {
					cur.maxptime = time.Duration(ms) * time.Millisecond
				}
			}
		}
	}
	finish()
	if !sawVersion {
		return nil, fmt.Errorf("no v= line: %w", ErrSDP)
	}
	if chosen == nil {
		return nil, ErrNoAudio
	}
	if !chosen.addr.IsValid() {
		return nil, fmt.Errorf("audio stream without c= address: %w", ErrSDP)
	}
	return chosen, nil
}

// parseConnection reads "IN IP4 192.0.2.1" (a multicast TTL suffix is
// tolerated and ignored; host names are not resolved).
func parseConnection(v string) (netip.Addr, error) {
	f := strings.Fields(v)
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return netip.Addr{}, fmt.Errorf("connection %q: %w", trunc(v), ErrSDP)
	}
	host, _, _ := strings.Cut(f[2], "/")
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || (f[1] == "IP4") != a.Is4() {
		return netip.Addr{}, fmt.Errorf("connection address %q: %w", trunc(f[2]), ErrSDP)
	}
	return a, nil
}

// parseMediaLine reads "audio 49170 RTP/AVP 0 8 101". It returns nil for a
// stream Verigate does not use (video, SRTP, a second port count).
func parseMediaLine(v string) (*sdpMedia, error) {
	f := strings.Fields(v)
	if len(f) < 4 {
		return nil, fmt.Errorf("media %q: %w", trunc(v), ErrSDP)
	}
	portS, _, _ := strings.Cut(f[1], "/")
	port, err := strconv.Atoi(portS)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("media port %q: %w", trunc(f[1]), ErrSDP)
	}
	if f[0] != "audio" || (f[2] != "RTP/AVP" && f[2] != "RTP/AVPF") {
		return nil, nil
	}
	m := &sdpMedia{port: port, rtpmap: map[int]string{}, ptime: DefaultPtime}
	for _, s := range f[3:] {
		pt, err := strconv.Atoi(s)
		if err != nil || pt < 0 || pt > 127 {
			return nil, fmt.Errorf("payload type %q: %w", trunc(s), ErrSDP)
		}
		m.formats = append(m.formats, pt)
	}
	return m, nil
}

// negotiate picks the first of the stream's formats that is an allowed
// G.711 codec, and the telephone-event/8000 format if any.
func (m *sdpMedia) negotiate(allowed []audio.Codec) (Answer, error) {
	a := Answer{Addr: netip.AddrPortFrom(m.addr, uint16(m.port)), Ptime: m.ptime, MaxPtime: m.maxptime, Direction: m.dir}
	found := false
	for _, pt := range m.formats {
		enc, mapped := m.rtpmap[pt]
		if !found && (pt == int(audio.PCMU) || pt == int(audio.PCMA)) {
			c := audio.Codec(pt)
			// A static type re-mapped to something else is not G.711.
			if mapped && enc != strings.ToLower(c.String())+"/8000" && enc != strings.ToLower(c.String())+"/8000/1" {
				continue
			}
			for _, al := range allowed {
				if al == c {
					a.Codec, found = c, true
					break
				}
			}
			continue
		}
		if a.DTMFPayloadType == 0 && pt >= 96 && mapped && enc == "telephone-event/8000" {
			a.DTMFPayloadType = pt
		}
	}
	if !found {
		return Answer{}, ErrNoCommonCodec
	}
	return a, nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
