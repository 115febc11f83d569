package radius

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"layeh.com/radius"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/verify"
)

// Verifier is what the server needs of verify.Service.
type Verifier interface {
	Start(ctx context.Context, req verify.StartRequest) (*verify.Verification, error)
	Wait(ctx context.Context, tenant, id string, d time.Duration) (*verify.Verification, error)
	Check(ctx context.Context, tenant, id, code string) (*verify.Verification, error)
	CheckByNumber(ctx context.Context, tenant, to, code string) (*verify.Verification, error)
	Cancel(ctx context.Context, tenant, id string) (*verify.Verification, error)
}

// Directory finds the person's numbers (directory.Chain).
type Directory interface {
	Lookup(ctx context.Context, q directory.Query) (directory.User, error)
}

// Options are what New needs besides the configuration.
type Options struct {
	Verifier  Verifier
	Directory Directory
	// Primary replaces the checker cfg.Primary describes (tests).
	Primary PasswordChecker
	Logger  *slog.Logger
}

// The reasons a packet is dropped unanswered: the label values of
// verigate_radius_dropped_total, a fixed set.
const (
	DropTooBig         = "too_big"
	DropMalformed      = "malformed"
	DropUnknownClient  = "unknown_client"
	DropNotRequest     = "not_access_request" // accounting, CoA: not served here
	DropNoMessageAuth  = "no_message_authenticator"
	DropBadMessageAuth = "bad_message_authenticator" // a wrong secret, or forged
	DropInFlight       = "duplicate_in_flight"
	DropOverloaded     = "overloaded"
)

// Server is the RADIUS server. Serve runs it; it is safe for concurrent use.
type Server struct {
	cfg     Config
	conn    *net.UDPConn
	clients []client
	primary PasswordChecker
	opts    Options
	log     *slog.Logger

	dups   *dupCache
	states *stateTable
	slots  chan struct{}

	dropped   *prometheus.CounterVec
	decisions *prometheus.CounterVec
	resent    prometheus.Counter

	wg sync.WaitGroup
}

type client struct {
	net    netip.Prefix
	secret []byte
	name   string
}

// Listen validates cfg, binds its UDP address and returns the server;
// Serve then answers.
func Listen(cfg Config, opts Options) (*Server, error) {
	if err := cfg.Validate("radius"); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if opts.Verifier == nil || opts.Directory == nil {
		return nil, errors.New("radius: a Verifier and a Directory are required")
	}
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger, primary: opts.Primary,
		dups:   newDupCache(cfg.DuplicateWindow, 65536),
		states: newStateTable(cfg.ChallengeTimeout, 65536),
		slots:  make(chan struct{}, cfg.MaxInFlight),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_radius_dropped_total", Help: "RADIUS packets dropped unanswered, by reason.",
		}, []string{"reason"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_radius_decisions_total", Help: "RADIUS answers decided, by code and reason.",
		}, []string{"code", "reason"}),
		resent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verigate_radius_retransmits_answered_total", Help: "Retransmitted RADIUS requests answered again from the cache.",
		}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, r := range []string{DropTooBig, DropMalformed, DropUnknownClient, DropNotRequest, DropNoMessageAuth, DropBadMessageAuth, DropInFlight, DropOverloaded} {
		s.dropped.WithLabelValues(r)
	}
	for _, c := range cfg.Clients {
		p, _ := parseClientAddress(c.Address) // validated
		name := c.Name
		if name == "" {
			name = c.Address
		}
		s.clients = append(s.clients, client{net: p, secret: []byte(c.Secret), name: name})
	}
	if s.primary == nil {
		p, err := newPasswordChecker(cfg.Primary)
		if err != nil {
			return nil, err
		}
		s.primary = p
	}
	addr, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("radius: listen %s: %w", cfg.Listen, err)
	}
	if s.conn, err = net.ListenUDP("udp", addr); err != nil {
		return nil, fmt.Errorf("radius: listen %s: %w", cfg.Listen, err)
	}
	return s, nil
}

// Addr is where the server listens.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Describe implements prometheus.Collector.
func (s *Server) Describe(ch chan<- *prometheus.Desc) {
	s.dropped.Describe(ch)
	s.decisions.Describe(ch)
	s.resent.Describe(ch)
}

