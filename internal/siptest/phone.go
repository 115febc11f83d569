package siptest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/verigate/verigate/audio"
	vsip "github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/sip/media"
	"github.com/verigate/verigate/verify"
)

// Defaults for PhoneConfig.
const (
	DefaultPhoneRTPPorts = "40000-40999"
	// DefaultPhoneAfter is past the longest built-in greeting (4.4 s, tr)
	// and its pause: the gateway counts keys only from the prompt that asks
	// for them, as a person hears it and presses.
	DefaultPhoneAfter = 5 * time.Second
	DefaultKeyGap     = 500 * time.Millisecond
	// keyDuration is how long each key is held (RFC 4733 event, in-band
	// tone, or the Duration of a SIP INFO).
	keyDuration = 100 * time.Millisecond
)

// PhoneConfig configures a test phone.
type PhoneConfig struct {
	// Listen is where the phone takes calls, e.g. 127.0.0.1:5090.
	Listen string
	// TLSListen, with TLSConfig holding a certificate, also takes calls
	// over TLS there.
	TLSListen string
	TLSConfig *tls.Config
	// RTPPorts is its media port range; DefaultPhoneRTPPorts if empty.
	RTPPorts string
	// Ring is how long it rings (180) before answering.
	Ring time.Duration
	// Hold, when set, keeps every call ringing, after Ring, until it is
	// closed: a test orders what it does before the answer without
	// guessing how long that takes.
	Hold <-chan struct{}
	// Refuse, when set, is the final status the phone answers every INVITE
	// with once it has rung instead of answering it: 486 (busy), 603
	// (declined), 500 (a broken PBX), ... A phone that is never to answer
	// sets Ring past the caller's ring timeout instead.
	Refuse int
	// Registrar makes the phone also accept REGISTER, as a PBX's registrar
	// would without authentication: 200 with the Contact and the lifetime
	// asked for (at most an hour).
	Registrar bool
	// LoseEvery, when above 1, drops every LoseEvery-th RTP packet the
	// phone sends (audio and key events alike), as a lossy network would:
	// the caller sees the sequence numbers skipped.
	LoseEvery int
	// Press are the keys sent once answered, e.g. "#" or "0#".
	Press string
	// DTMF is how the keys are sent: DTMFRFC4733 (default, also for
	// DTMFAuto) as RTP events, DTMFInfo as SIP INFO application/dtmf-relay
	// in the dialog, DTMFInband as tones mixed into the phone's audio. With
	// info or inband the phone's SDP answer carries no telephone-event, as
	// a phone that cannot send RFC 4733 would answer.
	DTMF media.DTMFMode
	// Speak, when set, is 8 kHz linear audio the phone sends in a loop as
	// its microphone (speech, noise), instead of silence.
	Speak []int16
	// After is the wait between answering and the first key
	// (DefaultPhoneAfter if 0); KeyGap the wait between keys.
	After  time.Duration
	KeyGap time.Duration
	// HangupAfter makes the phone send BYE this long after answering;
	// 0 waits for the caller to hang up.
	HangupAfter time.Duration
	// Record, when set, is a WAV file (8 kHz, 16-bit PCM) that receives
	// what the phone hears on each call (each call overwrites it).
	Record string
	// Logger gets what happened on each call.
	Logger *slog.Logger
	// OnCallEnd, when set, is told about each call once it is over.
	OnCallEnd func(PhoneCall)
	// OnEvent, when set, is told of each step of a call as it happens
	// (`verigate demo` shows them). It runs on the call's goroutine: it
	// must return quickly.
	OnEvent func(PhoneEvent)
}

// PhoneEventKind names a step of a call the phone took.
type PhoneEventKind string

// The steps of a call, in the order they happen; PhoneEnded comes last on
// every call, as OnCallEnd does.
const (
	PhoneIncoming PhoneEventKind = "incoming" // an INVITE came; the phone rings
	PhoneAnswered PhoneEventKind = "answered"
	PhonePressed  PhoneEventKind = "pressed" // a key was sent
	PhoneEnded    PhoneEventKind = "ended"
)

// PhoneEvent is one step of a call.
type PhoneEvent struct {
	Kind   PhoneEventKind
	CallID string
	From   string      // the caller's URI user
	Codec  audio.Codec // PhoneAnswered
	Key    string      // PhonePressed
	// HungUpBy ("caller" or "phone") and Err (the call failed) are set on
	// PhoneEnded.
	HungUpBy string
	Err      error
}

