package twilio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verigate/verigate/internal/logbound"
	"github.com/verigate/verigate/ivr"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

// SignatureHeader carries Twilio's signature of every webhook request.
const SignatureHeader = "X-Twilio-Signature"

// Webhooks serves the TwiML of verification calls and Twilio's status
// callbacks. Every request must carry a valid X-Twilio-Signature for the
// public URL it was sent to; anything else is refused with 403 before it
// can change anything.
type Webhooks struct {
	cfg    Config
	rep    verify.Reporter
	seal   *sealer
	urls   urls
	signer signer
	texts  Texts
	clips  *clips // nil when no Audio is available
	log    *slog.Logger
	// strangers logs what anyone can cause (forged or oversized
	// requests): shortened, and at most a few lines a minute per message.
	strangers *slog.Logger
	now       func() time.Time
	// refused counts requests refused by signed, by reason.
	refused *prometheus.CounterVec
}

// NewWebhooks returns the webhooks for cfg (which must pass Validate),
// recording events through rep.
func NewWebhooks(cfg Config, rep verify.Reporter, opts ...Option) (*Webhooks, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rep == nil {
		return nil, errors.New("twilio webhooks: no reporter")
	}
	cfg = cfg.withDefaults()
	o := buildOptions(opts)
	s, err := newSealer(cfg.Secret)
	if err != nil {
		return nil, err
	}
	if o.texts == nil {
		cat, err := prompts.Load(prompts.Options{})
		if err != nil {
			return nil, fmt.Errorf("twilio webhooks: built-in prompts: %w", err)
		}
		o.texts = cat
	}
	audio := o.audio
	if audio == nil {
		audio, _ = o.texts.(Audio)
	}
	if audio == nil && cfg.VoiceMode == VoicePlay {
		return nil, errors.New("twilio webhooks: voice_mode play needs recordings: the texts have no audio (use WithAudio)")
	}
	w := &Webhooks{
		cfg: cfg, rep: rep, seal: s, urls: urls{base: cfg.PublicURL + PathPrefix},
		signer: signer{key: []byte(cfg.AuthToken)},
		texts:  o.texts, log: o.log, now: o.now,
		strangers: slog.New(logbound.New(o.log.Handler(), logbound.Options{})),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_twilio_webhook_signature_failures_total",
			Help: "Twilio webhook requests refused before they changed anything, by reason: missing, malformed, invalid (a bad signature), too_large.",
		}, []string{"reason"}),
	}
	for _, r := range []string{"missing", "malformed", "invalid", "too_large"} {
		w.refused.WithLabelValues(r) // every reason reads 0 before the first refusal, so rate() sees the first
	}
	if audio != nil {
		w.clips = newClips(audio, w.urls.base)
	}
	return w, nil
}

// Register adds the webhook routes to g, which must be mounted at
// PathPrefix (e.Group(twilio.PathPrefix)) so that the URLs given to Twilio
// reach them. The audio route (GET, no signature: the clips are public)
// is registered whenever recordings are available, in either voice mode,
// so calls already playing keep their clips while the mode is switched.
func (w *Webhooks) Register(g *echo.Group) {
	g.POST(RouteVoice, w.voice, w.signed)
	g.POST(RouteGather, w.gather, w.signed)
	g.POST(RouteSilence, w.silence, w.signed)
	g.POST(RouteCallStatus, w.callStatus, w.signed)
	g.POST(RouteSMSStatus, w.smsStatus, w.signed)
	if w.clips != nil {
		g.GET(RouteAudio+"/*", w.clips.serve)
		g.HEAD(RouteAudio+"/*", w.clips.serve)
	}
}

// Describe implements prometheus.Collector.
func (w *Webhooks) Describe(ch chan<- *prometheus.Desc) { w.refused.Describe(ch) }

// Collect implements prometheus.Collector.
func (w *Webhooks) Collect(ch chan<- prometheus.Metric) { w.refused.Collect(ch) }

