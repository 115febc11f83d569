package twilio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	twilio "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/verigate/verigate/internal/httpclient"
	"github.com/verigate/verigate/verify"
)

// ProviderName is the name routes and verify.Config use for Twilio.
const ProviderName = "twilio"

// Provider sends SMS through Twilio's Messages API and places calls
// through its Calls API, with webhook and status callback URLs under the
// gateway's public URL.
type Provider struct {
	cfg   Config
	rest  *api.ApiService
	seal  *sealer
	urls  urls
	log   *slog.Logger
	now   func() time.Time
	close func()
}

var (
	_ verify.Sender = (*Provider)(nil)
	_ verify.Caller = (*Provider)(nil)
)

// Option adjusts a Provider or Webhooks.
type Option func(*options)

type options struct {
	transport http.RoundTripper
	log       *slog.Logger
	now       func() time.Time
	texts     Texts
	audio     Audio
}

// WithTransport sets the HTTP transport REST requests go through, below
// the base-URL rewrite; if unset, the Provider makes its own
// (httpclient.NewTransport), which keeps connections to Twilio for reuse
// under load. Provider.Close closes its idle connections either way.
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.transport = rt } }

// WithLogger sets the logger (slog.Default if unset).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithNow sets the clock (time.Now if unset).
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithTexts sets the prompt texts, Say languages and voices (a
// *prompts.Catalogue satisfies Texts); the built-in catalogue if unset.
func WithTexts(t Texts) Option { return func(o *options) { o.texts = t } }

// WithAudio sets the recordings played in VoicePlay mode and served on
// RouteAudio; unset, the Texts serve as Audio when they satisfy it (a
// *prompts.Catalogue does).
func WithAudio(a Audio) Option { return func(o *options) { o.audio = a } }

func buildOptions(opts []Option) options {
	o := options{log: slog.Default(), now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// New returns a Provider for cfg, which must pass Validate.
func New(cfg Config, opts ...Option) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := buildOptions(opts)
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("twilio base url: %w", err)
	}
	s, err := newSealer(cfg.Secret)
	if err != nil {
		return nil, err
	}
	user, pass := cfg.AccountSID, cfg.AuthToken
	if cfg.APIKey != "" {
		user, pass = cfg.APIKey, cfg.APISecret
	}
	next := o.transport
	if next == nil {
		next = httpclient.NewTransport(httpclient.Options{ResponseHeaderTimeout: cfg.RequestTimeout})
	}
	// twilio-go decodes an answer and closes it without reading to its end;
	// drained, the connection goes back to the pool for the next message.
	transport := &rebase{base: base, next: httpclient.DrainBodies(next)}
	c := &client.Client{
		Credentials: client.NewCredentials(user, pass),
		// twilio-go has no base-URL setting: the API host is a constant, so
		// the transport rewrites scheme and host (DESIGN.md, stack facts).
		HTTPClient: &http.Client{
			Transport: transport,
			Timeout:   cfg.RequestTimeout,
			// As twilio-go's own default client: never follow redirects.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	c.SetAccountSid(cfg.AccountSID)
	rc := twilio.NewRestClientWithParams(twilio.ClientParams{Client: c})
	return &Provider{
		cfg: cfg, rest: rc.Api, seal: s, urls: urls{base: cfg.PublicURL + PathPrefix},
		log: o.log, now: o.now, close: transport.closeIdle,
	}, nil
}

// Close releases idle connections.
func (p *Provider) Close() { p.close() }

// Send implements verify.Sender: one message through the Messages API,
// with a status callback that carries the verification id and the
// message's attempt number. twilio-go
// takes no context: ctx is checked before the request, and
// Config.RequestTimeout bounds the request itself.
func (p *Provider) Send(ctx context.Context, m verify.Message) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	params := &api.CreateMessageParams{}
	params.SetTo(m.To)
	params.SetBody(m.Body)
	switch {
	case m.SenderID != "":
		params.SetFrom(m.SenderID)
	case p.cfg.MessagingServiceSID != "":
		params.SetMessagingServiceSid(p.cfg.MessagingServiceSID)
	default:
		params.SetFrom(p.cfg.From)
	}
	params.SetStatusCallback(p.urls.smsStatus(m.VerificationID, m.Attempt))
	msg, err := p.rest.CreateMessage(params)
	if err != nil {
		return "", fmt.Errorf("twilio create message: %w", restError(err))
	}
	sid := deref(msg.Sid)
	p.log.Info("twilio message created", "verification", m.VerificationID, "to", verify.MaskNumber(m.To), "sid", sid)
	return sid, nil
}

// Call implements verify.Caller: one call through the Calls API whose
// TwiML comes from the voice webhook. The call's context (and, in code
// mode, the code) is sealed into the webhook URL; Twilio reports progress
// to the call status webhook. ctx as for Send.
func (p *Provider) Call(ctx context.Context, c verify.Call) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	from := c.CallerID
	if from == "" {
		from = p.cfg.From
	}
	if from == "" {
		return "", errors.New("twilio call: no caller id (twilio.from)")
	}
	token, err := p.seal.seal(callContext{
		ID: c.VerificationID, Mode: c.Mode, Locale: c.Locale, Code: c.Code, Attempt: c.Attempt,
		Expires: p.now().Add(DefaultCallTTL).Unix(),
	})
	if err != nil {
		return "", err
	}
	params := &api.CreateCallParams{}
	params.SetTo(c.To)
	params.SetFrom(from)
	params.SetUrl(p.urls.voice(token))
	params.SetMethod(http.MethodPost)
	params.SetStatusCallback(p.urls.callStatus(c.VerificationID, c.Attempt, c.Mode))
	params.SetStatusCallbackMethod(http.MethodPost)
	params.SetStatusCallbackEvent([]string{"initiated", "ringing", "answered", "completed"})
	params.SetTimeout(int(p.cfg.RingTimeout / time.Second))
	call, err := p.rest.CreateCall(params)
	if err != nil {
		return "", fmt.Errorf("twilio create call: %w", restError(err))
	}
	sid := deref(call.Sid)
	p.log.Info("twilio call created", "verification", c.VerificationID, "to", verify.MaskNumber(c.To), "mode", c.Mode, "sid", sid)
	return sid, nil
}

// RestError is a Twilio REST API error: its error code and HTTP status.
type RestError struct {
	Status  int
	Code    int
	Message string
}

func (e *RestError) Error() string {
	return "twilio error " + strconv.Itoa(e.Code) + " (HTTP " + strconv.Itoa(e.Status) + "): " + e.Message
}

func restError(err error) error {
	var te *client.TwilioRestError
	if errors.As(err, &te) {
		return &RestError{Status: te.Status, Code: te.Code, Message: te.Message}
	}
	return err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// rebase sends every request to base's scheme and host, its path prefixed
// with base's path.
type rebase struct {
	base *url.URL
	next http.RoundTripper
}

func (r *rebase) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host = r.base.Scheme, r.base.Host
	if p := r.base.Path; p != "" {
		out.URL.Path, out.URL.RawPath = p+req.URL.Path, ""
	}
	out.Host = ""
	return r.next.RoundTrip(out)
}

func (r *rebase) closeIdle() {
	if c, ok := r.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
