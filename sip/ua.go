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
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// userAgentName is the User-Agent header and the default From display name.
const userAgentName = "Verigate"

// endpoint is one sipgo user agent bound to a listen address, UDP and TCP
// on the same port. The gateway's Caller and the test Phone each sit on
// one. Listeners are bound before anything is dialled (sipgo races on a
// bind made while dialling concurrently).
type endpoint struct {
	log *slog.Logger
	// strangers logs what others send unasked (an INVITE nobody placed, a
	// request from outside a dialog's peer), rate-limited per message.
	strangers *slog.Logger
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	// udp sends from the listen address itself (WithClientConnectionAddr):
	// without it sipgo sends the first INVITE from an ephemeral port while
	// Via names the listener, and trunks that admit calls by source
	// address refuse it. stream serves tcp and tls, whose source port is
	// ephemeral in every SIP stack.
	udp, stream *sipgo.Client

	udpConn *net.UDPConn
	tcpLn   *net.TCPListener
	tlsLn   net.Listener   // nil unless a TLS listener was asked for
	addr    netip.AddrPort // the bound address (port resolved when 0)
	tlsAddr netip.AddrPort // the TLS listener's address, if any

	// public is the configured public host (or host:port) for Contact and
	// SDP; empty when none was configured.
	publicHost string
	publicPort int

	wg sync.WaitGroup
}

// endpointConfig is what newEndpoint binds and how it dials.
type endpointConfig struct {
	listen, public string
	// tlsListen, with tlsServer, adds a TLS listener (the test phone).
	tlsListen string
	tlsServer *tls.Config
	// tlsClient verifies the peers dialled over TLS; nil uses the
	// system's roots and the trunk's host name.
	tlsClient *tls.Config
}

// newEndpoint binds listen (UDP and TCP on one port). Handlers are added
// to e.srv by the owner before serve.
func newEndpoint(ec endpointConfig, log *slog.Logger) (*endpoint, error) {
	listen, public := ec.listen, ec.public
	host, port, err := splitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("sip listen %q: %w", listen, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, lerr := net.LookupIP(host)
		if lerr != nil || len(ips) == 0 {
			return nil, fmt.Errorf("sip listen %q: not an IP address and does not resolve", listen)
		}
		ip, _ = netip.AddrFromSlice(ips[0])
	}
	ip = ip.Unmap()
	network := "udp4"
	if ip.Is6() {
		network = "udp6"
	}
	e := &endpoint{log: log}
	if public != "" {
		e.publicHost = public
		if h, p, err := net.SplitHostPort(public); err == nil {
			e.publicHost = h
			e.publicPort, _ = strconv.Atoi(p)
		}
	}
	// Bind UDP, then TCP on the same port; with port 0 the kernel's choice
	// for UDP may be taken for TCP, so try a few times.
	for attempt := 0; ; attempt++ {
		e.udpConn, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
		if err != nil {
			return nil, fmt.Errorf("sip listen udp %s: %w", listen, err)
		}
		bound := e.udpConn.LocalAddr().(*net.UDPAddr).AddrPort()
		e.tcpLn, err = net.ListenTCP("tcp"+network[3:], net.TCPAddrFromAddrPort(bound))
		if err == nil {
			e.addr = netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())
			break
		}
		e.udpConn.Close()
		if port != 0 || attempt > 5 {
			return nil, fmt.Errorf("sip listen tcp %s: %w", listen, err)
		}
	}
	hostname := e.advertisedHost(netip.Addr{})
	if ec.tlsListen != "" {
		if ec.tlsServer == nil {
			e.closeListeners()
			return nil, errors.New("sip tls listener without a certificate")
		}
		e.tlsLn, err = tls.Listen("tcp", ec.tlsListen, ec.tlsServer)
		if err != nil {
			e.closeListeners()
			return nil, fmt.Errorf("sip listen tls %s: %w", ec.tlsListen, err)
		}
		ap := e.tlsLn.Addr().(*net.TCPAddr).AddrPort()
		e.tlsAddr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	// Everything sipgo logs goes through the gateway's handler, bounded:
	// each datagram a stranger sends can make it log a line.
	sipgoLog := stackLogger(log).With("component", "sipgo")
	e.strangers = boundedLogger(log, nil)
	opts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent(userAgentName), sipgo.WithUserAgentHostname(hostname),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipgoLog)),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(sipgoLog),
			// sipgo's default logs each one at INFO through its package
			// logger; a stray response (a retransmitted 200, or anyone's
			// datagram) is worth a debug line.
			sip.WithTransactionLayerUnhandledResponseHandler(func(res *sip.Response) {
				sipgoLog.Debug("sip response for no transaction ignored", "status", res.StatusCode, "source", res.Source())
			}),
		),
	}
	if ec.tlsClient != nil {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(ec.tlsClient))
	}
	e.ua, err = sipgo.NewUA(opts...)
	if err != nil {
		e.closeListeners()
		return nil, fmt.Errorf("sip user agent: %w", err)
	}
	e.srv, err = sipgo.NewServer(e.ua, sipgo.WithServerLogger(sipgoLog))
	// WithClientNAT puts rport into every Via (RFC 3581): behind NAT the
	// answers then come back to the port the request left from.
	if err == nil {
		e.udp, err = sipgo.NewClient(e.ua, sipgo.WithClientLogger(sipgoLog), sipgo.WithClientNAT(),
			sipgo.WithClientConnectionAddr(e.addr.String()))
	}
	if err == nil {
		e.stream, err = sipgo.NewClient(e.ua, sipgo.WithClientLogger(sipgoLog), sipgo.WithClientNAT())
	}
	if err != nil {
		e.ua.Close()
		e.closeListeners()
		return nil, fmt.Errorf("sip user agent: %w", err)
	}
	return e, nil
}

