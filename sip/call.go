package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/ivr"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/sip/media"
	"github.com/verigate/verigate/verify"
)

// Provider is the provider name Verigate's routes and events use for
// calls placed by a Caller.
const Provider = "sip"

// AudioSource gives the spoken audio of a prompt as 8 kHz G.711 in codec
// c. The prompts package provides the embedded recordings.
type AudioSource interface {
	Audio(locale string, id prompts.ID, c audio.Codec) ([]byte, error)
}

// Options are what a Caller needs besides the sip configuration.
type Options struct {
	// Audio speaks the prompts (required).
	Audio AudioSource
	// Logger gets the timeline of every call, numbers masked.
	Logger *slog.Logger
	// RingTimeout CANCELs a call not answered in time; the configuration's
	// ring_timeout if 0, and DefaultRingLimit if that is 0 too.
	RingTimeout time.Duration
	// MaxPrompts and KeyTimeout shape the call script (ivr defaults if 0).
	MaxPrompts int
	KeyTimeout time.Duration
	// SilenceTimeout ends a call whose phone sends no RTP for this long;
	// the media layer's default (30 s) if 0.
	SilenceTimeout time.Duration
	// SymmetricRTP sends media back to where the phone's media comes from
	// (for phones behind NAT).
	SymmetricRTP bool
	// TLSConfig verifies trunks reached over tls; nil trusts the system's
	// roots and checks the trunk's host name.
	TLSConfig *tls.Config
}

// ErrClosed is returned by Call once the Caller is closed.
var ErrClosed = errors.New("sip caller closed")

// Caller places verification calls over the configured trunks; it
// implements verify.Caller. Each call runs in a goroutine the Caller owns
// and stops on Close (with a CANCEL or BYE to the trunk).
type Caller struct {
	cfg   Config
	opt   Options
	log   *slog.Logger
	ep    *endpoint
	ports *media.PortAllocator
	// dialogs match in-dialog requests (BYE) to the calls placed, one
	// cache per sipgo client.
	dialogs map[string]*sipgo.DialogClientCache

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	// draining is set by Drain: Call places no new call.
	draining bool
	calls    map[string]*call // by Call-ID
	rep      verify.Reporter  // set by ReportTo

	statsMu sync.Mutex
	stats   CallerStats
	metrics *callMetrics
}

// CallerStats counts what a Caller's calls did, for metrics and benchmarks.
type CallerStats struct {
	Placed   uint64 // INVITEs sent
	Answered uint64 // calls answered
	Ended    uint64 // calls over, answered or not
	// Media sums the media counters of the answered calls that are over.
	Media media.Stats
}

// Stats returns a snapshot of the counters.
func (c *Caller) Stats() CallerStats {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	return c.stats
}

func (c *Caller) count(f func(s *CallerStats)) {
	c.statsMu.Lock()
	f(&c.stats)
	c.statsMu.Unlock()
}

var _ verify.Caller = (*Caller)(nil)

// NewCaller validates cfg, binds cfg.Listen (UDP and TCP) and starts
// serving it. Close releases everything.
func NewCaller(cfg Config, o Options) (*Caller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Audio == nil {
		return nil, errors.New("sip caller: an audio source is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RingTimeout <= 0 {
		o.RingTimeout = cfg.RingTimeout
	}
	if o.RingTimeout <= 0 {
		o.RingTimeout = DefaultRingLimit
	}
	ports, err := media.NewPortAllocator(cfg.RTPPorts)
	if err != nil {
		return nil, fmt.Errorf("sip.rtp_ports: %w", err)
	}
	if o.TLSConfig == nil && cfg.TLSCA != "" {
		if o.TLSConfig, err = loadTLSCA(cfg.TLSCA); err != nil {
			return nil, fmt.Errorf("sip.tls_ca: %w", err)
		}
	}
	log := o.Logger.With("component", "sip")
	ep, err := newEndpoint(endpointConfig{listen: cfg.Listen, public: cfg.PublicAddress, tlsClient: o.TLSConfig}, log)
	if err != nil {
		return nil, err
	}
	c := &Caller{cfg: cfg, opt: o, log: log, ep: ep, ports: ports, calls: map[string]*call{}, metrics: newCallMetrics()}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.dialogs = map[string]*sipgo.DialogClientCache{
		"udp":    sipgo.NewDialogClientCache(ep.udp, ep.contact("verigate", "udp", netip.Addr{})),
		"stream": sipgo.NewDialogClientCache(ep.stream, ep.contact("verigate", "tcp", netip.Addr{})),
	}
	ep.srv.OnInvite(c.onInvite)
	ep.srv.OnBye(c.onBye)
	ep.srv.OnInfo(c.onInfo)
	ep.srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	ep.srv.OnNoRoute(methodNotAllowed(log, allowMethods))
	ep.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		respond(c.log, req, tx, 481, "Call/Transaction Does Not Exist")
	})
	ep.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(sip.NewHeader("Allow", allowMethods))
		if err := tx.Respond(res); err != nil {
			c.log.Debug("sip options not answered", "error", err)
		}
	})
	ep.serve()
	log.Info("sip user agent listening", "addr", ep.addr.String(), "trunks", len(cfg.Trunks), "rtp_ports", cfg.RTPPorts)
	return c, nil
}

