package sip

import (
	"context"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// endpointRequester sends each request through the endpoint's client for
// the request's transport: UDP from the listen address itself, TCP and
// TLS on the stream client. Keep-alives and registrations then leave from
// where calls leave, which trunks that admit traffic by address require.
type endpointRequester struct{ e *endpoint }

func (r endpointRequester) client(req *sip.Request) *sipgo.Client {
	return r.e.client(strings.ToLower(req.Transport()))
}

func (r endpointRequester) Do(ctx context.Context, req *sip.Request, opts ...sipgo.ClientRequestOption) (*sip.Response, error) {
	return r.client(req).Do(ctx, req, opts...)
}

func (r endpointRequester) DoDigestAuth(ctx context.Context, req *sip.Request, res *sip.Response, auth sipgo.DigestAuth) (*sip.Response, error) {
	return r.client(req).DoDigestAuth(ctx, req, res, auth)
}

// Requester returns a Requester sending through the Caller's own
// listener, for OPTIONS keep-alives and REGISTER.
func (c *Caller) Requester() Requester { return endpointRequester{c.ep} }

// KeepAlive returns an OPTIONS keep-alive of the Caller's trunks sent
// from its listener. Run it with the Caller's lifetime:
//
//	ka := caller.KeepAlive(sip.KeepAliveOptions{Logger: log})
//	go ka.Run(ctx) // ka.Ready() for /readyz, ka.Health() for detail
func (c *Caller) KeepAlive(o KeepAliveOptions) *KeepAlive {
	if o.Logger == nil {
		o.Logger = c.log
	}
	return NewKeepAlive(c.cfg, c.Requester(), o)
}

// Registration returns a Registration of the trunk called name (the
// default trunk when empty) whose Contact is the Caller's own address:
// sip.public_address when set, else the listen address (or the local
// address that routes to the trunk when listening on 0.0.0.0); over tls
// the port is that of the gateway's end of the TLS connection. o.Contact
// is filled in unless set. ErrNoTrunk if there is no such trunk.
func (c *Caller) Registration(ctx context.Context, name string, o RegisterOptions) (*Registration, error) {
	t, err := c.cfg.Trunk(name)
	if err != nil {
		return nil, err
	}
	own := o.Contact.Host == ""
	peer := resolvePeer(ctx, t.Address)
	if own {
		o.Contact = c.ep.contact(t.FromUser, t.Transport, peer).Address
	}
	if o.Logger == nil {
		o.Logger = c.log
	}
	g, err := NewRegistration(t, c.Requester(), o)
	if err != nil || !own || t.Transport != "tls" {
		return g, err
	}
	// Over tls the registered Contact names the connection the REGISTER
	// goes over, as a call's Contact does (see dialogContact).
	req, err := newTrunkRequest(sip.REGISTER, t, "")
	if err != nil {
		return nil, err
	}
	recipient := req.Recipient
	g.contactFor = func(ctx context.Context) (sip.Uri, error) {
		ct, err := c.ep.dialogContact(ctx, t.FromUser, t.Transport, recipient, peer)
		return ct.Address, err
	}
	return g, nil
}
