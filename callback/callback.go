// Package callback delivers status changes to the client's callback_url:
// JSON, signed with `Verigate-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
// "t.body">` and with the Standard Webhooks headers (webhook-id,
// webhook-timestamp, webhook-signature), as callbacks.signatures chooses.
// Every attempt of one notice carries the same delivery id
// (Verigate-Delivery, equal to webhook-id), so receivers drop duplicates.
//
// Notices wait in a Queue. With Redis it is a RedisQueue that every gateway
// on that Redis shares: Notify stores the notice there before it returns,
// so it survives a restart, and any gateway's workers deliver it, at least
// once. A worker claims one due notice with a lease; until the lease ends
// no other worker gets it, and if its gateway dies the lease ends and
// another takes it. The queue is a sorted set of due times driven by Lua
// scripts (redis.NewScript), not a stream with consumer groups: a retry
// must wait a chosen time (back-off, the receiver's Retry-After), which a
// sorted set expresses as a score, while a stream entry is delivered again
// only when claimed by XAUTOCLAIM after a fixed idle time, so delayed
// retries would need a second structure beside the stream anyway.
//
// When Redis does not accept a notice within callbacks.enqueue_timeout,
// Notify keeps it in this gateway's memory instead (logged, and counted in
// verigate_callback_queue_fallbacks_total) and delivers it from there:
// nothing is dropped for an outage, but those notices end with the process.
// Without Redis (serve --dev) the memory queue is the only one. Both pass
// the same contract tests (internal/callbacktest).
//
// Failed attempts (network errors, 408, 429, 5xx) are retried after the
// receiver's Retry-After (seconds or an HTTP date, at most
// callbacks.max_backoff), or else after an exponential back-off with
// jitter; a notice still undelivered after callbacks.max_attempts attempts
// or callbacks.max_age is dropped, logged (ids only: the body's number is
// masked and never logged) and counted. A 2xx is delivered; any other 4xx,
// and a 3xx (not followed), end the notice.
//
// Destinations on the gateway's own networks (loopback, private,
// link-local, CGNAT, ...) and cloud metadata endpoints are refused unless
// the operator allows private networks, checked on the URL at start and on
// every address dialled; redirects are not followed.
package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/verigate/verigate/internal/httpclient"
	"github.com/verigate/verigate/verify"
)

// Signature formats, the values of Config.Signatures.
const (
	SignaturesBoth     = "both"     // Verigate-Signature and the Standard Webhooks headers
	SignaturesVerigate = "verigate" // Verigate-Signature only
	SignaturesStandard = "standard" // the Standard Webhooks headers only
)

// Config configures callbacks; a Secret turns them on.
type Config struct {
	// Secret is shared with the IdPs, who verify the signatures: at least
	// 16 characters used as they are, or "whsec_<base64 of at least 16
	// bytes>" (the Standard Webhooks form), whose decoded bytes are the key
	// of both signature formats.
	Secret      string        `yaml:"secret" secret:"true"`
	Signatures  string        `yaml:"signatures"`   // both (default), verigate or standard
	MaxAttempts int           `yaml:"max_attempts"` // attempts per notice (default 15)
	MaxAge      time.Duration `yaml:"max_age"`      // a notice older is dropped instead of retried (default 24h)
	Backoff     time.Duration `yaml:"backoff"`      // first retry delay, doubled each time, with jitter (default 1s)
	MaxBackoff  time.Duration `yaml:"max_backoff"`  // longest wait between attempts, and the bound on a receiver's Retry-After (default 10m)
	Timeout     time.Duration `yaml:"timeout"`      // per request (default 5s)
	QueueSize   int           `yaml:"queue_size"`   // notices waiting, per queue; more are dropped and counted (default 10000)
	// Lease is how long a worker holds a notice it attempts; a gateway that
	// dies holding one delays it by this much. More than Timeout (default 30s).
	Lease          time.Duration `yaml:"lease"`
	PollInterval   time.Duration `yaml:"poll_interval"`   // how often idle workers look for due notices (default 1s)
	EnqueueTimeout time.Duration `yaml:"enqueue_timeout"` // how long Notify waits for Redis before keeping the notice in memory (default 1s)
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

// Validate reports a setting New would refuse, naming it as the
// configuration file does under prefix.
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.Secret != "" {
		if _, err := Key([]byte(c.Secret)); err != nil {
			errs = append(errs, fmt.Errorf("%s.secret: %w", prefix, err))
		}
	}
	switch c.Signatures {
	case "", SignaturesBoth, SignaturesVerigate, SignaturesStandard:
	default:
		errs = append(errs, fmt.Errorf("%s.signatures: must be both, verigate or standard, not %q", prefix, c.Signatures))
	}
	c = c.WithDefaults()
	if c.Lease <= c.Timeout {
		errs = append(errs, fmt.Errorf("%s.lease: must be longer than %s.timeout (%s)", prefix, prefix, c.Timeout))
	}
	if c.MaxBackoff < c.Backoff {
		errs = append(errs, fmt.Errorf("%s.max_backoff: must be at least %s.backoff (%s)", prefix, prefix, c.Backoff))
	}
	return errors.Join(errs...)
}