// PhoneCall is what happened on one call the phone took.
type PhoneCall struct {
	CallID   string
	From     string // the caller's URI user
	Codec    audio.Codec
	KeysSent string
	// HungUpBy is "caller" or "phone".
	HungUpBy string
	Duration time.Duration
	// Heard is how many RTP packets of the caller's audio arrived.
	Heard uint64
	// Recording is the WAV file written, if any.
	Recording string
	Err       error
}

// Phone is a SIP phone for tests and operators: it answers every INVITE
// with an SDP answer, presses the configured keys (by RFC 4733, SIP INFO or
// in-band tones), can record
// what it hears and logs what happened. `verigate phone` runs one; `serve
// --dev` without a trunk starts one on loopback (NewLoopbackPhone).
type Phone struct {
	cfg   PhoneConfig
	log   *slog.Logger
	ep    *vsip.Endpoint
	ports *media.PortAllocator
	// dua answers INVITEs. RewriteContact sends the phone's in-dialog
	// requests (its BYE) to where the INVITE came from, over the
	// connection it came on: a caller on TLS or behind NAT is reached.
	dua     *sipgo.DialogUA
	dialogs sync.Map // Call-ID → *sipgo.DialogServerSession

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
}

// NewPhone binds cfg.Listen and starts answering calls.
func NewPhone(cfg PhoneConfig) (*Phone, error) {
	if cfg.RTPPorts == "" {
		cfg.RTPPorts = DefaultPhoneRTPPorts
	}
	if cfg.After <= 0 {
		cfg.After = DefaultPhoneAfter
	}
	if cfg.KeyGap <= 0 {
		cfg.KeyGap = DefaultKeyGap
	}
	mode, err := media.ParseDTMFMode(string(cfg.DTMF))
	if err != nil {
		return nil, fmt.Errorf("phone: %w", err)
	}
	if mode == media.DTMFAuto {
		mode = media.DTMFRFC4733
	}
	cfg.DTMF = mode
	if cfg.Refuse != 0 && (cfg.Refuse < 300 || cfg.Refuse > 699) {
		return nil, fmt.Errorf("phone: refuse %d is not a final status of a refusal (300-699)", cfg.Refuse)
	}
	for _, k := range cfg.Press {
		if _, ok := media.DigitEvent(k); !ok {
			return nil, fmt.Errorf("phone: %q is not a dtmf key", k)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ports, err := media.NewPortAllocator(cfg.RTPPorts)
	if err != nil {
		return nil, fmt.Errorf("phone rtp ports: %w", err)
	}
	log := cfg.Logger.With("component", "phone")
	allow := phoneAllowMethods
	if cfg.Registrar {
		allow += ", REGISTER"
	}
	ep, err := vsip.NewEndpoint(vsip.EndpointConfig{Listen: cfg.Listen, TLSListen: cfg.TLSListen, TLSConfig: cfg.TLSConfig, Allow: allow}, log)
	if err != nil {
		return nil, err
	}
	p := &Phone{cfg: cfg, log: log, ep: ep, ports: ports}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.dua = &sipgo.DialogUA{Client: ep.Client(), ContactHDR: ep.Contact("phone", "udp"), RewriteContact: true}
	ep.Server().OnInvite(p.onInvite)
	ep.Server().OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if d := p.dialog(req); d != nil {
			_ = d.ReadAck(req, tx)
		}
	})
	ep.Server().OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		d := p.dialog(req)
		if d == nil || d.ReadBye(req, tx) != nil {
			p.ep.Respond(req, tx, 481, "Call/Transaction Does Not Exist")
		}
	})
	ep.Server().OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		p.ep.Respond(req, tx, 481, "Call/Transaction Does Not Exist")
	})
	ep.Server().OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		p.ep.Respond(req, tx, 200, "OK")
	})
	if cfg.Registrar {
		ep.Server().OnRegister(p.onRegister)
	}
	ep.Serve()
	log.Info("phone listening", "addr", ep.Addr().String(), "press", cfg.Press, "dtmf", cfg.DTMF, "after", cfg.After)
	return p, nil
}

// phoneAllowMethods are the requests the test phone takes.
const phoneAllowMethods = "INVITE, ACK, BYE, CANCEL, OPTIONS"

// dialog returns the call req belongs to: same Call-ID and the caller's
// From tag, or nil.
func (p *Phone) dialog(req *sip.Request) *sipgo.DialogServerSession {
	v, ok := p.dialogs.Load(req.CallID().Value())
	if !ok {
		return nil
	}
	d := v.(*sipgo.DialogServerSession)
	want, _ := d.InviteRequest.From().Params.Get("tag")
	if from := req.From(); from == nil || !from.Params.Has("tag") {
		return nil
	} else if got, _ := from.Params.Get("tag"); got != want {
		return nil
	}
	return d
}

