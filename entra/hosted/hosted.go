// Package hosted is the page a person sees between Entra ID's redirect to
// Verigate and Verigate's answer to Entra: "We're calling +49 151 *** 789.
// Answer and press # to finish.", with the live status of the call, a code
// box for a text, resend and switch of channel, and a "This wasn't me"
// link.
//
// It is built on the entra.Authorizer (the provider half: it validates
// Entra's request and writes the pages that post back to Entra), a
// directory.Directory (the person's number: never typed by the person) and
// the verify core, through the small Verifier interface *verify.Service
// satisfies, so limits, fraud blocks and routing are those of the REST API.
//
// Everything is server-rendered from embedded templates, works without
// script (forms, a refresh while a call rings), and is enhanced by one
// script (Server-Sent Events, or a long poll, for the status; the finish
// posted on approval; WebOTP). A flow is bound to the browser that began it
// by a secret in a cookie; every form carries a per-flow CSRF token; every
// page has a strict Content-Security-Policy.
package hosted

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/entra"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

// Paths of the page, under entra.PathPrefix. A flow's id is in its paths;
// its secret only in the cookie.
const (
	FlowsPath  = entra.PathPrefix + "/flows"
	AssetsPath = entra.PathPrefix + "/assets"
)

// Defaults.
const (
	DefaultTenant       = "entra"
	DefaultFlowLifetime = 10 * time.Minute
	// ResendCooldown is how long after a send the same channel can be
	// asked for again.
	ResendCooldown = 30 * time.Second
	// flowGrace keeps a flow stored past its lifetime, so that a late
	// action still gets access_denied posted back to Entra rather than an
	// error page.
	flowGrace = 2 * time.Minute
	// maxForm bounds the body of the page's forms.
	maxForm = 4 << 10
	// maxStreams bounds the status streams and long polls open at once.
	maxStreams = 1000
	// maxFlowStreams bounds them per flow (a page open in a few tabs).
	maxFlowStreams = 4
	// longPoll is how long a status long poll waits for a change.
	longPoll = 25 * time.Second
	// heartbeat is how often an idle status stream sends a comment.
	heartbeat = 15 * time.Second
)

// Verifier is what the page needs of the verify core; *verify.Service
// implements it.
type Verifier interface {
	Start(ctx context.Context, req verify.StartRequest) (*verify.Verification, error)
	Check(ctx context.Context, tenant, id, code string) (*verify.Verification, error)
	Get(ctx context.Context, tenant, id string) (*verify.Verification, error)
	Follow(ctx context.Context, tenant, id string, fn func(*verify.Verification) error) error
	Cancel(ctx context.Context, tenant, id string) (*verify.Verification, error)
}

var _ Verifier = (*verify.Service)(nil)

// Texts is the catalogue of the page's words; *prompts.Catalogue
// implements it.
type Texts interface {
	Negotiate(locale string) string
	Locales() []string
	Text(locale string, id prompts.ID) string
}

var _ Texts = (*prompts.Catalogue)(nil)

// Options assemble a Handler. Authorizer, Directory, Verifier, Texts and
// PublicURL are required.
type Options struct {
	Config     entra.Config
	Authorizer entra.Authorizer
	Directory  directory.Directory
	// Verifier starts, checks and cancels the verifications. "This
	// wasn't me" cancels (never reports fraud: the browser is whoever
	// typed the password, an attacker's in the attack this guards
	// against, so a report there would block the victim's number).
	Verifier Verifier
	Texts    Texts
	// Store keeps the flows: a RedisStore when several gateways serve
	// the page; a MemoryStore if nil.
	Store FlowStore
	// PublicURL is the gateway's URL as browsers reach it; https makes
	// the cookie Secure and __Host- prefixed.
	PublicURL string
	Logger    *slog.Logger
	Now       func() time.Time
}

// Handler serves the page.
type Handler struct {
	cfg      entra.Config
	auth     entra.Authorizer
	dir      directory.Directory
	ver      Verifier
	texts    Texts
	store    FlowStore
	log      *slog.Logger
	now      func() time.Time
	secure   bool
	cookie   string
	lifetime time.Duration
	tenant   string
	channels []verify.Channel
	callMode verify.CallMode
	streams  chan struct{}
	mu       sync.Mutex
	open     map[string]int    // streams open per flow
	locales  map[string]string // lower-case tag → catalogue tag
}