// Collect implements prometheus.Collector.
func (s *Server) Collect(ch chan<- prometheus.Metric) {
	s.dropped.Collect(ch)
	s.decisions.Collect(ch)
	s.resent.Collect(ch)
}

// Serve answers until ctx ends, then closes the socket and waits for the
// logins in hand (their waits end with ctx).
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.conn.Close() })
	defer stop()
	defer s.wg.Wait()
	buf := make([]byte, MaxPacket+1)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.log.Warn("radius: read", "err", err)
			continue
		}
		s.receive(ctx, buf[:n], from)
	}
}

// Close closes the socket, so Serve returns; closing again is no error.
func (s *Server) Close() error {
	if err := s.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

func (s *Server) drop(reason string, from netip.AddrPort, args ...any) {
	s.dropped.WithLabelValues(reason).Inc()
	// A flood of forged datagrams comes through here: no allocation for
	// a record nobody reads.
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	s.log.Debug("radius: dropped", append([]any{"reason", reason, "nas", from.Addr().String()}, args...)...)
}

// receive screens one datagram (bounded, known client, Access-Request,
// Message-Authenticator) before anything parses it, then hands it to a
// goroutine unless it is a duplicate.
func (s *Server) receive(ctx context.Context, b []byte, from netip.AddrPort) {
	if len(b) > MaxPacket {
		s.drop(DropTooBig, from)
		return
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	cl, ok := s.client(from.Addr())
	if !ok {
		s.drop(DropUnknownClient, from)
		return
	}
	n, err := packetLength(b)
	if err != nil {
		s.drop(DropMalformed, from)
		return
	}
	b = b[:n]
	code := radius.Code(b[0])
	if code != radius.CodeAccessRequest && code != radius.CodeStatusServer {
		s.drop(DropNotRequest, from, "code", b[0])
		return
	}
	switch err := checkRequestAuth(b, cl.secret); {
	case errors.Is(err, errNoMessageAuth):
		s.drop(DropNoMessageAuth, from, "client", cl.name)
		return
	case errors.Is(err, errBadMessageAuth):
		s.drop(DropBadMessageAuth, from, "client", cl.name)
		return
	case err != nil:
		s.drop(DropMalformed, from, "client", cl.name)
		return
	}
	req, err := radius.Parse(b, cl.secret)
	if err != nil {
		s.drop(DropMalformed, from, "client", cl.name)
		return
	}
	if code == radius.CodeStatusServer {
		// RFC 5997: a proxy in front (FreeRADIUS's status_check) asks
		// whether this server is alive; the answer starts nothing.
		if b, err := encodeSigned(reply(req, radius.CodeAccessAccept, "")); err == nil {
			s.send(b, from)
		}
		return
	}
	key := dupKey{from: from, id: req.Identifier, auth: req.Authenticator}
	switch answer, c := s.dups.claim(key); c {
	case claimAnswered:
		s.resent.Inc()
		s.send(answer, from)
		return
	case claimInHand:
		// The first copy is still being handled (the phone rings): its
		// answer will go out, and the NAS retransmits again meanwhile.
		s.drop(DropInFlight, from, "client", cl.name, "id", req.Identifier)
		return
	case claimFull:
		s.drop(DropOverloaded, from, "client", cl.name)
		return
	}
	select {
	case s.slots <- struct{}{}:
	default:
		s.dups.release(key)
		s.drop(DropOverloaded, from, "client", cl.name)
		return
	}
	s.wg.Go(func() {
		defer func() { <-s.slots }()
		resp := s.handle(ctx, req, cl, from)
		b, err := encodeSigned(resp)
		if err != nil {
			s.dups.release(key)
			s.log.Error("radius: encode answer", "err", err)
			return
		}
		s.dups.answer(key, b)
		s.send(b, from)
	})
}

func (s *Server) send(b []byte, to netip.AddrPort) {
	if _, err := s.conn.WriteToUDPAddrPort(b, to); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Warn("radius: send", "nas", to.Addr().String(), "err", err)
	}
}

func (s *Server) client(a netip.Addr) (client, bool) {
	// The most specific network wins: a host entry inside a network
	// entry has its own secret.
	best, found := client{}, false
	for _, c := range s.clients {
		if c.net.Contains(a) && (!found || c.net.Bits() > best.net.Bits()) {
			best, found = c, true
		}
	}
	return best, found
}