// TLSAddr returns the address of the phone's TLS listener, if it has one.
func (p *Phone) TLSAddr() netip.AddrPort { return p.ep.TLSAddr() }

// Addr returns the address the phone listens on.
func (p *Phone) Addr() netip.AddrPort { return p.ep.Addr() }

// Close hangs up every call and stops listening.
func (p *Phone) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	p.ep.Close()
	return nil
}

func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.ep.Respond(req, tx, 503, "Service Unavailable")
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()

	started := time.Now()
	pc := PhoneCall{CallID: req.CallID().Value()}
	if f := req.From(); f != nil {
		pc.From = f.Address.User
	}
	log := p.log.With("call_id", pc.CallID, "from", maskUser(pc.From))
	pc.Err = p.answer(req, tx, log, &pc)
	pc.Duration = time.Since(started)
	if pc.Err != nil {
		log.Warn("phone call failed", "error", pc.Err)
	} else {
		log.Info("phone call ended", "hung_up_by", pc.HungUpBy, "keys_sent", pc.KeysSent,
			"heard_packets", pc.Heard, "duration", pc.Duration.Round(time.Millisecond))
	}
	p.event(PhoneEvent{Kind: PhoneEnded, HungUpBy: pc.HungUpBy, Err: pc.Err}, &pc)
	if p.cfg.OnCallEnd != nil {
		p.cfg.OnCallEnd(pc)
	}
}

// event tells OnEvent of a step of the call pc.
func (p *Phone) event(ev PhoneEvent, pc *PhoneCall) {
	if p.cfg.OnEvent == nil {
		return
	}
	ev.CallID, ev.From = pc.CallID, pc.From
	p.cfg.OnEvent(ev)
}