// WithDefaults returns c with the default of every setting left unset.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Signatures == "" {
		c.Signatures = SignaturesBoth
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 15
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 10000
	}
	def(&c.MaxAge, 24*time.Hour)
	def(&c.Backoff, time.Second)
	def(&c.MaxBackoff, 10*time.Minute)
	def(&c.Timeout, 5*time.Second)
	def(&c.Lease, 30*time.Second)
	def(&c.PollInterval, time.Second)
	def(&c.EnqueueTimeout, time.Second)
	return c
}

// Notice is the JSON body of a callback.
type Notice struct {
	ID string `json:"id"`
	// Kind is "message" for a relayed message (POST /v1/messages), absent
	// for a verification.
	Kind   verify.Kind   `json:"kind,omitempty"`
	Status verify.Status `json:"status"`
	Reason string        `json:"reason,omitempty"`
	// To is masked: the IdP knows the number it asked for.
	To      string         `json:"to"`
	Channel verify.Channel `json:"channel"`
	At      time.Time      `json:"at"`
	// Seq grows with every change of the verification (the id of the
	// event stream's events): callbacks are retried each on its own
	// schedule and can arrive out of order, so a receiver keeps the
	// highest it has seen and drops a lower one.
	Seq int `json:"seq"`
}

// Notifier is a verify.Notifier that delivers callbacks from its own
// workers; Run owns them.
type Notifier struct {
	cfg     Config
	key     []byte
	policy  policy
	client  *http.Client
	log     *slog.Logger
	now     func() time.Time
	jitter  func(time.Duration) time.Duration
	metrics *metrics

	// queue is where Notify puts notices (a RedisQueue, or memory);
	// memory also takes the notices queue refused while Redis failed.
	queue  Queue
	memory *MemoryQueue
	wake   chan struct{} // a notice was queued here: look now, not at the next poll

	claimFailing atomic.Bool // the last claim failed: logged once per outage

	formats map[string]Format // by the name before ':' in Verification.CallbackFormat
}

// Format writes the callbacks of the verifications (relayed messages)
// whose CallbackFormat names it, in another provider's wire format and
// signed as that provider signs: the Twilio-compatible Messages API's
// status callbacks (api/twiliocompat). They are queued, retried and sent
// through the same guarded client as Verigate's own; the Verigate and
// Standard Webhooks signature headers are left off, since the body is not
// Verigate's.
type Format interface {
	// Notice returns the body of v's callback, its content type and the
	// headers that sign it, computed now (a signature that does not depend
	// on the time, such as X-Twilio-Signature, is the same on every retry).
	Notice(v *verify.Verification) (body []byte, contentType string, header map[string]string, err error)
}

// WithFormat writes the callbacks of verifications whose CallbackFormat is
// name, or starts with name and ':', with f.
func WithFormat(name string, f Format) Option {
	return func(n *Notifier) {
		if n.formats == nil {
			n.formats = map[string]Format{}
		}
		n.formats[name] = f
	}
}

var (
	_ verify.Notifier        = (*Notifier)(nil)
	_ verify.CallbackChecker = (*Notifier)(nil)
)

// Option changes what New builds.
type Option func(*Notifier)

