package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Defaults of RegisterOptions.
const (
	DefaultRegisterExpires = time.Hour
	DefaultRegisterRetry   = 5 * time.Second
	DefaultRegisterBackoff = 5 * time.Minute
	registerTimeout        = 10 * time.Second
)

// RegisterOptions shape a Registration.
type RegisterOptions struct {
	// Contact is where the trunk is to send requests for the gateway: its
	// listen or public address, e.g. sip:verigate@203.0.113.10:5060.
	Contact sip.Uri
	// Expires is the lifetime asked for; DefaultRegisterExpires if 0. The
	// registrar may grant less (or more); refreshes follow what it grants.
	Expires time.Duration
	// RetryMin and RetryMax bound the back-off after a failed REGISTER: it
	// starts at RetryMin and doubles up to RetryMax. Defaults 5 s and 5 min.
	RetryMin, RetryMax time.Duration
	// Timeout bounds one REGISTER (with its digest retry); 10 s if 0.
	Timeout time.Duration
	// Logger gets a line when the registration succeeds after a failure,
	// fails, or ends.
	Logger *slog.Logger
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// RegistrationState is where a Registration stands.
type RegistrationState struct {
	Trunk      string `json:"trunk"`
	Registered bool   `json:"registered"`
	// Status is the SIP status of the last answer; 0 when none came.
	Status int `json:"status,omitempty"`
	// Error says why the last REGISTER failed; empty when Registered.
	Error string `json:"error,omitempty"`
	// Expires is when the current registration lapses unless refreshed.
	Expires time.Time `json:"expires,omitzero"`
	// Registrations counts successful REGISTERs (first one and refreshes).
	Registrations int `json:"registrations"`
	// Failures counts the REGISTERs failed in a row.
	Failures int `json:"failures,omitempty"`
}

// ErrRegisterRejected wraps a final non-2xx answer to REGISTER; ErrAuth
// is wrapped too when that answer is a challenge that digest could not
// satisfy (a wrong username or password).
var (
	ErrRegisterRejected = errors.New("sip register rejected")
	ErrAuth             = errors.New("sip digest authentication failed")
)

// Registration keeps the gateway registered at one trunk: REGISTER with
// digest on 401/407, refresh when three quarters of the granted lifetime
// have passed, re-register with back-off after a failure, and unregister
// (Expires: 0) when Run's context ends. One Call-ID for its lifetime and
// rising CSeq, as RFC 3261 §10.2.4 asks of refreshes.
type Registration struct {
	t      Trunk
	r      Requester
	o      RegisterOptions
	log    *slog.Logger
	callID string
	// contactFor, when set, gives the Contact of each REGISTER in place of
	// o.Contact: the Caller's own registrations over tls name the local
	// end of the TLS connection, which changes when it is dialled again.
	contactFor func(context.Context) (sip.Uri, error)

	mu      sync.Mutex
	cseq    uint32
	state   RegistrationState
	contact sip.Uri // the Contact of the last REGISTER sent
}

// NewRegistration returns a Registration of trunk t (as Config.Trunk
// returns it, defaults applied) through r. o.Contact is required.
func NewRegistration(t Trunk, r Requester, o RegisterOptions) (*Registration, error) {
	if o.Contact.Host == "" {
		return nil, errors.New("sip register: a contact address is required")
	}
	t = t.withDefaults()
	if o.Expires <= 0 {
		o.Expires = DefaultRegisterExpires
	}
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRegisterRetry
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(DefaultRegisterBackoff, o.RetryMin)
	}
	if o.Timeout <= 0 {
		o.Timeout = registerTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Registration{
		t: t, r: r, o: o, cseq: 1,
		log:    o.Logger.With("component", "sip-register", "trunk", t.Name),
		callID: sip.GenerateTagN(24) + "@verigate",
		state:  RegistrationState{Trunk: t.Name},
	}, nil
}

// State returns where the registration stands.
func (g *Registration) State() RegistrationState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state
}

// Run registers, refreshes and re-registers until ctx ends, then
// unregisters (bounded by a few seconds) and returns ctx's error.
func (g *Registration) Run(ctx context.Context) error {
	retry := g.o.RetryMin
	for {
		granted, err := g.register(ctx, g.o.Expires)
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			wait = retry
			retry = min(2*retry, g.o.RetryMax)
		} else {
			retry = g.o.RetryMin
			wait = max(granted*3/4, time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
			continue
		}
		break
	}
	if g.State().Registered {
		uctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := g.register(uctx, 0)
		cancel()
		if err != nil {
			g.log.Warn("sip unregister failed", "error", shortError(err))
		} else {
			g.log.Info("sip unregistered")
		}
	}
	return ctx.Err()
}