// Addr returns the address the Caller listens on (useful with port 0).
func (c *Caller) Addr() netip.AddrPort { return c.ep.addr }

// ActiveCalls returns how many calls are ringing or connected.
func (c *Caller) ActiveCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

// RTPPortsInUse returns how many RTP ports calls hold now.
func (c *Caller) RTPPortsInUse() int { return c.ports.InUse() }

// Drain refuses new calls (Call returns verify.ErrDraining) and waits
// until the calls in progress have ended by themselves, or ctx ends; it
// returns how many calls are still in progress then, for Close to end.
// A gateway shutting down drains, then closes.
func (c *Caller) Drain(ctx context.Context) int {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	// Calls end on the phone's or the script's pace, seconds apart: a
	// short poll costs nothing next to them.
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		n := c.ActiveCalls()
		if n == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return c.ActiveCalls()
		case <-t.C:
		}
	}
}

// Close ends every call (CANCEL while ringing, BYE once answered), waits
// for their goroutines and stops listening. A call whose INVITE has had no
// response at all can only be CANCELled after one comes, so Close may wait
// for its transaction to time out (32 s).
func (c *Caller) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.ep.close()
	return nil
}

// onInvite rejects every INVITE: the gateway places calls and takes none,
// so an INVITE is a stranger's (or a re-INVITE, which Verigate does not
// support) and never starts media.
func (c *Caller) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil {
		if tag, ok := to.Params.Get("tag"); ok && tag != "" {
			if cl := c.callOf(req); cl != nil && c.refuseStranger(cl, req, tx) {
				return
			}
			// A re-INVITE in one of our dialogs: keep the media as it is.
			respond(c.log, req, tx, 488, "Not Acceptable Here")
			return
		}
	}
	c.ep.strangers.Warn("sip invite from a stranger rejected", "source", sourceHost(req))
	respond(c.log, req, tx, 403, "Forbidden")
}

// onBye ends the call whose dialog the BYE names, or answers 481; a BYE
// naming a call from elsewhere than its peer gets 403 and ends nothing.
func (c *Caller) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if cl := c.callOf(req); cl != nil && c.refuseStranger(cl, req, tx) {
		return
	}
	for _, dc := range c.dialogs {
		err := dc.ReadBye(req, tx)
		if err == nil {
			return
		}
		if !errors.Is(err, sipgo.ErrDialogDoesNotExists) && !errors.Is(err, sipgo.ErrDialogOutsideDialog) {
			c.log.Debug("sip bye not accepted", "error", err)
			respond(c.log, req, tx, 500, "Server Internal Error")
			return
		}
	}
	c.ep.strangers.Warn("sip bye for no dialog rejected", "source", sourceHost(req))
	respond(c.log, req, tx, 481, "Call/Transaction Does Not Exist")
}

// ReportTo names where the calls placed from now on report their events
// and outcomes: the verify.Service. It is set after NewCaller, not given
// to it, because the Service is built with its Callers: the Caller exists
// first, and is told of the Service once there is one, before the first
// call (Call refuses to place a call with nowhere to report).
func (c *Caller) ReportTo(r verify.Reporter) {
	c.mu.Lock()
	c.rep = r
	c.mu.Unlock()
}