// New checks opts and returns a Handler.
func New(opts Options) (*Handler, error) {
	switch {
	case opts.Authorizer == nil:
		return nil, errors.New("hosted: no authorizer")
	case opts.Directory == nil:
		return nil, errors.New("hosted: no directory")
	case opts.Verifier == nil:
		return nil, errors.New("hosted: no verifier")
	case opts.Texts == nil:
		return nil, errors.New("hosted: no texts")
	}
	u, err := url.Parse(opts.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("hosted: public URL %q is not an absolute http(s) URL", opts.PublicURL)
	}
	h := &Handler{
		cfg: opts.Config, auth: opts.Authorizer, dir: opts.Directory, ver: opts.Verifier, texts: opts.Texts,
		store: opts.Store, log: opts.Logger, now: opts.Now, secure: u.Scheme == "https",
		lifetime: opts.Config.FlowLifetime, tenant: opts.Config.Tenant, streams: make(chan struct{}, maxStreams),
		locales: map[string]string{}, open: map[string]int{},
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.store == nil {
		h.store = NewMemoryStore(h.now)
	}
	if h.lifetime <= 0 {
		h.lifetime = DefaultFlowLifetime
	}
	if h.tenant == "" {
		h.tenant = DefaultTenant
	}
	// The cookie's name prefix; each flow's cookie adds the flow id, so a
	// second sign-in in another tab does not replace the first's session.
	h.cookie = "verigate-entra-"
	if h.secure {
		// __Host-: Secure, Path=/, no Domain; a sibling host cannot set it.
		h.cookie = "__Host-verigate-entra-"
	}
	chans := opts.Config.Channels
	if len(chans) == 0 {
		chans = []string{"call", "sms"}
	}
	for _, c := range chans {
		ch := verify.Channel(c)
		if ch != verify.ChannelCall && ch != verify.ChannelSMS {
			return nil, fmt.Errorf("hosted: entra.channels: %q is not call or sms", c)
		}
		if !slices.Contains(h.channels, ch) {
			h.channels = append(h.channels, ch)
		}
	}
	h.callMode = verify.CallMode(opts.Config.CallMode)
	if h.callMode == "" {
		h.callMode = verify.CallModeApprove
	}
	if !h.callMode.Valid() {
		return nil, fmt.Errorf("hosted: entra.call_mode: %q is not approve or code", opts.Config.CallMode)
	}
	for _, l := range opts.Texts.Locales() {
		h.locales[strings.ToLower(l)] = l
	}
	if err := parseTemplates(); err != nil {
		return nil, err
	}
	return h, nil
}

// Register adds the page's routes to e.
func (h *Handler) Register(e *echo.Echo) {
	e.POST(entra.AuthorizePath, h.authorize)
	e.GET(FlowsPath+"/:id", h.page)
	e.POST(FlowsPath+"/:id", h.action)
	e.GET(FlowsPath+"/:id/events", h.events)
	e.GET(FlowsPath+"/:id/status", h.status)
	e.GET(AssetsPath+"/:name", h.asset)
}

// csp is the Content-Security-Policy of every response.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// secure sets the headers every response carries.
func secureHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Frame-Options", "DENY")
}

