package sip

import (
	"crypto/tls"
	"log/slog"
	"net/netip"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Endpoint is a bound SIP user agent for a peer that takes calls rather
// than places them: the test phone (internal/siptest) answers the
// gateway's calls on one, so that it binds, logs and names itself the way
// the gateway does. The gateway's own Caller does not use it.
type Endpoint struct{ ep *endpoint }

// EndpointConfig is what NewEndpoint binds.
type EndpointConfig struct {
	// Listen is the UDP and TCP address, e.g. 127.0.0.1:5090 (port 0 picks one).
	Listen string
	// TLSListen, with TLSConfig holding a certificate, adds a TLS listener.
	TLSListen string
	TLSConfig *tls.Config
	// Allow is the Allow header of the 405 for requests no handler takes.
	Allow string
}

// NewEndpoint binds cfg's listeners. Add handlers to Server, then Serve.
func NewEndpoint(cfg EndpointConfig, log *slog.Logger) (*Endpoint, error) {
	ep, err := newEndpoint(endpointConfig{listen: cfg.Listen, tlsListen: cfg.TLSListen, tlsServer: cfg.TLSConfig}, log)
	if err != nil {
		return nil, err
	}
	ep.srv.OnNoRoute(methodNotAllowed(log, cfg.Allow))
	return &Endpoint{ep: ep}, nil
}

// Server is where the owner adds its request handlers before Serve.
func (e *Endpoint) Server() *sipgo.Server { return e.ep.srv }

// Client sends from the listen address over UDP.
func (e *Endpoint) Client() *sipgo.Client { return e.ep.udp }

// Serve starts reading the listeners; Close stops them.
func (e *Endpoint) Serve() { e.ep.serve() }

// Close stops the listeners and the user agent.
func (e *Endpoint) Close() { e.ep.close() }

// Addr is the UDP and TCP address bound.
func (e *Endpoint) Addr() netip.AddrPort { return e.ep.addr }

// TLSAddr is the TLS listener's address, if there is one.
func (e *Endpoint) TLSAddr() netip.AddrPort { return e.ep.tlsAddr }

// Contact is the endpoint's Contact header for user over transport.
func (e *Endpoint) Contact(user, transport string) sip.ContactHeader {
	return e.ep.contact(user, transport, netip.Addr{})
}

// MediaAddr is the IP address to write into SDP.
func (e *Endpoint) MediaAddr() (netip.Addr, error) { return e.ep.mediaAddr(netip.Addr{}) }

// Respond answers req within tx with code and reason, logging a failure
// to send.
func (e *Endpoint) Respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string) {
	respond(e.ep.log, req, tx, code, reason)
}