// signed refuses a request without a valid X-Twilio-Signature. Twilio
// signs the URL it requested, which is the public one (PublicURL plus the
// path and query), with the POST parameters; behind a reverse proxy the
// gateway sees another host, so the URL is rebuilt from PublicURL.
//
// Anyone can reach these routes, so a request is bounded before it is
// parsed (MaxWebhookBody, MaxWebhookParams) and its signature is checked
// in time linear in its size: a forged request costs microseconds and
// changes nothing.
func (w *Webhooks) signed(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		sig := r.Header.Get(SignatureHeader)
		if sig == "" {
			w.refused.WithLabelValues("missing").Inc()
			w.strangers.Warn("twilio webhook without signature", "path", r.URL.Path)
			return echo.NewHTTPError(http.StatusForbidden, "missing "+SignatureHeader)
		}
		if len(sig) != signatureLen {
			w.refused.WithLabelValues("malformed").Inc()
			w.strangers.Warn("twilio webhook with a malformed signature", "path", r.URL.Path)
			return echo.NewHTTPError(http.StatusForbidden, "invalid "+SignatureHeader)
		}
		form, err := readForm(c.Response(), r)
		switch {
		case errors.Is(err, errTooLarge):
			w.refused.WithLabelValues("too_large").Inc()
			w.strangers.Warn("twilio webhook over the size bounds", "path", r.URL.Path, "content_length", r.ContentLength)
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "webhook request too large")
		case err != nil:
			return echo.NewHTTPError(http.StatusBadRequest, "malformed form body")
		}
		r.PostForm = form
		if err := r.ParseForm(); err != nil { // the query, into r.Form; the body is already read
			return echo.NewHTTPError(http.StatusBadRequest, "malformed query")
		}
		// The path and query as routed (a proxy may have stripped the
		// public URL's path prefix), after the public base.
		if !w.signer.valid(w.cfg.PublicURL+r.URL.RequestURI(), form, sig) {
			w.refused.WithLabelValues("invalid").Inc()
			w.strangers.Warn("twilio webhook with a bad signature", "path", r.URL.Path)
			return echo.NewHTTPError(http.StatusForbidden, "invalid "+SignatureHeader)
		}
		return next(c)
	}
}

// call is one voice webhook's view of its call.
type call struct {
	cc    callContext
	token string
	sid   string
}

func (w *Webhooks) openCall(c echo.Context) (call, error) {
	token := c.QueryParam(paramContext)
	cc, err := w.seal.open(token, w.now())
	if err != nil {
		w.log.Warn("twilio voice webhook with a bad call context", "err", err)
		return call{}, echo.NewHTTPError(http.StatusBadRequest, "bad call context")
	}
	return call{cc: cc, token: token, sid: c.Request().PostForm.Get("CallSid")}, nil
}

func (w *Webhooks) script(cc callContext) ivr.Script {
	return ivr.Script{Mode: cc.Mode, Code: cc.Code, MaxPrompts: w.cfg.MaxPrompts, KeyTimeout: w.cfg.KeyTimeout}
}

// voice answers the call: the first step of the script.
func (w *Webhooks) voice(c echo.Context) error {
	cl, err := w.openCall(c)
	if err != nil {
		return err
	}
	st, acts := ivr.Start(w.script(cl.cc))
	return w.respond(c, cl, st, acts)
}

// gather takes the key a <Gather> collected.
func (w *Webhooks) gather(c echo.Context) error {
	return w.step(c, inputEvent(c.Request().PostForm.Get("Digits")))
}

// silence is reached through the <Redirect> after a <Gather> that timed
// out with no key.
func (w *Webhooks) silence(c echo.Context) error { return w.step(c, ivr.Silence{}) }

func (w *Webhooks) step(c echo.Context, ev ivr.Event) error {
	cl, err := w.openCall(c)
	if err != nil {
		return err
	}
	st, err := ivr.DecodeState(c.QueryParam(paramState))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "bad script state")
	}
	st, acts := ivr.Step(w.script(cl.cc), st, ev)
	return w.respond(c, cl, st, acts)
}

// respond executes the Reports among acts, then renders the rest as TwiML.
func (w *Webhooks) respond(c echo.Context, cl call, st ivr.State, acts []ivr.Action) error {
	log := w.log.With("verification", cl.cc.ID, "call", cl.sid)
	for _, a := range acts {
		r, ok := a.(ivr.Report)
		if !ok {
			continue
		}
		if !w.report(c.Request().Context(), log, cl, r) {
			// The outcome could not be recorded as the script says (the
			// verification ended meanwhile, or the store failed): do not
			// tell the person otherwise.
			acts = []ivr.Action{ivr.Play{Prompts: []prompts.ID{prompts.Goodbye}}, ivr.Hangup{}}
			break
		}
	}
	voice := w.cfg.Voice
	if voice == "" {
		voice = w.texts.SayVoice(cl.cc.Locale)
	}
	sp := speech{texts: w.texts, locale: cl.cc.Locale, voice: voice}
	if w.cfg.VoiceMode == VoicePlay {
		sp.clips = w.clips
	}
	doc, err := render(sp, acts, w.urls.gather(cl.token, st), w.urls.silence(cl.token, st))
	if err != nil {
		log.Error("render twiml", "err", err)
		return echo.NewHTTPError(http.StatusInternalServerError, "cannot render TwiML")
	}
	return c.Blob(http.StatusOK, "application/xml", []byte(doc))
}