// serve starts reading the listeners and returns once sipgo has taken
// the UDP listener into its connection pool: a request sent before that
// would try to bind the listen address a second time. close stops it.
func (e *endpoint) serve() {
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		if err := e.srv.ServeUDP(e.udpConn); err != nil && !errors.Is(err, net.ErrClosed) {
			e.log.Error("sip udp listener stopped", "error", err)
		}
	}()
	go func() {
		defer e.wg.Done()
		// ServeTCP returns the listener's Accept error, net.ErrClosed on close.
		err := e.srv.ServeTCP(e.tcpLn)
		if !errors.Is(err, net.ErrClosed) {
			e.log.Debug("sip tcp listener stopped", "error", err)
		}
	}()
	if e.tlsLn != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			err := e.srv.ServeTLS(e.tlsLn)
			if !errors.Is(err, net.ErrClosed) {
				e.log.Debug("sip tls listener stopped", "error", err)
			}
		}()
	}
	pool := e.ua.TransportLayer().Pool("udp")
	for i := 0; i < 2000 && pool.Get(e.addr.String()) == nil; i++ {
		time.Sleep(time.Millisecond)
	}
}

func (e *endpoint) closeListeners() {
	if e.udpConn != nil {
		e.udpConn.Close()
	}
	if e.tcpLn != nil {
		e.tcpLn.Close()
	}
	if e.tlsLn != nil {
		e.tlsLn.Close()
	}
}

// close stops the listeners and sipgo's transaction and transport layers.
func (e *endpoint) close() {
	e.closeListeners()
	e.wg.Wait()
	e.ua.Close()
}

// advertisedHost is the host the peer should reach us at: the public
// address, else the listen IP, else the local address that routes to the
// peer (toward), else the loopback address.
func (e *endpoint) advertisedHost(toward netip.Addr) string {
	if e.publicHost != "" {
		return e.publicHost
	}
	if ip := e.addr.Addr(); !ip.IsUnspecified() {
		return ip.String()
	}
	if toward.IsValid() {
		if c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(toward, 9))); err == nil {
			local := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
			c.Close()
			return local.String()
		}
	}
	return "127.0.0.1"
}

// mediaAddr is the IP written into SDP: the advertised host resolved to an
// address (SDP connection lines carry addresses).
func (e *endpoint) mediaAddr(toward netip.Addr) (netip.Addr, error) {
	host := e.advertisedHost(toward)
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap(), nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("public address %q does not resolve", host)
	}
	ip, _ := netip.AddrFromSlice(ips[0])
	return ip.Unmap(), nil
}

// contact is our Contact header for transport, toward a peer.
func (e *endpoint) contact(user, transport string, toward netip.Addr) sip.ContactHeader {
	port := int(e.addr.Port())
	if transport == "tls" && e.tlsAddr.IsValid() {
		port = int(e.tlsAddr.Port())
	}
	if e.publicPort != 0 {
		port = e.publicPort
	}
	c := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: e.advertisedHost(toward), Port: port}}
	if transport != "" && transport != "udp" {
		c.Address.UriParams = sip.NewParams()
		c.Address.UriParams.Add("transport", transport)
	}
	return c
}

