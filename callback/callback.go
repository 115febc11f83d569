// Package callback delivers status changes to the client's callback_url:
// JSON, signed with `Verigate-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
// "t.body">`, retried with exponential back-off. Destinations on the
// gateway's own networks (loopback, private, link-local, CGNAT, ...) and
// cloud metadata endpoints are refused unless the operator allows private
// networks, checked on the URL at start and on every address dialled;
// redirects are not followed.
package callback

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/verigate/verigate/verify"
)

// SignatureHeader carries the signature of a callback.
const SignatureHeader = "Verigate-Signature"

// Config configures callbacks; a Secret turns them on.
type Config struct {
	Secret      string        `yaml:"secret" secret:"true"` // shared with the IdPs, who verify the signature
	MaxAttempts int           `yaml:"max_attempts"`         // deliveries tried per notice (default 6)
	Backoff     time.Duration `yaml:"backoff"`              // first retry delay, doubled each time (default 1s)
	Timeout     time.Duration `yaml:"timeout"`              // per request (default 5s)
	QueueSize   int           `yaml:"queue_size"`           // notices waiting; more are dropped and logged (default 1024)
	// AllowPrivateNetworks lets callbacks reach loopback, private (RFC
	// 1918, RFC 4193), link-local, CGNAT, unspecified, multicast and
	// reserved addresses: an IdP on the gateway's own network. Cloud
	// metadata endpoints stay refused. Unset means false; `serve --dev`
	// makes unset mean true.
	AllowPrivateNetworks *bool `yaml:"allow_private_networks"`
}

// PrivateNetworksAllowed reports the effective AllowPrivateNetworks.
func (c Config) PrivateNetworksAllowed() bool {
	return c.AllowPrivateNetworks != nil && *c.AllowPrivateNetworks
}

// Notice is the JSON body of a callback.
type Notice struct {
	ID     string        `json:"id"`
	Status verify.Status `json:"status"`
	Reason string        `json:"reason,omitempty"`
	// To is masked: the IdP knows the number it asked for.
	To      string         `json:"to"`
	Channel verify.Channel `json:"channel"`
	At      time.Time      `json:"at"`
}

type job struct {
	id   string // the verification's, for the log
	url  string
	body []byte
}

// Notifier is a verify.Notifier that delivers callbacks from its own
// workers; Run owns them.
type Notifier struct {
	cfg    Config
	policy policy
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	queue  chan job
}

var (
	_ verify.Notifier        = (*Notifier)(nil)
	_ verify.CallbackChecker = (*Notifier)(nil)
)

// New returns a Notifier. client may be nil for the default one, which
// refuses the addresses cfg does not allow on every connection it makes
// (net.Dialer.Control, after name resolution), uses no proxy from the
// environment (the check is about the IdP's address, not a proxy's) and
// follows no redirect. A client given is used as it is: tests only.
func New(cfg Config, client *http.Client, log *slog.Logger) (*Notifier, error) {
	if len(cfg.Secret) < 16 {
		return nil, errors.New("callback: secret must be at least 16 characters")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	p := policy{allowPrivate: cfg.PrivateNetworksAllowed()}
	if client == nil {
		client = guardedClient(p, cfg.Timeout)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Notifier{cfg: cfg, policy: p, client: client, log: log, now: time.Now, queue: make(chan job, cfg.QueueSize)}, nil
}

// guardedClient is the callback client: p checks every address it dials,
// and a redirect is returned as the response instead of followed (a
// redirect would turn the signed POST into a GET to wherever the IdP, or
// whoever answers for it, points).
func guardedClient(p policy, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           64,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
		},
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CheckCallbackURL implements verify.CallbackChecker: it refuses, before
// any connection, a callback_url whose host is an address this Notifier
// would not dial, a numeric host written in a form resolvers disagree on,
// or a name that is the machine itself or a cloud metadata service. Names
// are resolved only when dialled, and checked again there.
func (n *Notifier) CheckCallbackURL(u *url.URL) error {
	return n.policy.checkURL(u)
}

// Notify implements verify.Notifier. It never blocks: a full queue drops
// the notice with a warning (the IdP can always GET the verification).
func (n *Notifier) Notify(v *verify.Verification) {
	body, err := json.Marshal(Notice{
		ID: v.ID, Status: v.Status, Reason: v.Reason, To: verify.MaskNumber(v.To), Channel: v.Channel, At: v.UpdatedAt,
	})
	if err != nil {
		n.log.Error("callback encode", "verification", v.ID, "err", err)
		return
	}
	select {
	case n.queue <- job{id: v.ID, url: v.CallbackURL, body: body}:
	default:
		n.log.Warn("callback queue full, notice dropped", "verification", v.ID, "status", v.Status)
	}
}

// Run delivers queued notices with workers workers until ctx ends.
func (n *Notifier) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-n.queue:
					n.deliver(ctx, j)
				}
			}
		})
	}
	wg.Wait()
}

// deliver tries j until a 2xx, a 4xx other than 408/429 (the IdP refused
// it for good), a 3xx (not followed), a refused destination, the attempts
// run out, or ctx ends.
func (n *Notifier) deliver(ctx context.Context, j job) {
	log := n.log.With("verification", j.id)
	if u, err := url.Parse(j.url); err != nil {
		log.Warn("callback undeliverable: bad url", "err", err)
		return
	} else if err := n.policy.checkURL(u); err != nil {
		// Stored before the gateway refused it (or under another setting).
		log.Warn("callback destination not allowed", "err", err)
		return
	}
	delay := n.cfg.Backoff
	for attempt := 1; ; attempt++ {
		status, err := n.post(ctx, j)
		switch {
		case err == nil && status/100 == 2:
			return
		case err == nil && status/100 == 3:
			log.Warn("callback redirected: not followed, not delivered", "status", status)
			return
		case err == nil && status/100 == 4 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
			log.Warn("callback refused", "status", status)
			return
		case errors.Is(err, ErrForbiddenAddress):
			var ae *AddressError
			errors.As(err, &ae)
			log.Warn("callback destination not allowed", "host", ae.Host, "class", ae.Class)
			return
		case attempt >= n.cfg.MaxAttempts:
			log.Warn("callback undelivered", "attempts", attempt, "status", status, "err", err)
			return
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay *= 2
	}
}

func (n *Notifier) post(ctx context.Context, j job) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, bytes.NewReader(j.body))
	if err != nil {
		return 0, fmt.Errorf("callback request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Verigate-Callback/1")
	req.Header.Set(SignatureHeader, Sign([]byte(n.cfg.Secret), n.now(), j.body))
	res, err := n.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("callback post: %w", err)
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// Sign returns the signature header value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header as an IdP should: the HMAC matches and
// the timestamp is within tolerance of now (refusing replays).
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range bytes.Split([]byte(header), []byte(",")) {
		k, v, _ := bytes.Cut(part, []byte("="))
		switch string(k) {
		case "t":
			ts = string(v)
		case "v1":
			sig = string(v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("callback: malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("callback: signature timestamp outside tolerance")
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return errors.New("callback: signature mismatch")
	}
	return nil
}