// Call places c.To over its trunk and returns the Call-ID once the INVITE
// has been sent. The call then runs on its own; what happens arrives at
// the Reporter given to ReportTo.
func (c *Caller) Call(ctx context.Context, vc verify.Call) (string, error) {
	c.mu.Lock()
	closed, draining, rep := c.closed, c.draining, c.rep
	c.mu.Unlock()
	if closed {
		return "", ErrClosed
	}
	if draining {
		return "", fmt.Errorf("sip caller: %w", verify.ErrDraining)
	}
	if rep == nil {
		return "", errors.New("sip caller: nowhere to report (no ReportTo)")
	}
	trunk, err := c.cfg.Trunk(vc.Trunk)
	if err != nil {
		return "", err
	}
	user, err := Rewrite(trunk.Dial, vc.To)
	if err != nil {
		return "", err
	}
	host, portStr, err := net.SplitHostPort(trunk.Address)
	if err != nil {
		return "", fmt.Errorf("trunk %s address: %w", trunk.Name, err)
	}
	port, _ := strconv.Atoi(portStr)
	peers := resolvePeers(ctx, trunk.Address)
	var peer netip.Addr
	if len(peers) > 0 {
		peer = peers[0]
	}
	mediaIP, err := c.ep.mediaAddr(peer)
	if err != nil {
		return "", err
	}
	conn, err := c.ports.Listen(c.ep.addr.Addr())
	if errors.Is(err, media.ErrNoPorts) {
		// Every RTP port is in a call: the gateway is busy, which is no
		// reason to count this call against the person's limits.
		return "", fmt.Errorf("rtp port: %w: %w", err, verify.ErrBusy)
	}
	if err != nil {
		return "", fmt.Errorf("rtp port: %w", err)
	}
	op := media.OfferParams{Addr: mediaIP, Port: conn.Port()}
	if mode := media.DTMFMode(trunk.DTMF); mode == media.DTMFInfo || mode == media.DTMFInband {
		// Offering telephone-event would invite the PBX to send RFC 4733,
		// which this trunk's mode ignores.
		op.DTMFPayloadType = -1
	}
	offer := media.BuildOffer(op)

	recipient := sip.Uri{Scheme: "sip", User: user, Host: host, Port: port}
	transportKey := "udp"
	if trunk.Transport != "udp" {
		transportKey = "stream"
		recipient.UriParams = sip.NewParams()
		recipient.UriParams.Add("transport", trunk.Transport)
	}
	display := trunk.CallerID
	if vc.CallerID != "" {
		display = vc.CallerID
	}
	if display == "" {
		display = userAgentName
	}
	from := &sip.FromHeader{DisplayName: display, Address: sip.Uri{Scheme: "sip", User: trunk.FromUser, Host: host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: host}, Params: sip.NewParams()}
	contact, err := c.ep.dialogContact(c.ctx, trunk.FromUser, trunk.Transport, recipient, peer)
	if err != nil {
		conn.Close()
		return "", fmt.Errorf("sip invite via %s: %w", trunk.Name, err)
	}
	sess, err := c.dialogs[transportKey].WriteInvite(c.ctx, newInvite(recipient, offer,
		from, to, &contact,
		sip.NewHeader("Content-Type", "application/sdp"),
		sip.NewHeader("User-Agent", userAgentName),
		sip.NewHeader("Allow", allowMethods),
	))
	if err != nil {
		conn.Close()
		return "", fmt.Errorf("sip invite via %s: %w", trunk.Name, err)
	}
	callID := sess.InviteRequest.CallID().Value()
	cl := &call{
		c: c, rep: rep, id: callID, v: vc, trunk: trunk, dialog: sess, conn: conn, started: time.Now(),
		log: c.log.With("call_id", callID, "verification", vc.VerificationID, "to", verify.MaskNumber(vc.To), "trunk", trunk.Name),
	}
	cl.peers.add(peers...)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = sess.Close()
		conn.Close()
		return "", ErrClosed
	}
	c.calls[callID] = cl
	c.wg.Add(1)
	c.mu.Unlock()
	c.count(func(s *CallerStats) { s.Placed++ })
	cl.log.Info("call placed", "mode", vc.Mode, "transport", trunk.Transport)
	go cl.run()
	return callID, nil
}

