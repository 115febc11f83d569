// Package httpclient builds the gateway's outbound HTTP transports: one
// per destination kind (Twilio's REST API, number lookups, Microsoft
// Graph, callbacks to the IdPs), each keeping enough idle connections to
// a host for the gateway's concurrency. http.DefaultTransport keeps two
// idle connections per host, so under load nearly every request opened a
// connection, with a TLS handshake each time (docs/BENCHMARKS.md, issue 20).
package httpclient

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"time"
)

// Defaults of Options.
const (
	// DefaultIdlePerHost is how many idle connections a transport keeps to
	// one host: what 256 requests in flight to one provider reuse.
	DefaultIdlePerHost   = 256
	DefaultDialTimeout   = 5 * time.Second
	DefaultTLSTimeout    = 5 * time.Second
	DefaultHeaderTimeout = 15 * time.Second
	DefaultIdleTimeout   = 90 * time.Second
	// maxHeaderBytes bounds a response's header: the destinations are
	// providers and IdPs, none of which needs more.
	maxHeaderBytes = 64 << 10
)

// Options tune a transport; the zero value is the defaults.
type Options struct {
	// IdlePerHost is the idle connections kept per host (DefaultIdlePerHost
	// if 0). Connections in use are not capped: a cap would queue requests
	// inside the transport, out of sight of the callers' timeouts.
	IdlePerHost int
	// DialTimeout, TLSHandshakeTimeout, ResponseHeaderTimeout and
	// IdleTimeout: the defaults above if 0.
	DialTimeout           time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	IdleTimeout           time.Duration
	// DialContext replaces the dialer (the callbacks' dialer checks every
	// address); DialTimeout does not apply to it.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// NoProxy ignores HTTP_PROXY and HTTPS_PROXY (the callbacks check the
	// address they dial, which a proxy would hide); the transport otherwise
	// takes its proxy from the environment.
	NoProxy bool
	// TLSConfig is the client's TLS configuration (nil: the system's roots);
	// tests set it to trust a test server.
	TLSConfig *tls.Config
}

// NewTransport returns a transport tuned by o: idle connections per host
// sized to the concurrency, HTTP/2 where the server offers it over TLS,
// dial, handshake, response-header and idle timeouts, and the proxy from
// the environment. Its owner calls CloseIdleConnections when done.
func NewTransport(o Options) *http.Transport {
	or := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	idle := o.IdlePerHost
	if idle <= 0 {
		idle = DefaultIdlePerHost
	}
	dial := o.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: or(o.DialTimeout, DefaultDialTimeout), KeepAlive: 30 * time.Second}).DialContext
	}
	t := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            dial,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           0, // no total cap: per host is what matters
		MaxIdleConnsPerHost:    idle,
		MaxConnsPerHost:        0,
		IdleConnTimeout:        or(o.IdleTimeout, DefaultIdleTimeout),
		TLSHandshakeTimeout:    or(o.TLSHandshakeTimeout, DefaultTLSTimeout),
		ResponseHeaderTimeout:  or(o.ResponseHeaderTimeout, DefaultHeaderTimeout),
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxHeaderBytes,
		TLSClientConfig:        o.TLSConfig,
	}
	if o.NoProxy {
		t.Proxy = nil
	}
	return t
}

// NewClient is a client on NewTransport(o) whose bodies are drained on
// Close (DrainBodies): the default of a package that is handed no client.
// Whoever makes one owns it; CloseIdleConnections releases its connections.
func NewClient(o Options) *http.Client {
	return &http.Client{Transport: DrainBodies(NewTransport(o))}
}

// maxDrain bounds what DrainBodies reads of a body its reader left: more
// than that costs more than a new connection.
const maxDrain = 64 << 10

// DrainBodies wraps rt so that closing a response body first reads what
// the reader left of it (up to 64 KiB). An HTTP/1.1 connection goes back
// to the idle pool only when its response was read to the end, and a
// JSON decoder stops at the end of the value: without this, a client
// library that decodes and closes (twilio-go does) leaves every connection
// to be closed.
func DrainBodies(rt http.RoundTripper) http.RoundTripper { return drainer{rt} }

type drainer struct{ next http.RoundTripper }

func (d drainer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.next.RoundTrip(r)
	if err == nil && resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = &drainOnClose{resp.Body}
	}
	return resp, err
}

// CloseIdleConnections passes through to the wrapped transport.
func (d drainer) CloseIdleConnections() {
	if c, ok := d.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

type drainOnClose struct{ io.ReadCloser }

func (b *drainOnClose) Close() error {
	_, _ = io.Copy(io.Discard, io.LimitReader(b.ReadCloser, maxDrain))
	return b.ReadCloser.Close()
}