// dialogContact is our Contact for a dialog with the peer at recipient. Over tls without a TLS listener of our own, it names
// the local end of the TLS connection to the peer, opened here if there is
// none yet: sipgo sends the request itself over that same connection
// (connection reuse by remote address), and a PBX sends requests within
// the dialog (the phone's BYE) over the connection whose far end the
// Contact names, as kamailio, Asterisk and FreeSWITCH do, where a new TLS
// connection to the listen port would meet a plain TCP listener. The port
// is the connection's even behind NAT (public_address names the listen
// port's mapping); PBXs match such a connection by its source anyway.
// Every other transport names the listener (contact).
func (e *endpoint) dialogContact(ctx context.Context, user, transport string, recipient sip.Uri, toward netip.Addr) (sip.ContactHeader, error) {
	c := e.contact(user, transport, toward)
	if transport != "tls" || e.tlsAddr.IsValid() {
		return c, nil
	}
	port, err := e.streamPort(ctx, recipient)
	if err != nil {
		return c, err
	}
	c.Address.Port = port
	return c, nil
}

// streamPort returns the local port of the TLS connection to recipient's
// host, dialling it if there is none.
func (e *endpoint) streamPort(ctx context.Context, recipient sip.Uri) (int, error) {
	req := sip.NewRequest(sip.OPTIONS, recipient)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "TLS", Params: sip.NewParams()}
	req.AppendHeader(via)
	conn, err := e.ua.TransportLayer().ClientRequestConnection(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("sip tls connection to %s: %w", recipient.HostPort(), err)
	}
	// ClientRequestConnection counts a reference for its caller; the pool
	// keeps the connection open for the request that follows.
	defer func() { _, _ = conn.TryClose() }()
	ap, err := netip.ParseAddrPort(conn.LocalAddr().String())
	if err != nil {
		return 0, fmt.Errorf("sip tls connection to %s: local address: %w", recipient.HostPort(), err)
	}
	return int(ap.Port()), nil
}

// newInvite builds an INVITE to recipient sent over the transport its
// transport parameter names, written as a Via writes it (SIP/2.0/TLS):
// sipgo takes the URI's lowercase parameter as is into the Via of the
// INVITE, its digest retry, ACK and BYE.
func newInvite(recipient sip.Uri, body []byte, headers ...sip.Header) *sip.Request {
	req := sip.NewRequest(sip.INVITE, recipient)
	req.SetBody(body)
	if recipient.UriParams != nil {
		if tp, _ := recipient.UriParams.Get("transport"); tp != "" {
			req.SetTransport(strings.ToUpper(tp))
		}
	}
	for _, h := range headers {
		req.AppendHeader(h)
	}
	return req
}

// logByeFailed logs a BYE of ours that the peer refused (with its status:
// a 478 or 481 says the peer did not take the hang-up, and may still be
// on the line) or that found no answer.
func logByeFailed(log *slog.Logger, err error) {
	if res := dialogResponse(err); res != nil {
		log.Warn("call bye refused", "status", res.StatusCode, "reason", res.Reason)
		return
	}
	log.Warn("call bye failed", "error", err)
}

// dialogResponse is the final response a sipgo dialog error carries
// (ErrDialogResponse, by value or by pointer), or nil.
func dialogResponse(err error) *sip.Response {
	var drp *sipgo.ErrDialogResponse
	var drv sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &drp) && drp != nil:
		return drp.Res
	case errors.As(err, &drv):
		return drv.Res
	}
	return nil
}

// resolvePeer returns the IP of a trunk's host:port (for choosing the
// local address that routes to it); the zero Addr when it does not resolve.
func resolvePeer(ctx context.Context, hostport string) netip.Addr {
	if ips := resolvePeers(ctx, hostport); len(ips) > 0 {
		return ips[0]
	}
	return netip.Addr{}
}

// resolvePeers returns every IP of a trunk's host:port (a trunk's name may
// stand for several hosts, any of which may send in a dialog); none when
// it does not resolve.
func resolvePeers(ctx context.Context, hostport string) []netip.Addr {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips
}

// respond answers req statelessly within its server transaction, logging a
// failure to send.
func respond(log *slog.Logger, req *sip.Request, tx sip.ServerTransaction, code int, reason string) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if err := tx.Respond(res); err != nil {
		log.Debug("sip response not sent", "method", req.Method, "code", code, "error", err)
	}
}

// sourceHost is the host a request came from, for log lines about strangers.
func sourceHost(req *sip.Request) string {
	src := req.Source()
	if h, _, err := net.SplitHostPort(src); err == nil {
		return h
	}
	return strings.TrimSpace(src)
}

// client returns the client that sends over transport: UDP from the listen
// address itself, TCP and TLS on the stream client.
func (e *endpoint) client(transport string) *sipgo.Client {
	if transport == "udp" {
		return e.udp
	}
	return e.stream
}