// call is one verification call, from INVITE to BYE.
type call struct {
	c       *Caller
	rep     verify.Reporter
	id      string
	v       verify.Call
	trunk   Trunk
	dialog  *sipgo.DialogClientSession
	conn    *media.PortConn
	log     *slog.Logger
	started time.Time
	keys    int // keys reported so far, for event de-duplication keys
	// peers are the trunk's addresses and, once answered, those the
	// answer shows: in-dialog requests are taken from these only.
	peers peerAddrs

	msMu sync.Mutex
	ms   *media.Session // set once media runs, for SIP INFO
}

// media returns the call's media session, nil before it started.
func (cl *call) media() *media.Session {
	cl.msMu.Lock()
	defer cl.msMu.Unlock()
	return cl.ms
}

// run is the call's goroutine.
func (cl *call) run() {
	c := cl.c
	defer func() {
		c.mu.Lock()
		delete(c.calls, cl.id)
		c.mu.Unlock()
		c.count(func(s *CallerStats) { s.Ended++ })
		c.wg.Done()
	}()
	defer cl.conn.Close() // after a media.Session took it, closing again is harmless
	defer cl.dialog.Close()

	ringCtx, cancel := context.WithTimeout(c.ctx, c.opt.RingTimeout)
	ringing := false
	err := cl.dialog.WaitAnswer(ringCtx, sipgo.AnswerOptions{
		Username: cl.trunk.Username,
		Password: cl.trunk.Password,
		OnResponse: func(res *sip.Response) error {
			if res.IsProvisional() {
				cl.log.Debug("call progress", "status", res.StatusCode)
				if (res.StatusCode == 180 || res.StatusCode == 183) && !ringing {
					ringing = true
					cl.log.Info("call ringing", "status", res.StatusCode)
					cl.report(verify.EventRinging, 0, "") // a success carries no error_code
				}
			}
			return nil
		},
	})
	cancel()
	if err != nil {
		out := classifyInviteError(err, ringCtx, c.ctx)
		if out.event == verify.EventNoAnswer && out.code == 0 {
			cl.log.Info("call not answered: canceled after ring timeout", "ring_timeout", c.opt.RingTimeout)
		} else {
			cl.log.Info("call not answered", "event", out.event, "status", out.code, "detail", out.detail)
		}
		c.metrics.unanswered(cl.trunk.Name, out.event)
		cl.ended(out.event, out.code, out.detail)
		return
	}
	if err := cl.dialog.Ack(c.ctx); err != nil {
		cl.log.Warn("call ack not sent", "error", err)
	}
	cl.peers.add(answerPeers(cl.dialog.InviteResponse)...)
	setup := time.Since(cl.started)
	c.count(func(s *CallerStats) { s.Answered++ })
	c.metrics.answered(cl.trunk.Name, setup)
	cl.log.Info("call answered", "after", setup.Round(time.Millisecond))
	cl.report(verify.EventAnswered, 0, "")

	ans, err := media.ParseAnswer(cl.dialog.InviteResponse.Body())
	if err != nil {
		// The wire had 200 OK: that is the error code recorded. Verigate
		// cannot answer a 200 with 488, so it ends the call with BYE and
		// the detail says why.
		cl.log.Warn("call answer has no usable sdp", "error", err)
		cl.hangup()
		cl.ended(verify.EventFailed, 200, "answered 200 with an unusable sdp ("+sdpProblem(err)+"); hung up")
		return
	}
	// The call's context ends when the phone hangs up (sipgo ends the
	// dialog's context on its BYE) or the Caller closes.
	ctx, stop := context.WithCancel(c.ctx)
	defer stop()
	unwatch := context.AfterFunc(cl.dialog.Context(), stop)
	defer unwatch()

	// The session ends by the deferred Close below, not by ctx, so that
	// its end is ordered with the rest of the call's teardown.
	ms, err := media.NewSession(context.WithoutCancel(ctx), media.Config{
		Conn: cl.conn, Remote: ans.Addr, Codec: ans.Codec, DTMFPayloadType: ans.DTMFPayloadType,
		Ptime: ans.SendPtime(), Direction: ans.Direction,
		Symmetric: c.opt.SymmetricRTP, PeerAddrs: cl.peers.list(), SilenceTimeout: c.opt.SilenceTimeout, Logger: cl.log,
		DTMF: media.DTMFMode(cl.trunk.DTMF),
	})
	if err != nil {
		cl.log.Warn("call media not started", "error", err)
		cl.hangup()
		cl.ended(verify.EventFailed, 0, "media not started")
		return
	}
	cl.msMu.Lock()
	cl.ms = ms
	cl.msMu.Unlock()
	defer func() {
		ms.Close()
		st := ms.Stats()
		c.count(func(s *CallerStats) { s.Media.Add(&st) })
	}()
	cl.log.Info("call media started", "codec", ans.Codec, "remote", ans.Addr.String(), "dtmf_pt", ans.DTMFPayloadType, "dtmf", cl.trunk.DTMF,
		"ptime", ans.SendPtime(), "direction", ans.Direction)

	end := cl.runScript(ctx, ms)
	switch end {
	case endRemote:
		if c.ctx.Err() != nil {
			cl.hangup()
			cl.log.Info("call ended: gateway shutting down")
			cl.ended(verify.EventFailed, 0, "gateway shutting down")
			return
		}
		cl.log.Info("call ended by the phone", "duration", time.Since(cl.started).Round(time.Millisecond))
		cl.ended(verify.EventCompleted, 0, "hung up by the phone")
	case endLocal:
		cl.hangup()
		cl.log.Info("call ended by the gateway", "duration", time.Since(cl.started).Round(time.Millisecond))
		cl.ended(verify.EventCompleted, 0, "hung up by the gateway")
	case endSilence:
		cl.hangup()
		cl.log.Info("call ended: no rtp from the phone")
		cl.ended(verify.EventFailed, 0, "no rtp from the phone")
	}
}