func (p *Phone) answer(req *sip.Request, tx sip.ServerTransaction, log *slog.Logger, pc *PhoneCall) error {
	dialog, err := p.dua.ReadInvite(req, tx)
	if err != nil {
		p.ep.Respond(req, tx, 400, "Bad Request")
		return fmt.Errorf("read invite: %w", err)
	}
	p.dialogs.Store(pc.CallID, dialog)
	defer p.dialogs.Delete(pc.CallID)
	transport := strings.ToLower(req.Transport())
	contact := p.ep.Contact("phone", transport)
	log.Info("phone call incoming", "transport", transport)
	p.event(PhoneEvent{Kind: PhoneIncoming}, pc)
	if err := dialog.Respond(180, "Ringing", nil, &contact); err != nil {
		return fmt.Errorf("ringing: %w", err)
	}
	if p.cfg.Ring > 0 {
		ring := time.NewTimer(p.cfg.Ring)
		defer ring.Stop()
		select {
		case <-ring.C:
		case <-dialog.Context().Done():
			pc.HungUpBy = "caller"
			log.Info("phone call canceled while ringing")
			return nil
		case <-p.ctx.Done():
			_ = dialog.Respond(480, "Temporarily Unavailable", nil)
			return errors.New("phone closed")
		}
	}
	if p.cfg.Hold != nil {
		select {
		case <-p.cfg.Hold:
		case <-dialog.Context().Done():
			pc.HungUpBy = "caller"
			log.Info("phone call canceled while held")
			return nil
		case <-p.ctx.Done():
			_ = dialog.Respond(480, "Temporarily Unavailable", nil)
			return errors.New("phone closed")
		}
	}
	if p.cfg.Refuse != 0 {
		log.Info("phone refusing call", "status", p.cfg.Refuse)
		if err := dialog.Respond(p.cfg.Refuse, refuseReason(p.cfg.Refuse), nil); err != nil {
			return fmt.Errorf("refuse: %w", err)
		}
		pc.HungUpBy = "phone"
		return nil
	}
	conn, err := p.ports.Listen(p.ep.Addr().Addr())
	if err != nil {
		_ = dialog.Respond(503, "Service Unavailable", nil)
		return fmt.Errorf("rtp port: %w", err)
	}
	defer conn.Close()
	mediaIP, err := p.ep.MediaAddr()
	if err != nil {
		_ = dialog.Respond(500, "Server Internal Error", nil)
		return err
	}
	local := media.OfferParams{Addr: mediaIP, Port: conn.Port(), Username: "phone"}
	if p.cfg.DTMF != media.DTMFRFC4733 {
		local.DTMFPayloadType = -1
	}
	answer, neg, err := media.BuildAnswer(req.Body(), local)
	if err != nil {
		_ = dialog.Respond(488, "Not Acceptable Here", nil)
		return fmt.Errorf("sdp offer: %w", err)
	}
	pc.Codec = neg.Codec

	ctx, stop := context.WithCancel(p.ctx)
	defer stop()
	unwatch := context.AfterFunc(dialog.Context(), stop)
	defer unwatch()

	var rtpConn media.UDPConn = conn
	if p.cfg.LoseEvery > 1 {
		rtpConn = &lossyConn{UDPConn: conn, every: p.cfg.LoseEvery}
	}
	mc := media.Config{Conn: rtpConn, Remote: neg.Addr, Codec: neg.Codec, DTMFPayloadType: neg.DTMFPayloadType, Logger: log}
	var wav *audio.WAVWriter
	var wavFile *os.File
	if p.cfg.Record != "" {
		wavFile, err = os.Create(p.cfg.Record)
		if err == nil {
			wav, err = audio.NewWAVWriter(wavFile)
		}
		if err != nil {
			_ = dialog.Respond(500, "Server Internal Error", nil)
			return fmt.Errorf("record: %w", err)
		}
		mc.OnAudio = NewRecorder(wav, neg.Codec, log).Audio
		pc.Recording = p.cfg.Record
	}
	// Closed by the deferred Close below, not by ctx (see call.go).
	ms, err := media.NewSession(context.WithoutCancel(ctx), mc)
	if err != nil {
		_ = dialog.Respond(500, "Server Internal Error", nil)
		return fmt.Errorf("media: %w", err)
	}
	defer func() {
		ms.Close()
		pc.Heard = ms.Stats().PacketsReceived
		if wav != nil {
			if err := wav.Close(); err != nil {
				log.Warn("phone recording not finished", "error", err)
			}
			wavFile.Close()
		}
	}()
	res := sip.NewSDPResponseFromRequest(dialog.InviteRequest, answer)
	res.AppendHeader(&contact)
	if err := dialog.WriteResponse(res); err != nil {
		if dialog.Context().Err() != nil {
			// The caller's BYE overtook its ACK (sipgo handles each request
			// in a goroutine of its own): the call was answered and is over.
			// (A late ACK may set the state back to confirmed; the dialog's
			// context, ended by the BYE, stays ended.)
			pc.HungUpBy = "caller"
			log.Info("phone call answered and hung up at once")
			p.event(PhoneEvent{Kind: PhoneAnswered, Codec: neg.Codec}, pc)
			return nil
		}
		return fmt.Errorf("answer: %w", err)
	}
	log.Info("phone call answered", "codec", neg.Codec, "dtmf_pt", neg.DTMFPayloadType)
	p.event(PhoneEvent{Kind: PhoneAnswered, Codec: neg.Codec}, pc)

	// Keep a stream going toward the caller, as a real phone's microphone
	// would, until the call ends.
	silence := make(chan struct{})
	go func() {
		defer close(silence)
		if len(p.cfg.Speak) == 0 {
			_ = ms.Silence(ctx, 24*time.Hour)
			return
		}
		speech := neg.Codec.Encode(nil, p.cfg.Speak)
		for ms.Play(ctx, speech) == nil {
		}
	}()
	defer func() { stop(); <-silence }()

	var hangup <-chan time.Time
	if p.cfg.HangupAfter > 0 {
		t := time.NewTimer(p.cfg.HangupAfter)
		defer t.Stop()
		hangup = t.C
	}
	keys := []rune(p.cfg.Press)
	next := time.NewTimer(p.cfg.After)
	defer next.Stop()
	if len(keys) == 0 {
		next.Stop()
	}
	for {
		select {
		case <-next.C:
			k := keys[0]
			keys = keys[1:]
			if err := p.press(ctx, dialog, ms, k); err != nil {
				log.Warn("phone key not sent", "key", string(k), "error", err)
			} else {
				pc.KeysSent += string(k)
				log.Info("phone pressed key", "key", string(k))
				p.event(PhoneEvent{Kind: PhonePressed, Key: string(k)}, pc)
			}
			if len(keys) > 0 {
				next.Reset(p.cfg.KeyGap)
			}
		case <-hangup:
			pc.HungUpBy = "phone"
			log.Info("phone hanging up")
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := dialog.Bye(bctx)
			cancel()
			return err
		case <-ctx.Done():
			if p.ctx.Err() != nil && dialog.LoadState() != sip.DialogStateEnded {
				pc.HungUpBy = "phone"
				bctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = dialog.Bye(bctx)
				cancel()
				return nil
			}
			pc.HungUpBy = "caller"
			return nil
		}
	}
}

