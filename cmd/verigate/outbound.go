package main

import (
	"net/http"

	"github.com/verigate/verigate/internal/httpclient"
)

// outbound returns a new HTTP transport for one kind of destination
// (Twilio's REST API, number lookups, Microsoft Graph), tuned to reuse
// its connections under load (internal/httpclient), whose idle
// connections the gateway closes on Close. One per kind: a slow
// destination's pool does not hold another's connections. (Callbacks
// have their own, which checks every address it dials: callback.New.)
func (g *gateway) outbound() *http.Transport {
	t := httpclient.NewTransport(httpclient.Options{})
	g.closers = append(g.closers, func() error { t.CloseIdleConnections(); return nil })
	return t
}

// outboundClient is an http.Client on g.outbound(), its bodies drained on
// Close so that a reader that stops early does not lose the connection.
func (g *gateway) outboundClient() *http.Client {
	return &http.Client{Transport: httpclient.DrainBodies(g.outbound())}
}