// WithQueue puts notices in q (a RedisQueue) instead of memory.
func WithQueue(q Queue) Option { return func(n *Notifier) { n.queue = q } }

// WithClock sets the clock of signatures and ages, and the jitter added to
// back-off (tests).
func WithClock(now func() time.Time, jitter func(time.Duration) time.Duration) Option {
	return func(n *Notifier) {
		if now != nil {
			n.now = now
		}
		if jitter != nil {
			n.jitter = jitter
		}
	}
}

// New returns a Notifier. client may be nil for the default one, which
// refuses the addresses cfg does not allow on every connection it makes
// (net.Dialer.Control, after name resolution), uses no proxy from the
// environment (the check is about the IdP's address, not a proxy's) and
// follows no redirect. A client given is used as it is: tests only.
// Notices go to memory unless WithQueue names another queue.
func New(cfg Config, client *http.Client, log *slog.Logger, opts ...Option) (*Notifier, error) {
	if err := cfg.Validate("callbacks"); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	key, err := Key([]byte(cfg.Secret))
	if err != nil {
		return nil, err
	}
	p := policy{allowPrivate: cfg.PrivateNetworksAllowed()}
	if client == nil {
		client = guardedClient(p, cfg.Timeout)
	}
	if log == nil {
		log = slog.Default()
	}
	n := &Notifier{
		cfg: cfg, key: key, policy: p, client: client, log: log, now: time.Now, jitter: randJitter,
		metrics: newMetrics(), wake: make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(n)
	}
	n.memory = NewMemoryQueue(cfg.QueueSize, n.now)
	if n.queue == nil {
		n.queue = n.memory
	}
	return n, nil
}

// guardedClient is the callback client: p checks every address it dials,
// and a redirect is returned as the response instead of followed (a
// redirect would turn the signed POST into a GET to wherever the IdP, or
// whoever answers for it, points).
func guardedClient(p policy, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}
	return &http.Client{
		// Idle connections kept per IdP for reuse under load; no proxy,
		// which would hide the address the dialer checks.
		Transport: httpclient.DrainBodies(httpclient.NewTransport(httpclient.Options{
			DialContext: dialer.DialContext, NoProxy: true,
			TLSHandshakeTimeout: timeout, ResponseHeaderTimeout: timeout,
		})),
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

// Notify implements verify.Notifier. It returns once the notice is
// queued: in Redis when that is the queue and it answers within
// EnqueueTimeout, otherwise in memory (logged and counted). A full queue
// drops the notice, logged and counted (the IdP can always GET the
// verification).
func (n *Notifier) Notify(v *verify.Verification) {
	log := n.log.With("verification", v.ID)
	var (
		body        []byte
		contentType string
		header      map[string]string
		err         error
	)
	if v.CallbackFormat != "" {
		name, _, _ := strings.Cut(v.CallbackFormat, ":")
		f := n.formats[name]
		if f == nil {
			log.Error("callback format unknown to this gateway, notice dropped", "format", name)
			return
		}
		body, contentType, header, err = f.Notice(v)
	} else {
		body, err = json.Marshal(Notice{
			ID: v.ID, Kind: v.Kind, Status: v.Status, Reason: v.Reason, To: verify.MaskNumber(v.To), Channel: v.Channel, At: v.UpdatedAt, Seq: v.Seq(),
		})
	}
	if err != nil {
		log.Error("callback encode", "err", err)
		return
	}
	id, err := newToken()
	if err != nil {
		log.Error("callback delivery id", "err", err)
		return
	}
	j := Job{ID: "cb_" + id, Verification: v.ID, URL: v.CallbackURL, Body: body, Created: n.now(),
		ContentType: contentType, Header: header}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.EnqueueTimeout)
	defer cancel()
	err = n.queue.Push(ctx, j)
	// A push that timed out may still have reached Redis: then both queues
	// hold the notice, and the receiver gets it twice under one delivery id.
	if err != nil && !errors.Is(err, ErrQueueFull) && n.queue != Queue(n.memory) {
		log.Error("callback queue unavailable, notice kept in this gateway's memory", "delivery", j.ID, "err", err)
		n.metrics.fallbacks.Inc()
		err = n.memory.Push(ctx, j)
	}
	if err != nil {
		log.Warn("callback notice dropped", "delivery", j.ID, "status", v.Status, "err", err)
		n.metrics.deliveries.WithLabelValues("queue_full").Inc()
		return
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run delivers queued notices with workers workers until ctx ends.
func (n *Notifier) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() { n.work(ctx) })
	}
	wg.Go(func() { n.sampleDepth(ctx) })
	wg.Wait()
	// The workers are done: nothing will reuse the connections to the IdPs.
	n.client.CloseIdleConnections()
	if left, _ := n.memory.Len(context.Background()); left > 0 {
		// They end with the process: say so, and count them, rather than
		// lose them quietly.
		n.log.Warn("callback notices in memory undelivered at shutdown", "count", left)
		n.metrics.deliveries.WithLabelValues("shutdown").Add(float64(left))
	}
}