// authorize takes Entra's POST: validates it (the Authorizer), finds the
// person's number, creates the flow and its session, starts the first
// send, and sends the browser to the page.
func (h *Handler) authorize(c echo.Context) error {
	ctx := c.Request().Context()
	w := c.Response()
	locale := h.negotiate(c.Request().Header.Get("Accept-Language"))
	req, err := h.auth.Authorize(ctx, c.Request())
	if err != nil {
		var ae *entra.AuthorizeError
		if errors.As(err, &ae) && ae.Request != nil {
			// An outage (Entra's metadata, Redis) is not the person's
			// fault: Entra may let them try again.
			code := entra.ErrorAccessDenied
			if entra.IsUnavailable(err) {
				code = entra.ErrorTemporarilyUnavailable
				h.log.Warn("entra: authorize unavailable, answered to Entra", "reason", ae.Reason, "client_request_id", ae.Request.ClientRequestID, "err", err)
			} else {
				h.log.Info("entra: authorize refused, answered to Entra", "reason", ae.Reason, "client_request_id", ae.Request.ClientRequestID, "err", err)
			}
			return h.auth.Deny(ctx, w, ae.Request, code, ae.Reason)
		}
		h.log.Info("entra: authorize refused", "err", err)
		return h.errorPage(c, http.StatusBadRequest, locale)
	}
	log := h.log.With("client_request_id", req.ClientRequestID, "oid", entra.TruncOID(req.Hint.ObjectID))
	user, err := h.dir.Lookup(ctx, directory.Query{OID: req.Hint.ObjectID, UPN: req.Hint.PreferredUsername})
	switch {
	case errors.Is(err, directory.ErrNotFound):
		log.Info("entra: person not in the directory")
		return h.deny(c, req, entra.ErrorAccessDenied, "the person is not in the directory")
	case errors.Is(err, directory.ErrUnavailable):
		log.Warn("entra: directory unavailable", "err", err)
		return h.deny(c, req, entra.ErrorTemporarilyUnavailable, "the directory could not be asked")
	case err != nil:
		log.Error("entra: directory lookup failed", "err", err)
		return h.deny(c, req, entra.ErrorTemporarilyUnavailable, "the directory could not be asked")
	}
	if len(user.Numbers) == 0 {
		log.Info("entra: person has no phone number", "source", user.Source)
		return h.deny(c, req, entra.ErrorAccessDenied, "the person has no phone number on record")
	}
	num := user.Numbers[0] // mobiles first
	now := h.now()
	id, err := randomToken(16)
	if err != nil {
		return err
	}
	secret, err := randomToken(32)
	if err != nil {
		return err
	}
	csrf, err := randomToken(32)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(secret))
	f := &Flow{
		ID: id, SecretHash: sum[:], CSRF: csrf, Request: req, Number: num.E164, Kind: num.Kind,
		Locale: locale, ClientIP: clientIP(c), CreatedAt: now, ExpiresAt: now.Add(h.lifetime),
	}
	if !slices.ContainsFunc(h.channels, func(ch verify.Channel) bool { return h.offers(f, ch) }) {
		log.Info("entra: no channel reaches the number with an amr Entra accepts", "amr", req.AMR, "kind", num.Kind)
		return h.deny(c, req, entra.ErrorAccessDenied, "no channel reaches the person's number with an amr Entra accepts")
	}
	if err := h.store.Create(ctx, f, h.lifetime+flowGrace); err != nil {
		log.Error("entra: store flow", "err", err)
		return h.deny(c, req, entra.ErrorTemporarilyUnavailable, "the flow could not be stored")
	}
	log = log.With("flow", id, "to", verify.MaskNumber(num.E164))
	log.Info("entra: flow begun", "kind", num.Kind)
	// The first send: the first channel the number can take.
	var notice string
	for _, ch := range h.channels {
		if !h.offers(f, ch) {
			continue
		}
		notice = h.send(ctx, f, ch, log)
		if !(ch == verify.ChannelSMS && f.State.NoSMS) {
			break
		}
	}
	if notice != "" {
		// The page shows why nothing was sent (State.Notice): the limit,
		// or unavailable; the person may ask for the other channel.
		log.Info("entra: first send refused")
	}
	http.SetCookie(w, h.sessionCookie(id, secret))
	return c.Redirect(http.StatusSeeOther, FlowsPath+"/"+id)
}

// sessionCookie binds the flow to this browser: one cookie per flow,
// named by its id, gone after the flow's lifetime (Max-Age), so the
// cookies of a browser's flows stay few.
func (h *Handler) sessionCookie(id, secret string) *http.Cookie {
	return &http.Cookie{
		Name: h.cookie + id, Value: id + "." + secret, Path: "/", MaxAge: int((h.lifetime + flowGrace) / time.Second),
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
	}
}

// deny answers Entra with code and description: the flow ends.
func (h *Handler) deny(c echo.Context, req *entra.Request, code, description string) error {
	return h.auth.Deny(c.Request().Context(), c.Response(), req, code, description)
}

