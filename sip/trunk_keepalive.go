package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Requester sends one SIP request outside a dialog and returns its final
// response. *sipgo.Client satisfies it; give the keep-alive and the
// registration the client bound to sip.listen, so a trunk that admits
// traffic by source address sees the port calls come from.
type Requester interface {
	Do(ctx context.Context, req *sip.Request, opts ...sipgo.ClientRequestOption) (*sip.Response, error)
	DoDigestAuth(ctx context.Context, req *sip.Request, res *sip.Response, auth sipgo.DigestAuth) (*sip.Response, error)
}

var _ Requester = (*sipgo.Client)(nil)

// Defaults of KeepAliveOptions.
const (
	DefaultKeepAliveInterval = 30 * time.Second
	DefaultKeepAliveTimeout  = 5 * time.Second
)

// KeepAliveOptions shape a KeepAlive.
type KeepAliveOptions struct {
	// Interval between probes of one trunk; DefaultKeepAliveInterval if 0.
	Interval time.Duration
	// Timeout is how long a probe waits for an answer;
	// DefaultKeepAliveTimeout if 0.
	Timeout time.Duration
	// Logger gets a line when a trunk goes down or comes back.
	Logger *slog.Logger
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// TrunkHealth is what the last OPTIONS probe of a trunk found.
type TrunkHealth struct {
	Trunk string `json:"trunk"`
	// Up is true when the trunk answered the last probe at all: any SIP
	// response (even 401, 404 or 405) proves it is reachable, as Asterisk's
	// qualify counts it, except 503, which says it takes no calls now.
	Up bool `json:"up"`
	// Status is the SIP status of the last answer; 0 when none came.
	Status int `json:"status,omitempty"`
	// Error says why the last probe failed; empty when Up.
	Error string `json:"error,omitempty"`
	// RTT is how long the last answer took.
	RTT time.Duration `json:"rtt_ns,omitempty"`
	// Checked is when the last probe ended; zero before the first.
	Checked time.Time `json:"checked"`
	// Failures counts the probes failed in a row.
	Failures int `json:"failures,omitempty"`
}

// ErrTrunkDown is wrapped by KeepAlive.Ready when a trunk is not answering.
var ErrTrunkDown = errors.New("sip trunk not answering")

// KeepAlive probes every configured trunk with OPTIONS on an interval and
// keeps the result for /readyz and the logs. Run owns its goroutine.
type KeepAlive struct {
	trunks []Trunk
	r      Requester
	o      KeepAliveOptions
	log    *slog.Logger

	mu     sync.Mutex
	health map[string]TrunkHealth
}

// NewKeepAlive returns a KeepAlive for cfg's trunks sending through r.
func NewKeepAlive(cfg Config, r Requester, o KeepAliveOptions) *KeepAlive {
	if o.Interval <= 0 {
		o.Interval = DefaultKeepAliveInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultKeepAliveTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	k := &KeepAlive{r: r, o: o, log: o.Logger.With("component", "sip-keepalive"), health: map[string]TrunkHealth{}}
	for _, t := range cfg.Trunks {
		t = t.withDefaults()
		k.trunks = append(k.trunks, t)
		k.health[t.Name] = TrunkHealth{Trunk: t.Name}
	}
	return k
}

// Run probes every trunk at once, then every Interval, until ctx ends. It
// returns ctx's error.
func (k *KeepAlive) Run(ctx context.Context) error {
	tick := time.NewTicker(k.o.Interval)
	defer tick.Stop()
	for {
		var wg sync.WaitGroup
		for _, t := range k.trunks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k.probe(ctx, t)
			}()
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Probe sends one OPTIONS to the trunk called name now and returns what it
// found. ErrNoTrunk if there is no such trunk.
func (k *KeepAlive) Probe(ctx context.Context, name string) (TrunkHealth, error) {
	for _, t := range k.trunks {
		if t.Name == name {
			return k.probe(ctx, t), nil
		}
	}
	return TrunkHealth{}, fmt.Errorf("%w: %q", ErrNoTrunk, name)
}

// Health returns the last result of every trunk, in configuration order.
func (k *KeepAlive) Health() []TrunkHealth {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]TrunkHealth, 0, len(k.trunks))
	for _, t := range k.trunks {
		out = append(out, k.health[t.Name])
	}
	return out
}

// Ready returns nil when every trunk answered its last probe, otherwise an
// error wrapping ErrTrunkDown that names each trunk down (a trunk not yet
// probed counts as down).
func (k *KeepAlive) Ready() error {
	var down []string
	for _, h := range k.Health() {
		if !h.Up {
			reason := h.Error
			if reason == "" {
				reason = "not probed yet"
			}
			down = append(down, h.Trunk+": "+reason)
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("%w: %s", ErrTrunkDown, strings.Join(down, "; "))
	}
	return nil
}

func (k *KeepAlive) probe(ctx context.Context, t Trunk) TrunkHealth {
	ctx, cancel := context.WithTimeout(ctx, k.o.Timeout)
	defer cancel()
	start := k.o.Now()
	req, err := newTrunkRequest(sip.OPTIONS, t, "")
	var res *sip.Response
	if err == nil {
		req.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
		res, err = k.r.Do(ctx, req)
	}
	h := TrunkHealth{Trunk: t.Name, Checked: k.o.Now()}
	switch {
	case err != nil:
		h.Error = shortError(err)
	case res.StatusCode == sip.StatusServiceUnavailable:
		h.Status = res.StatusCode
		h.Error = "503 " + res.Reason
	default:
		h.Up, h.Status, h.RTT = true, res.StatusCode, h.Checked.Sub(start)
	}
	k.mu.Lock()
	prev := k.health[t.Name]
	if !h.Up {
		h.Failures = prev.Failures + 1
	}
	k.health[t.Name] = h
	k.mu.Unlock()
	switch {
	case h.Up && !prev.Up:
		k.log.Info("sip trunk answering", "trunk", t.Name, "status", h.Status, "rtt", h.RTT)
	case !h.Up && (prev.Up || prev.Checked.IsZero()):
		k.log.Warn("sip trunk not answering", "trunk", t.Name, "error", h.Error)
	}
	return h
}

// newTrunkRequest builds a request for method to trunk t (Request-URI
// sip:[user@]host:port with the trunk's transport), From the trunk's
// From user. sipgo adds Via, To, Call-ID, CSeq and Max-Forwards.
func newTrunkRequest(method sip.RequestMethod, t Trunk, user string) (*sip.Request, error) {
	host, ps, err := net.SplitHostPort(t.Address)
	if err != nil {
		return nil, fmt.Errorf("trunk %s address: %w", t.Name, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return nil, fmt.Errorf("trunk %s port: %w", t.Name, err)
	}
	uri := sip.Uri{Scheme: "sip", User: user, Host: host, Port: port}
	if t.Transport != "" && t.Transport != "udp" {
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", t.Transport)
	}
	req := sip.NewRequest(method, uri)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: t.FromUser, Host: host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(sip.NewHeader("User-Agent", "Verigate"))
	return req, nil
}

// shortError keeps log and readiness lines short and free of addresses the
// operator already knows.
func shortError(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	s := err.Error()
	if len(s) > 160 {
		s = s[:160]
	}
	return s
}