// register sends one REGISTER asking for expires (0 unregisters) and
// returns the lifetime granted.
func (g *Registration) register(ctx context.Context, expires time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, g.o.Timeout)
	defer cancel()
	secs := int(expires / time.Second)
	res, err := g.send(ctx, secs)
	if err == nil && res.StatusCode == sip.StatusIntervalToBrief {
		// 423: ask again with the registrar's Min-Expires.
		if h := res.GetHeader("Min-Expires"); h != nil {
			if n, perr := strconv.Atoi(strings.TrimSpace(h.Value())); perr == nil && n > secs {
				secs = n
				res, err = g.send(ctx, secs)
			}
		}
	}
	if err == nil && !res.IsSuccess() {
		err = fmt.Errorf("%w: %d %s", ErrRegisterRejected, res.StatusCode, res.Reason)
		if res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired {
			err = fmt.Errorf("%w: %w: check the trunk's username and password", err, ErrAuth)
		}
	}
	now := g.o.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	wasRegistered, prevFailures := g.state.Registered, g.state.Failures
	if res != nil {
		g.state.Status = res.StatusCode
	} else {
		g.state.Status = 0
	}
	if err != nil {
		g.state.Registered = false
		g.state.Error = shortError(err)
		g.state.Failures++
		if wasRegistered || prevFailures == 0 {
			g.log.Warn("sip register failed", "error", g.state.Error)
		}
		return 0, err
	}
	if secs == 0 {
		g.state.Registered, g.state.Expires, g.state.Error = false, time.Time{}, ""
		return 0, nil
	}
	granted := g.granted(res, time.Duration(secs)*time.Second)
	g.state.Registered, g.state.Error, g.state.Failures = true, "", 0
	g.state.Expires = now.Add(granted)
	g.state.Registrations++
	if !wasRegistered {
		g.log.Info("sip registered", "expires", granted)
	}
	return granted, nil
}

// send builds and sends one REGISTER, answering one digest challenge.
func (g *Registration) send(ctx context.Context, secs int) (*sip.Response, error) {
	req, err := newTrunkRequest(sip.REGISTER, g.t, "")
	if err != nil {
		return nil, err
	}
	host := req.Recipient.Host
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: g.t.FromUser, Host: host}, Params: sip.NewParams()}
	callID := sip.CallIDHeader(g.callID)
	g.mu.Lock()
	seq := g.cseq
	g.cseq++
	g.mu.Unlock()
	contact := &sip.ContactHeader{Address: g.o.Contact}
	if g.contactFor != nil {
		if contact.Address, err = g.contactFor(ctx); err != nil {
			return nil, fmt.Errorf("sip register: %w", err)
		}
	}
	g.mu.Lock()
	g.contact = contact.Address
	g.mu.Unlock()
	if g.t.Transport != "udp" && contact.Address.UriParams == nil {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", g.t.Transport)
	}
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.REGISTER})
	req.AppendHeader(contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(secs)))
	res, err := g.r.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("sip register: %w", err)
	}
	if (res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired) && g.t.Username != "" {
		res, err = g.r.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: g.t.Username, Password: g.t.Password})
		if err != nil {
			return nil, fmt.Errorf("sip register: %w", err)
		}
		g.mu.Lock()
		if c := req.CSeq(); c != nil && c.SeqNo >= g.cseq {
			g.cseq = c.SeqNo + 1
		}
		g.mu.Unlock()
	}
	return res, nil
}

// granted reads the lifetime the registrar gave our contact: its expires
// parameter in the answer's Contact, else the Expires header, else asked.
// It is called with g.mu held.
func (g *Registration) granted(res *sip.Response, asked time.Duration) time.Duration {
	sent := g.contact
	ours := sent.Host
	if sent.Port != 0 {
		ours += ":" + strconv.Itoa(sent.Port)
	}
	for _, h := range res.GetHeaders("Contact") {
		for _, c := range splitContacts(h.Value()) {
			if !strings.Contains(c, "@"+ours) && !strings.Contains(c, ":"+ours) {
				continue
			}
			if n, ok := headerParam(c, "expires"); ok {
				return time.Duration(n) * time.Second
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return asked
}

// splitContacts splits a Contact value at the commas outside <...> and quotes.
func splitContacts(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i, r := range v {
		switch {
		case r == '"':
			quoted = !quoted
		case quoted:
		case r == '<':
			depth++
		case r == '>':
			depth--
		case r == ',' && depth == 0:
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(v[start:]))
}

// headerParam returns the integer header parameter name of one contact
// (after the closing '>').
func headerParam(contact, name string) (int, bool) {
	if i := strings.LastIndexByte(contact, '>'); i >= 0 {
		contact = contact[i+1:]
	}
	for _, p := range strings.Split(contact, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(k, name) {
			n, err := strconv.Atoi(strings.Trim(v, `" `))
			return n, err == nil
		}
	}
	return 0, false
}
