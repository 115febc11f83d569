package sip

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// peerAddrs are the IP addresses a call's peer speaks from. In-dialog
// requests (INFO, BYE, re-INVITE) that name the call are acted on only
// when they come from one of them: the Call-ID and tags are no secret to
// whoever sees the signalling, and a stranger's INFO with a '#' in it
// would otherwise approve the call. Symmetric RTP latches only to one of
// them or to the address of the SDP answer.
type peerAddrs struct {
	mu    sync.Mutex
	addrs []netip.Addr
}

// add records addresses, ignoring invalid and unspecified ones.
func (p *peerAddrs) add(as ...netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range as {
		a = a.Unmap()
		if a.IsValid() && !a.IsUnspecified() && !slices.Contains(p.addrs, a) {
			p.addrs = append(p.addrs, a)
		}
	}
}

// has reports whether a is one of the peer's addresses.
func (p *peerAddrs) has(a netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.addrs, a.Unmap())
}

// list returns a copy of the addresses.
func (p *peerAddrs) list() []netip.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.addrs)
}

// answerPeers returns the addresses the answer to an INVITE shows for the
// far end of the dialog: where it came from (the trunk, or the node of a
// cluster that took the call), and its Contact and Record-Route hosts when
// they are IP addresses (behind a proxy that does not record-route, the
// phone sends its BYE itself). A stranger cannot choose any of them without
// answering the INVITE.
func answerPeers(res *sip.Response) []netip.Addr {
	if res == nil {
		return nil
	}
	var out []netip.Addr
	if ap, err := netip.ParseAddrPort(res.MessageData.Source()); err == nil {
		out = append(out, ap.Addr())
	}
	hosts := []string{}
	if c := res.Contact(); c != nil {
		hosts = append(hosts, c.Address.Host)
	}
	for _, h := range res.GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			hosts = append(hosts, rr.Address.Host)
		}
	}
	for _, h := range hosts {
		if a, err := netip.ParseAddr(trimBrackets(h)); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// requestSource is the IP address a request arrived from: the datagram's
// source or the connection's remote end, never what its Via claims.
func requestSource(req *sip.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(req.MessageData.Source())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// refuseStranger answers 403 to an in-dialog request of cl that does not
// come from cl's peer, logs it (rate-limited) and reports true; the
// caller then leaves the request alone.
func (c *Caller) refuseStranger(cl *call, req *sip.Request, tx sip.ServerTransaction) bool {
	src, ok := requestSource(req)
	if ok && cl.peers.has(src) {
		return false
	}
	c.ep.strangers.Warn("sip in-dialog request from a stranger refused",
		"method", req.Method, "source", src.String(), "call_id", cl.id)
	respond(c.log, req, tx, 403, "Forbidden")
	return true
}

// callOf returns the call req names by its Call-ID and whose dialog it is
// in (its To tag is the gateway's From tag), or nil.
func (c *Caller) callOf(req *sip.Request) *call {
	id := req.CallID()
	if id == nil {
		return nil
	}
	c.mu.Lock()
	cl := c.calls[id.Value()]
	c.mu.Unlock()
	if cl == nil || !cl.inDialog(req) {
		return nil
	}
	return cl
}