// send asks the Verifier for a send on ch and records it in f (and the
// store). It returns what the page must say when nothing was sent, also
// kept as State.Notice.
func (h *Handler) send(ctx context.Context, f *Flow, ch verify.Channel, log *slog.Logger) (notice string) {
	v, err := h.ver.Start(ctx, verify.StartRequest{
		Tenant: h.tenant, To: f.Number, Channel: ch, CallMode: h.callMode, Locale: f.Locale,
		UserID: f.Request.Hint.ObjectID, ClientIP: f.ClientIP,
		// Never another flow's verification: one # would approve both.
		Own: true, ResendID: f.State.VerificationID,
	})
	st := f.State
	st.Notice, st.NoticeLang = "", ""
	var le *verify.LimitError
	switch {
	case err == nil:
		st.VerificationID, st.Channel, st.SentAt = v.ID, v.Channel, h.now()
		log.Info("entra: sent", "verification", v.ID, "channel", v.Channel)
	case errors.As(err, &le):
		log.Info("entra: send refused by a limit", "channel", ch, "policy", le.Policy)
		// The core's words, which exist in English only.
		notice = le.Message()
		st.NoticeLang = "en"
	case ch == verify.ChannelSMS && errors.Is(err, verify.ErrUnsupportedNumber):
		// The router knows the number cannot take a text (a landline).
		log.Info("entra: no text to this number", "err", err)
		st.NoSMS = true
		notice = h.texts.Text(f.Locale, prompts.PageUnavailable)
	default:
		log.Warn("entra: send failed", "channel", ch, "err", err)
		notice = h.texts.Text(f.Locale, prompts.PageUnavailable)
	}
	st.Notice = notice
	if st != f.State {
		if serr := h.store.SetState(ctx, f.ID, st); serr != nil {
			log.Error("entra: store flow state", "err", serr)
			return h.texts.Text(f.Locale, prompts.PageUnavailable)
		}
		f.State = st
	}
	return notice
}

// session returns the flow of the request, checking the cookie binds this
// browser to it. It never says which check failed.
func (h *Handler) session(c echo.Context) (*Flow, error) {
	id := c.Param("id")
	if len(id) > 64 || !validFlowID(id) {
		return nil, errNoSession
	}
	ck, err := c.Cookie(h.cookie + id)
	if err != nil || len(ck.Value) > 256 {
		return nil, errNoSession
	}
	cid, secret, ok := strings.Cut(ck.Value, ".")
	if !ok || cid != id {
		return nil, errNoSession
	}
	f, err := h.store.Get(c.Request().Context(), id)
	if errors.Is(err, ErrFlowNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], f.SecretHash) != 1 {
		return nil, errNoSession
	}
	return f, nil
}

var errNoSession = errors.New("hosted: no session for this flow")

// validFlowID reports whether id is spelled as randomToken writes ids
// (base64url), so it can be part of a cookie name.
func validFlowID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return id != ""
}

// page shows the flow.
func (h *Handler) page(c echo.Context) error {
	f, err := h.session(c)
	if err != nil {
		return h.sessionError(c, err)
	}
	if f.Finished {
		return h.errorPage(c, http.StatusGone, f.Locale)
	}
	return h.render(c, f, "", http.StatusOK)
}

// sessionError answers a request without a valid session.
func (h *Handler) sessionError(c echo.Context, err error) error {
	locale := h.negotiate(c.Request().Header.Get("Accept-Language"))
	if errors.Is(err, errNoSession) {
		return h.errorPage(c, http.StatusForbidden, locale)
	}
	h.log.Error("entra: read flow", "err", err)
	return h.errorPage(c, http.StatusServiceUnavailable, locale)
}