// Flush waits, while Run's workers keep delivering, until no notice is
// left in this gateway's memory or ctx ends, and returns how many are left
// then. Notices in a Redis queue are not waited for: they outlive the
// process, and every gateway on that Redis delivers them. A gateway
// shutting down flushes before it stops Run.
func (n *Notifier) Flush(ctx context.Context) int {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		left, _ := n.memory.Len(ctx) // memory never fails
		if left == 0 || ctx.Err() != nil {
			return left
		}
		// Wake a worker for notices whose retry is due (Notify's wake
		// covers only new ones).
		select {
		case n.wake <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// work claims and attempts due notices, its own queue's first, until ctx
// ends; idle, it waits for a Notify or the poll interval.
func (n *Notifier) work(ctx context.Context) {
	t := time.NewTicker(n.cfg.PollInterval)
	defer t.Stop()
	for ctx.Err() == nil {
		if n.attemptNext(ctx, n.queue) || (n.queue != Queue(n.memory) && n.attemptNext(ctx, n.memory)) {
			continue
		}
		select {
		case <-ctx.Done():
		case <-n.wake:
		case <-t.C:
		}
	}
}

// attemptNext claims one due notice from q and attempts it; false when
// there was none (or q failed).
func (n *Notifier) attemptNext(ctx context.Context, q Queue) bool {
	// Bounded, so that an unanswering Redis does not hold up the notices
	// kept in memory meanwhile.
	c, cancel := context.WithTimeout(ctx, n.cfg.EnqueueTimeout)
	j, ok, err := q.Claim(c, n.cfg.Lease)
	cancel()
	if err != nil {
		// Once per outage, not once per worker and poll.
		if ctx.Err() == nil && n.claimFailing.CompareAndSwap(false, true) {
			n.log.Warn("callback queue unavailable: notices wait until it answers", "err", err)
		}
		return false
	}
	if n.claimFailing.CompareAndSwap(true, false) {
		n.log.Info("callback queue answers again")
	}
	if ok {
		n.attempt(ctx, q, j)
	}
	return ok
}

func (n *Notifier) sampleDepth(ctx context.Context) {
	t := time.NewTicker(max(n.cfg.PollInterval, 5*time.Second))
	defer t.Stop()
	for {
		qs := map[string]Queue{"memory": n.memory}
		if n.queue != Queue(n.memory) {
			qs["redis"] = n.queue
		}
		for name, q := range qs {
			c, cancel := context.WithTimeout(ctx, n.cfg.EnqueueTimeout)
			if d, err := q.Len(c); err == nil {
				n.metrics.depth.WithLabelValues(name).Set(float64(d))
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// attempt posts j once and then finishes it (delivered, or refused for
// good), reschedules it, or drops it when its attempts or age are spent.
func (n *Notifier) attempt(ctx context.Context, q Queue, j Job) {
	log := n.log.With("verification", j.Verification, "delivery", j.ID, "attempt", j.Attempt)
	// Finishing a claim must outlive a shutdown that ends ctx, or the
	// notice would wait for its lease to end.
	finish := func(f func(context.Context) error) {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.EnqueueTimeout)
		defer cancel()
		if err := f(c); errors.Is(err, ErrLeaseLost) {
			log.Warn("callback lease ended before the attempt did: another gateway may deliver it again", "lease", n.cfg.Lease)
		} else if err != nil {
			log.Warn("callback queue update", "err", err)
		}
	}
	done := func(result string) {
		n.metrics.deliveries.WithLabelValues(result).Inc()
		finish(func(c context.Context) error { return q.Done(c, j) })
	}

	if u, err := url.Parse(j.URL); err != nil {
		log.Warn("callback undeliverable: bad url", "err", err)
		done("refused")
		return
	} else if err := n.policy.checkURL(u); err != nil {
		// Stored before the gateway refused it (or under another setting).
		log.Warn("callback destination not allowed", "err", err)
		done("forbidden")
		return
	}
	res, err := n.post(ctx, j)
	if ctx.Err() != nil {
		// Shutting down: hand the notice back, due now, for whoever runs next.
		finish(func(c context.Context) error { return q.Retry(c, j, 0) })
		return
	}
	status := 0
	if res != nil {
		status = res.StatusCode
	}
	var reason string
	switch {
	case err == nil && status/100 == 2:
		done("delivered")
		return
	case err == nil && status/100 == 3:
		log.Warn("callback redirected: not followed, not delivered", "status", status)
		done("refused")
		return
	case err == nil && status/100 == 4 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
		log.Warn("callback refused", "status", status)
		done("refused")
		return
	case errors.Is(err, ErrForbiddenAddress):
		var ae *AddressError
		errors.As(err, &ae)
		log.Warn("callback destination not allowed", "host", ae.Host, "class", ae.Class)
		done("forbidden")
		return
	case err != nil:
		reason = "network"
	case status/100 == 5:
		reason = "http_5xx"
	default:
		reason = fmt.Sprintf("http_%d", status)
	}
	n.metrics.failures.WithLabelValues(reason).Inc()

	now := n.now()
	// A Retry-After may lengthen the wait, never shorten it: "0" or a past
	// date would otherwise retry at once, again and again.
	delay, asked := backoff(j.Attempt, n.cfg.Backoff, n.cfg.MaxBackoff, n.jitter), false
	if res != nil {
		if d, ok := retryAfter(res.Header, now, n.cfg.MaxBackoff); ok && d > delay {
			delay, asked = d, true
		}
	}
	age := now.Sub(j.Created)
	if j.Attempt >= n.cfg.MaxAttempts || age+delay > n.cfg.MaxAge {
		log.Warn("callback undelivered, dropped", "attempts", j.Attempt, "age", age.Round(time.Second), "status", status, "err", err)
		done("expired")
		return
	}
	log.Debug("callback attempt failed, retrying", "status", status, "err", err, "in", delay, "retry_after", asked)
	n.metrics.retries.Inc()
	finish(func(c context.Context) error { return q.Retry(c, j, delay) })
}

// maxDrain is the most of a response's body post reads before closing it.
const maxDrain = 4 << 10

// post sends j once, signed now; the response's body is discarded (read
// up to maxDrain, so that its connection is reused) and closed.
func (n *Notifier) post(ctx context.Context, j Job) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.URL, bytes.NewReader(j.Body))
	if err != nil {
		return nil, fmt.Errorf("callback request: %w", err)
	}
	now := n.now()
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Verigate-Callback/1")
	h.Set(DeliveryHeader, j.ID)
	if j.ContentType != "" {
		// Another provider's format (Format), signed by its own headers.
		h.Set("Content-Type", j.ContentType)
		for k, v := range j.Header {
			h.Set(k, v)
		}
	} else if n.cfg.Signatures != SignaturesStandard {
		h.Set(SignatureHeader, signKey(n.key, j.ID, now, j.Body))
	}
	if j.ContentType == "" && n.cfg.Signatures != SignaturesVerigate {
		h.Set(WebhookIDHeader, j.ID)
		h.Set(WebhookTimestampHeader, strconv.FormatInt(now.Unix(), 10))
		h.Set(WebhookSignatureHeader, signWebhookKey(n.key, j.ID, now, j.Body))
	}
	res, err := n.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("callback post: %w", err)
	}
	// Read what little the body holds, so the connection can carry the
	// next callback; a longer one is not worth the wait.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxDrain))
	res.Body.Close()
	return res, nil
}