// report records a script outcome and says whether the call may go on as
// the script planned. A replayed request finds the verification already
// in the state it asked for: that is success, and the retry changes
// nothing (the event's Key is the same).
func (w *Webhooks) report(ctx context.Context, log *slog.Logger, cl call, r ivr.Report) bool {
	ev := verify.Event{
		Type: r.Event, Channel: verify.ChannelCall, Provider: ProviderName, ProviderRef: cl.sid,
		Detail: r.Detail, Attempt: cl.cc.Attempt, Key: ProviderName + ":" + cl.sid + ":" + string(r.Event),
		Outcome: r.Outcome,
	}
	err := w.rep.Report(ctx, cl.cc.ID, ev)
	if err == nil {
		log.Info("call outcome recorded", "event", r.Event)
		return true
	}
	var np *verify.NotPendingError
	if errors.As(err, &np) {
		log.Info("call outcome on an ended verification", "event", r.Event, "status", np.Status)
		return r.Outcome != nil && np.Status == r.Outcome.Status
	}
	log.Error("record call outcome", "event", r.Event, "err", err)
	return false
}

// callStatus records a call status callback.
func (w *Webhooks) callStatus(c echo.Context) error {
	f := c.Request().PostForm
	status := f.Get("CallStatus")
	t, ok := CallEvent(status)
	ev := verify.Event{
		Type: t, Channel: verify.ChannelCall, ProviderRef: f.Get("CallSid"),
		ErrorCode: firstOf(f.Get("ErrorCode"), sipFailure(f.Get("SipResponseCode"))), Detail: status,
	}
	// What the call's end meant is ivr's to say, for the call's mode. A
	// URL given to Twilio before it carried the mode decides nothing: the
	// verification then waits for its expiry rather than guess.
	if mode := verify.CallMode(c.QueryParam(paramMode)); mode.Valid() {
		ev.Outcome = ivr.Ended(w.script(callContext{Mode: mode}), t)
	}
	return w.status(c, ok, ev)
}

// sipFailure is a SIP status that says why a call failed (300 and up), or
// "" for a success (200 on an answered call), which carries no error code.
func sipFailure(status string) string {
	if n, err := strconv.Atoi(status); err == nil && n >= 300 {
		return status
	}
	return ""
}

// smsStatus records a message status callback.
func (w *Webhooks) smsStatus(c echo.Context) error {
	f := c.Request().PostForm
	status := firstOf(f.Get("MessageStatus"), f.Get("SmsStatus"))
	t, ok := SMSEvent(status)
	return w.status(c, ok, verify.Event{
		Type: t, Channel: verify.ChannelSMS, ProviderRef: firstOf(f.Get("MessageSid"), f.Get("SmsSid")),
		ErrorCode: f.Get("ErrorCode"), Detail: status,
	})
}

// status records ev (if the status maps to one) once per provider
// reference and status, so a retried callback changes nothing.
func (w *Webhooks) status(c echo.Context, ok bool, ev verify.Event) error {
	id := c.QueryParam(paramID)
	if id == "" || ev.ProviderRef == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "missing verification or provider reference")
	}
	// URLs given to Twilio before attempts were numbered carry none: 0.
	if a := c.QueryParam(paramAttempt); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil || n < 1 {
			return echo.NewHTTPError(http.StatusBadRequest, "bad attempt")
		}
		ev.Attempt = n
	}
	if !ok {
		return c.NoContent(http.StatusNoContent)
	}
	ev.Provider = ProviderName
	ev.Key = ProviderName + ":" + ev.ProviderRef + ":" + ev.Detail
	err := w.rep.Report(c.Request().Context(), id, ev)
	switch {
	case err == nil, errors.Is(err, verify.ErrNotPending):
		// Recorded, or recorded in the history of an ended verification.
	case errors.Is(err, verify.ErrNotFound):
		// Gone (expired from the store): nothing to update, and a retry
		// would not help.
		w.log.Info("twilio status for an unknown verification", "verification", id, "event", ev.Type)
	default:
		w.log.Error("record twilio status", "verification", id, "event", ev.Type, "err", err)
		// 5xx: Twilio may retry, and the event key keeps the retry harmless.
		return echo.NewHTTPError(http.StatusServiceUnavailable, "cannot record the status now")
	}
	return c.NoContent(http.StatusNoContent)
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