// action takes the page's forms: action = call, sms, code, notme, cancel
// or finish.
func (h *Handler) action(c echo.Context) error {
	r := c.Request()
	r.Body = http.MaxBytesReader(c.Response(), r.Body, maxForm)
	f, err := h.session(c)
	if err != nil {
		return h.sessionError(c, err)
	}
	if err := r.ParseForm(); err != nil {
		return h.errorPage(c, http.StatusBadRequest, f.Locale)
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(f.CSRF)) != 1 {
		h.log.Warn("entra: form without the flow's CSRF token", "flow", f.ID)
		return h.errorPage(c, http.StatusForbidden, f.Locale)
	}
	if f.Finished {
		return h.errorPage(c, http.StatusGone, f.Locale)
	}
	ctx := r.Context()
	log := h.log.With("flow", f.ID, "client_request_id", f.Request.ClientRequestID, "to", verify.MaskNumber(f.Number))
	if !h.now().Before(f.ExpiresAt) {
		log.Info("entra: flow expired")
		return h.finish(c, f, log, entra.ErrorAccessDenied, "the person did not verify in time")
	}
	switch act := r.PostForm.Get("action"); act {
	case "call", "sms":
		ch := verify.Channel(act)
		if !h.offers(f, ch) {
			return h.render(c, f, "", http.StatusBadRequest)
		}
		if ch == f.State.Channel && h.cooldown(f) > 0 {
			return h.render(c, f, "", http.StatusOK) // the page shows the wait
		}
		h.send(ctx, f, ch, log) // the page shows State.Notice if nothing went
		return c.Redirect(http.StatusSeeOther, FlowsPath+"/"+f.ID)
	case "code":
		return h.check(c, f, log, r.PostForm.Get("code"))
	case "notme":
		// A fraud signal, not a fraud report: the browser belongs to
		// whoever typed the password, so blocking the number here would
		// let an attacker block the victim with one click. 0# on the
		// phone (the phone's holder) still reports and blocks.
		log.Warn("entra: fraud signal: the browser said this sign-in was not theirs", "oid", entra.TruncOID(f.Request.Hint.ObjectID))
		h.cancel(ctx, f, log)
		return h.finish(c, f, log, entra.ErrorAccessDenied, "the person said this sign-in was not theirs")
	case "cancel":
		h.cancel(ctx, f, log)
		return h.finish(c, f, log, entra.ErrorAccessDenied, "the person cancelled")
	case "finish":
		return h.finishByStatus(c, f, log)
	default:
		return h.render(c, f, "", http.StatusBadRequest)
	}
}

// check checks a typed code; an approval finishes the flow at once.
func (h *Handler) check(c echo.Context, f *Flow, log *slog.Logger, code string) error {
	code = strings.TrimSpace(code)
	if f.State.VerificationID == "" {
		return h.render(c, f, "", http.StatusBadRequest)
	}
	v, err := h.ver.Check(c.Request().Context(), h.tenant, f.State.VerificationID, code)
	var le *verify.LimitError
	switch {
	case err == nil && v.Status == verify.StatusApproved:
		return h.finishByStatus(c, f, log)
	case err == nil && v.Status == verify.StatusPending:
		return h.render(c, f, h.texts.Text(f.Locale, prompts.PageWrongCode), http.StatusOK)
	case err == nil, errors.Is(err, verify.ErrNotPending):
		return h.finishByStatus(c, f, log) // it ended: say so to Entra
	case errors.As(err, &le):
		return h.render(c, f, le.Message(), http.StatusOK)
	case errors.Is(err, verify.ErrInvalidRequest):
		return h.render(c, f, h.texts.Text(f.Locale, prompts.PageWrongCode), http.StatusOK)
	default:
		log.Warn("entra: check failed", "err", err)
		return h.render(c, f, h.texts.Text(f.Locale, prompts.PageUnavailable), http.StatusOK)
	}
}

// cancel ends the flow's verification, if one was started.
func (h *Handler) cancel(ctx context.Context, f *Flow, log *slog.Logger) {
	if f.State.VerificationID == "" {
		return
	}
	if _, err := h.ver.Cancel(ctx, h.tenant, f.State.VerificationID); err != nil && !errors.Is(err, verify.ErrNotPending) {
		log.Warn("entra: cancel verification", "err", err)
	}
}

// finishByStatus answers Entra by the verification's status as the core
// has it (never as the browser says): approved → Approve; still pending →
// the page again; anything else → access_denied.
func (h *Handler) finishByStatus(c echo.Context, f *Flow, log *slog.Logger) error {
	if f.State.VerificationID == "" {
		return h.render(c, f, "", http.StatusOK)
	}
	v, err := h.ver.Get(c.Request().Context(), h.tenant, f.State.VerificationID)
	if err != nil {
		log.Warn("entra: read verification", "err", err)
		return h.render(c, f, h.texts.Text(f.Locale, prompts.PageUnavailable), http.StatusOK)
	}
	switch v.Status {
	case verify.StatusPending:
		return h.render(c, f, "", http.StatusOK)
	case verify.StatusApproved:
		done, err := h.store.Finish(c.Request().Context(), f.ID)
		if err != nil {
			return h.finishError(c, f, log, err)
		}
		m := method(v)
		log.Info("entra: verified, answering Entra", "verification", v.ID, "amr", m)
		err = h.auth.Approve(c.Request().Context(), c.Response(), done.Request, m)
		if err != nil && !c.Response().Committed {
			// The flow is finished: Entra must still hear an answer, not
			// wait out its ten minutes behind a 500.
			log.Error("entra: approval could not be answered", "verification", v.ID, "amr", m, "err", err)
			return h.deny(c, done.Request, entra.ErrorTemporarilyUnavailable, "the approval could not be signed")
		}
		return err
	default:
		return h.finish(c, f, log, entra.ErrorAccessDenied, "the verification ended "+string(v.Status))
	}
}