// sdpProblem names what is wrong with an SDP answer in a few fixed words,
// for an event's detail (never the peer's own text).
func sdpProblem(err error) string {
	switch {
	case errors.Is(err, media.ErrNoCommonCodec):
		return "no common codec"
	case errors.Is(err, media.ErrNoAudio):
		return "no active audio stream"
	}
	return "malformed"
}

// hangup sends BYE unless the dialog has ended already.
func (cl *call) hangup() {
	if cl.dialog.LoadState() == sip.DialogStateEnded {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(cl.c.ctx), 5*time.Second)
	defer cancel()
	if err := cl.dialog.Bye(ctx); err != nil {
		logByeFailed(cl.log, err)
	}
}

// report passes one event of the call, which decides nothing, to the
// Reporter.
func (cl *call) report(t verify.EventType, status int, detail string) {
	cl.send(t, status, detail, nil)
}

// ended reports how the call ended, with what ivr says that meant
// (ivr.Ended: an approve-mode call not approved by then fails).
func (cl *call) ended(t verify.EventType, status int, detail string) {
	cl.send(t, status, detail, ivr.Ended(cl.script(), t))
}

// send passes one event of the call to the Reporter. Reports outlive a
// closing Caller by a few seconds, so a shutdown still records the outcome.
// status, when not 0, becomes the event's error code: the SIP status of a
// failure (486, a 200 whose SDP was unusable), never of a success.
func (cl *call) send(t verify.EventType, status int, detail string, outcome *verify.Outcome) {
	// At is left to the Reporter: the Service stamps events with its clock.
	ev := verify.Event{
		Type: t, Channel: verify.ChannelCall, Provider: Provider,
		ProviderRef: cl.id, Detail: detail, Attempt: cl.v.Attempt, Key: cl.id + "/" + string(t),
		Outcome: outcome,
	}
	if status != 0 {
		ev.ErrorCode = strconv.Itoa(status)
	}
	if t == verify.EventKeyPressed {
		cl.keys++
		ev.Key += "/" + strconv.Itoa(cl.keys)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(cl.c.ctx), 5*time.Second)
	defer cancel()
	if err := cl.rep.Report(ctx, cl.v.VerificationID, ev); err != nil {
		if errors.Is(err, verify.ErrNotPending) {
			cl.log.Debug("call event recorded after the verification ended", "event", t)
			return
		}
		cl.log.Warn("call event not recorded", "event", t, "error", err)
	}
}

// PromptAudio speaks the prompts of a prompts.Catalogue (the embedded
// recordings and the operator's overrides) as an AudioSource.
type PromptAudio struct {
	Catalogue *prompts.Catalogue
}

// Audio returns id in locale, in codec c.
func (p PromptAudio) Audio(locale string, id prompts.ID, c audio.Codec) ([]byte, error) {
	return p.Catalogue.Audio(locale, id, c)
}