// press sends one key the configured way.
func (p *Phone) press(ctx context.Context, dialog *sipgo.DialogServerSession, ms *media.Session, k rune) error {
	switch p.cfg.DTMF {
	case media.DTMFInfo:
		ct, body, err := media.FormatINFO(k, keyDuration)
		if err != nil {
			return err
		}
		contact := dialog.InviteRequest.Contact()
		if contact == nil {
			return errors.New("sip info: the invite had no contact")
		}
		req := sip.NewRequest(sip.INFO, contact.Address)
		req.AppendHeader(sip.NewHeader("Content-Type", ct))
		req.SetBody(body)
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		res, err := dialog.Do(ictx, req)
		if err != nil {
			return fmt.Errorf("sip info: %w", err)
		}
		if !res.IsSuccess() {
			return fmt.Errorf("sip info answered %d %s", res.StatusCode, res.Reason)
		}
		return nil
	case media.DTMFInband:
		return ms.SendInbandDTMF(ctx, k, keyDuration)
	}
	return ms.SendDTMF(ctx, k, keyDuration)
}

// refuseReason is the reason phrase of a final status PhoneConfig.Refuse names.
func refuseReason(code int) string {
	switch code {
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	case 600:
		return "Busy Everywhere"
	case 603:
		return "Decline"
	}
	return "Refused"
}

// lossyConn drops every every-th packet written, as a lossy network
// between the phone and the caller would.
type lossyConn struct {
	media.UDPConn
	every int
	n     atomic.Int64
}

// SetReadDeadline passes to the socket, so the session's discarding of
// what arrived before it started works as without the loss.
func (c *lossyConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.UDPConn.(interface{ SetReadDeadline(time.Time) error }); ok {
		return d.SetReadDeadline(t)
	}
	return errors.ErrUnsupported
}

func (c *lossyConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if c.n.Add(1)%int64(c.every) == 0 {
		return len(b), nil // lost on the way
	}
	return c.UDPConn.WriteToUDPAddrPort(b, addr)
}

// onRegister is the registrar of PhoneConfig.Registrar: every REGISTER is
// granted, for the lifetime it asks (at most an hour); Expires 0 removes.
func (p *Phone) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	contact := req.Contact()
	if contact == nil {
		p.ep.Respond(req, tx, 400, "Bad Request")
		return
	}
	expires := 3600
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n >= 0 && n < expires {
			expires = n
		}
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if expires > 0 {
		granted := contact.Clone()
		if granted.Params == nil {
			granted.Params = sip.NewParams()
		}
		granted.Params.Add("expires", strconv.Itoa(expires))
		res.AppendHeader(granted)
	}
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	if err := tx.Respond(res); err != nil {
		p.log.Warn("phone register answer not sent", "error", err)
		return
	}
	p.log.Info("phone registered a contact", "expires", expires)
}

// maskUser masks a caller's user part when it looks like a phone number.
func maskUser(u string) string {
	if strings.Trim(strings.TrimPrefix(u, "+"), "0123456789") == "" && len(u) > 4 {
		return verify.MaskNumber(u)
	}
	return u
}

// NewLoopbackPhone starts the built-in test phone `serve --dev` dials when
// no trunk is configured: on 127.0.0.1 (a free port), pressing '#'
// DefaultPhoneAfter after answering. LoopbackTrunk names it as a trunk for the
// Caller. Each opt adjusts the configuration before the phone starts
// (`verigate demo` sets OnEvent).
func NewLoopbackPhone(log *slog.Logger, opts ...func(*PhoneConfig)) (*Phone, error) {
	cfg := PhoneConfig{
		Listen: "127.0.0.1:0", RTPPorts: DefaultPhoneRTPPorts, Ring: time.Second,
		Press: "#", After: DefaultPhoneAfter, Logger: log,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	return NewPhone(cfg)
}

// LoopbackConfig is the sip configuration of `serve --dev` without a
// trunk: the gateway listens on a free loopback port, keeps cfg's RTP range
// (the phone uses DefaultPhoneRTPPorts), and every call goes to p.
func (p *Phone) LoopbackConfig(cfg vsip.Config) vsip.Config {
	cfg.Listen = "127.0.0.1:0"
	cfg.PublicAddress = ""
	if cfg.RTPPorts == "" {
		cfg.RTPPorts = vsip.DefaultRTPPorts
	}
	t := p.LoopbackTrunk()
	cfg.Trunks = []vsip.Trunk{t}
	cfg.DefaultTrunk = t.Name
	return cfg
}

// LoopbackTrunk is the trunk that sends calls to p.
func (p *Phone) LoopbackTrunk() vsip.Trunk {
	return vsip.Trunk{Name: "loopback-phone", Address: p.Addr().String(), Transport: "udp", Dial: vsip.DefaultDial}
}