// finish ends the flow with an error to Entra, once.
func (h *Handler) finish(c echo.Context, f *Flow, log *slog.Logger, code, description string) error {
	done, err := h.store.Finish(c.Request().Context(), f.ID)
	if err != nil {
		return h.finishError(c, f, log, err)
	}
	log.Info("entra: denied, answering Entra", "reason", description)
	return h.deny(c, done.Request, code, description)
}

func (h *Handler) finishError(c echo.Context, f *Flow, log *slog.Logger, err error) error {
	if errors.Is(err, ErrFlowFinished) || errors.Is(err, ErrFlowNotFound) {
		log.Warn("entra: flow finished already: refused")
		return h.errorPage(c, http.StatusGone, f.Locale)
	}
	log.Error("entra: finish flow", "err", err)
	return h.errorPage(c, http.StatusServiceUnavailable, f.Locale)
}

// method is the amr of an approved verification: tel when a call's #
// approved it, or a code read by a call; sms for a code that came by text.
func method(v *verify.Verification) entra.Method {
	for i := len(v.Events) - 1; i >= 0; i-- {
		switch v.Events[i].Type {
		case verify.EventCallApproved:
			return entra.MethodTel
		case verify.EventApproved:
			if v.Channel == verify.ChannelCall && v.CallMode == verify.CallModeCode {
				return entra.MethodTel
			}
			return entra.MethodSMS
		}
	}
	if v.Channel == verify.ChannelSMS {
		return entra.MethodSMS
	}
	return entra.MethodTel
}

// amrAllows reports whether Entra's request accepts the amr an approval on
// ch would carry (call → tel, sms → sms; no amr asked for → any): a
// channel whose approval could not be signed is never offered.
func amrAllows(req *entra.Request, ch verify.Channel) bool {
	m := entra.MethodTel
	if ch == verify.ChannelSMS {
		m = entra.MethodSMS
	}
	return req == nil || len(req.AMR) == 0 || slices.Contains(req.AMR, string(m))
}

// offers reports whether the page may send on ch for f: the configured
// channels the request's amr allows, and no text to a number that is not a mobile or that the
// router refused a text.
func (h *Handler) offers(f *Flow, ch verify.Channel) bool {
	if !slices.Contains(h.channels, ch) || !amrAllows(f.Request, ch) {
		return false
	}
	return ch != verify.ChannelSMS || (f.Kind == directory.KindMobile && !f.State.NoSMS)
}

// cooldown is how long until the last channel can be asked for again.
func (h *Handler) cooldown(f *Flow) time.Duration {
	if f.State.SentAt.IsZero() {
		return 0
	}
	return max(f.State.SentAt.Add(ResendCooldown).Sub(h.now()), 0)
}

// negotiate picks the catalogue locale for an Accept-Language header:
// the first (by q) whose tag, or a prefix of it, the catalogue has.
func (h *Handler) negotiate(header string) string {
	for _, tag := range acceptLanguages(header) {
		key := strings.ToLower(strings.ReplaceAll(tag, "_", "-"))
		for key != "" {
			if l, ok := h.locales[key]; ok {
				return l
			}
			i := strings.LastIndexByte(key, '-')
			if i < 0 {
				break
			}
			key = key[:i]
		}
	}
	return h.texts.Negotiate("")
}

// clientIP is the browser's address, or "" when that is not an address.
// Forwarding headers count only through the server's IPExtractor (set
// when the gateway runs behind a proxy it trusts): echo's RealIP without
// one believes any X-Forwarded-For, and a person could then pick the
// address their sends are counted under.
func clientIP(c echo.Context) string {
	ip := c.Request().RemoteAddr
	if c.Echo().IPExtractor != nil {
		ip = c.RealIP()
	}
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	if net.ParseIP(ip) == nil {
		return ""
	}
	return ip
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("hosted: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
