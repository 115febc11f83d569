package verify

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultLifetime    = 10 * time.Minute
	DefaultMaxAttempts = 5
	DefaultFraudBlock  = 24 * time.Hour
	DefaultLocale      = "en"
)

// Config assembles a Service. Store, Limiter, Parser, Router, Formatter and
// Hasher are required; Senders and Callers are keyed by provider name.
type Config struct {
	Store     Store
	Limiter   Limiter
	Parser    NumberParser
	Router    Router
	Formatter Formatter
	Hasher    *Hasher

	// Notifier, if set, is told of every status change of a verification
	// that has a CallbackURL. Without one, a start with a callback_url is refused.
	Notifier Notifier

	Senders map[string]Sender
	Callers map[string]Caller
	// DefaultSender and DefaultCaller name the provider used when a Route
	// names none.
	DefaultSender string
	DefaultCaller string

	CodeLength  int           // digits per code; DefaultCodeLength if 0
	Lifetime    time.Duration // DefaultLifetime if 0
	MaxAttempts int           // checks per verification; DefaultMaxAttempts if 0
	CheckLock   CheckLock     // failed checks per number across verifications
	FraudBlock  time.Duration // how long a fraud report blocks the number; DefaultFraudBlock if 0

	// Observer, if set, is told of every delivery outcome Report records
	// (delivered, undelivered, no answer, busy, failed...), and of every
	// approval by a code check when it is an ApprovalObserver.
	Observer EventObserver
	// Lifecycle, if set, is told of every send, delivery outcome, end and
	// limit refusal (the gateway's metrics).
	Lifecycle LifecycleObserver

	// Changes tells Follow and Wait of changes to a verification; the
	// Store, when it implements Changes, if nil. Without either they read
	// the verification every second.
	Changes Changes

	Logger *slog.Logger
	Now    func() time.Time // the clock; time.Now if nil
	Random io.Reader        // crypto/rand.Reader if nil
}

// Service runs the verification lifecycle.
type Service struct {
	cfg Config
	log *slog.Logger
	// changes is cfg.Changes, or cfg.Store when it implements Changes.
	changes Changes
	// draining is set by Drain: no new verification starts.
	draining atomic.Bool
}

// Drain stops the Service from starting verifications (Start and Relay
// return ErrDraining) while everything else goes on: checks, approvals,
// provider reports, so that the verifications in flight finish. A gateway
// calls it when it begins to shut down; it cannot be undone.
func (s *Service) Drain() { s.draining.Store(true) }

// Draining reports whether Drain was called.
func (s *Service) Draining() bool { return s.draining.Load() }

// NewService checks cfg and fills in defaults.
func NewService(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("verify: no store")
	case cfg.Limiter == nil:
		return nil, errors.New("verify: no limiter")
	case cfg.Parser == nil:
		return nil, errors.New("verify: no number parser")
	case cfg.Router == nil:
		return nil, errors.New("verify: no router")
	case cfg.Formatter == nil:
		return nil, errors.New("verify: no formatter")
	case cfg.Hasher == nil:
		return nil, errors.New("verify: no hasher")
	}
	if cfg.CodeLength == 0 {
		cfg.CodeLength = DefaultCodeLength
	}
	if cfg.CodeLength < MinCodeLength || cfg.CodeLength > MaxCodeLength {
		return nil, fmt.Errorf("verify: code length %d outside %d..%d", cfg.CodeLength, MinCodeLength, MaxCodeLength)
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.FraudBlock <= 0 {
		cfg.FraudBlock = DefaultFraudBlock
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{cfg: cfg, log: cfg.Logger, changes: cfg.Changes}
	if c, ok := cfg.Store.(Changes); ok && s.changes == nil {
		s.changes = c
	}
	return s, nil
}

// MaxCallbackURL is the longest callback_url a start accepts.
const MaxCallbackURL = 2048

// StartRequest asks for a verification (or a resend) of To.
type StartRequest struct {
	Tenant      string
	To          string // as the client gave it; normalised by the NumberParser
	Channel     Channel
	CallMode    CallMode
	Locale      string
	UserID      string
	ClientIP    string
	Roaming     *bool
	CallbackURL string
	// AppName, if set, names the app in the SMS instead of the gateway's
	// (a Twilio Verify service's friendly name); it needs a Formatter that
	// is an AppFormatter. A fallback SMS of the verification, sent later by
	// Report, names the gateway's app.
	AppName string
	// CodeLength, if set, is the length of the code a new verification
	// gets instead of Config.CodeLength; a resend sends the code the
	// verification already has.
	CodeLength int
	// Own makes the verification this caller's alone. A front end that
	// starts verifications for sign-ins it tells apart (Entra flows,
	// RADIUS logins) must never adopt the pending verification another
	// sign-in started for the same number: one # or one code would then
	// approve both, the attacker's too. With Own, a pending verification
	// of the number other than ResendID is canceled (superseded: it can no
	// longer be approved) and a new one started; the superseded start's
	// consumption of the limits is refunded, so the person pays one send.
	Own bool
	// ResendID, with Own, is the verification this caller started and may
	// resend.
	ResendID string
}

// Start begins a verification, or resends the tenant's pending one for the
// same number, and delivers a code or a call.
//
// It checks every field itself (locale, client_ip, callback_url, ...), so
// that each front end refuses the same requests.
//
// Errors: *InputError (ErrInvalidRequest, ErrInvalidNumber,
// ErrUnsupportedNumber, ErrCountryNotAllowed); *LimitError; ErrUnavailable
// when the store, limiter or provider fails, ErrDraining (an
// ErrUnavailable) once Drain was called. Nothing is sent unless the
// limits were consumed and the verification stored.
func (s *Service) Start(ctx context.Context, req StartRequest) (*Verification, error) {
	v, err := s.begin(ctx, req, nil)
	if err != nil {
		s.limited(err)
	}
	return v, err
}

// begin is Start, and Relay when msg is not nil: the request checked, the
// number parsed and routed, then send.
func (s *Service) begin(ctx context.Context, req StartRequest, msg *relayed) (*Verification, error) {
	if s.draining.Load() {
		return nil, ErrDraining
	}
	if req.Channel == "" {
		req.Channel = ChannelSMS
	}
	if !req.Channel.Valid() {
		return nil, Invalid(ErrInvalidRequest, "channel must be sms, call or auto, not %q", req.Channel)
	}
	if req.CallMode == "" {
		req.CallMode = CallModeApprove
	}
	if !req.CallMode.Valid() {
		return nil, Invalid(ErrInvalidRequest, "call_mode must be approve or code, not %q", req.CallMode)
	}
	if len(req.Locale) > MaxLocale || !localeOK(req.Locale) {
		return nil, &InputError{Err: ErrInvalidRequest, Field: "locale", Msg: fmt.Sprintf("%q is not a language tag such as en or pt-BR", req.Locale)}
	}
	if req.Locale == "" {
		req.Locale = DefaultLocale
	}
	if req.ClientIP != "" && net.ParseIP(req.ClientIP) == nil {
		return nil, &InputError{Err: ErrInvalidRequest, Field: "client_ip", Msg: fmt.Sprintf("%q is not an IPv4 or IPv6 address", req.ClientIP)}
	}
	if req.CodeLength != 0 && (req.CodeLength < MinCodeLength || req.CodeLength > MaxCodeLength) {
		return nil, Invalid(ErrInvalidRequest, "code length must be %d to %d digits, not %d", MinCodeLength, MaxCodeLength, req.CodeLength)
	}
	if req.AppName != "" {
		if _, ok := s.cfg.Formatter.(AppFormatter); !ok {
			return nil, Invalid(ErrInvalidRequest, "an app name cannot be set: this gateway's SMS texts name one app")
		}
	}
	if req.CallbackURL != "" {
		u, err := url.Parse(req.CallbackURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(req.CallbackURL) > MaxCallbackURL {
			return nil, Invalid(ErrInvalidRequest, "callback_url must be an absolute https:// (or http://) URL without credentials, at most %d characters", MaxCallbackURL)
		}
		if s.cfg.Notifier == nil {
			return nil, Invalid(ErrInvalidRequest, "callback_url cannot be used: status callbacks are not configured on this gateway")
		}
		if c, ok := s.cfg.Notifier.(CallbackChecker); ok {
			if err := c.CheckCallbackURL(u); err != nil {
				return nil, Invalid(ErrInvalidRequest, "callback_url refused: %v; callbacks go to public addresses unless the gateway's operator allows private networks", err)
			}
		}
	}
	num, err := s.cfg.Parser.ParseNumber(req.To)
	if err != nil {
		return nil, err
	}
	route, err := s.cfg.Router.Route(ctx, RouteRequest{
		Tenant: req.Tenant, Number: num, Channel: req.Channel, Roaming: req.Roaming, ClientIP: req.ClientIP,
	})
	if err != nil {
		return nil, err
	}
	return s.send(ctx, req, num, route, msg)
}

// send is the part of Start after routing, shared with the fallback of
// Report: it consumes the limits for route's channel, stores the
// verification (or resends the pending one) and delivers its code or a
// call.
//
// With msg, the send is a relayed message (Relay): it is stored as a new
// KindMessage record, never a resend, without a code of Verigate's and
// without a fallback, and delivers msg's body, or a call reading msg's code.
func (s *Service) send(ctx context.Context, req StartRequest, num Number, route Route, msg *relayed) (*Verification, error) {
	if route.Channel != ChannelSMS && route.Channel != ChannelCall {
		return nil, fmt.Errorf("router chose channel %q: %w", route.Channel, ErrUnavailable)
	}
	if err := s.provide(route); err != nil {
		return nil, err
	}
	id, err := NewID(s.cfg.Random)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	subject := SendSubject{
		Tenant: req.Tenant, To: num.E164, Country: num.Region, Channel: route.Channel,
		UserID: req.UserID, ClientIP: req.ClientIP, SendID: id,
	}
	var code string
	if msg != nil {
		// The message is not kept, so nothing could be sent again on the
		// other channel.
		route.Fallback = ""
	} else {
		codeLength := s.cfg.CodeLength
		if req.CodeLength != 0 {
			codeLength = req.CodeLength
		}
		if code, err = NewCode(s.cfg.Random, codeLength); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	now := s.cfg.Now()
	fresh := &Verification{
		ID: id, Tenant: req.Tenant, To: num.E164, Country: num.Region,
		Channel: route.Channel, CallMode: req.CallMode, Locale: req.Locale,
		UserID: req.UserID, ClientIP: req.ClientIP, CallbackURL: req.CallbackURL,
		Status: StatusPending, MaxAttempts: s.cfg.MaxAttempts, Sends: 1,
		Route: route, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.cfg.Lifetime),
	}
	var hash string
	if msg == nil {
		if fresh.SealedCode, err = s.cfg.Hasher.SealCode(s.cfg.Random, req.Tenant, id, code); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		hash = s.cfg.Hasher.Hash(req.Tenant, code)
	} else {
		// No code of Verigate's is ever checked against a message.
		fresh.Kind, fresh.CallbackFormat, fresh.MaxAttempts = KindMessage, msg.format, 0
		code = msg.code
	}
	v, resent, err := s.cfg.Store.Start(ctx, subject, fresh, hash, now)
	if err == nil && resent && req.Own && v.ID != req.ResendID {
		// Another sign-in's verification: end it, then start this one's.
		if err = s.supersede(ctx, subject, v); err == nil {
			v, resent, err = s.cfg.Store.Start(ctx, subject, fresh, hash, now)
			if err == nil && resent && v.ID != req.ResendID {
				// A third start took the number in between.
				err = errors.New("another sign-in started a verification for the number at the same time")
			}
		}
	}
	if errors.Is(err, ErrRateLimited) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("store start: %w: %w", ErrUnavailable, err)
	}
	if resent && msg != nil {
		return nil, fmt.Errorf("store start: a relayed message was taken as a resend: %w", ErrUnavailable)
	}
	s.sent(v, route, resent)
	if resent && v.SealedCode != "" {
		// A resend sends the verification's own code again: one code is
		// valid per verification, however often it is resent. (One stored
		// by an earlier version has no sealed code: the store added this
		// start's code to it, and this code is sent, as that version did.)
		if code, err = s.cfg.Hasher.OpenCode(v.Tenant, v.ID, v.SealedCode); err != nil {
			s.log.Error("resend: the verification's code does not open (server secret changed?)", "verification", v.ID, "err", err)
			return nil, fmt.Errorf("resend: %w: %w", ErrUnavailable, err)
		}
	}
	// The logger carrying the verification's attributes is built on first
	// use: With (and MaskNumber) allocate for every start even when no
	// record is written, as with Info off under load. The records are the
	// same as with an eager With: handlers may tell With's attributes from
	// a record's own (cmd/verigate's demo timeline does), so they stay
	// With's. Enabled is asked with context.Background() because that is
	// what Logger.Info and Logger.Debug ask it with.
	var log *slog.Logger
	logger := func() *slog.Logger {
		if log == nil {
			log = s.log.With("verification", v.ID, "tenant", v.Tenant, "to", MaskNumber(v.To), "channel", route.Channel, "provider", route.Provider)
		}
		return log
	}
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		switch {
		case msg != nil:
			logger().Info("message relayed")
		case resent:
			logger().Info("verification resent", "sends", v.Sends)
		default:
			logger().Info("verification started")
		}
	}

	ref, err := s.deliver(ctx, v, route, req.AppName, code, msg)
	if err != nil {
		logger().Warn("delivery failed", "err", err)
		if errors.Is(err, ErrBusy) {
			// The provider had no room (every RTP port in a call): not the
			// person's doing, so the send does not count against them.
			if rerr := s.cfg.Limiter.Refund(ctx, subject); rerr != nil {
				logger().Error("refund a send the provider had no room for", "err", rerr)
			}
		}
		ev := Event{Type: EventSendFailed, At: s.cfg.Now(), Channel: route.Channel, Provider: route.Provider, Detail: err.Error()}
		if resent {
			// The code went out before in this verification and stays valid.
			if _, aerr := s.cfg.Store.AddEvent(ctx, v.ID, ev); aerr != nil {
				logger().Error("record send failure", "err", aerr)
			}
		} else if failed, terr := s.cfg.Store.Transition(ctx, "", v.ID, StatusFailed, string(EventSendFailed), ev); terr != nil {
			logger().Error("record send failure", "err", terr)
		} else {
			s.notify(failed)
			s.ended(failed, ev)
		}
		return nil, fmt.Errorf("deliver: %w: %w", ErrUnavailable, err)
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		logger().Debug("delivered", "ref", ref)
	}
	return v, nil
}

// supersede cancels v, the pending verification that another caller's
// start of the number would have resent (StartRequest.Own), and refunds
// the send that start counted for it.
func (s *Service) supersede(ctx context.Context, subject SendSubject, v *Verification) error {
	if err := s.cfg.Limiter.Refund(ctx, subject); err != nil {
		return fmt.Errorf("refund the superseded send: %w", err)
	}
	ended, err := s.cfg.Store.Transition(ctx, "", v.ID, StatusCanceled, "superseded",
		Event{Type: EventCanceled, At: s.cfg.Now(), Detail: "superseded by another sign-in for the number"})
	if errors.Is(err, ErrNotPending) {
		return nil // it ended meanwhile: the next start is a fresh one
	}
	if err != nil {
		return fmt.Errorf("cancel the superseded verification: %w", err)
	}
	s.log.Info("verification superseded by another sign-in", "verification", ended.ID, "tenant", ended.Tenant, "to", MaskNumber(ended.To))
	s.notify(ended)
	return nil
}

// provide checks that a provider exists for route before anything is consumed.
func (s *Service) provide(route Route) error {
	if route.Channel == ChannelSMS {
		if _, ok := s.cfg.Senders[s.providerName(route)]; !ok {
			return fmt.Errorf("sms provider %q: %w: %w", s.providerName(route), ErrNoProvider, ErrUnavailable)
		}
		return nil
	}
	if _, ok := s.cfg.Callers[s.providerName(route)]; !ok {
		return Invalid(ErrUnsupportedNumber, "voice verification is not configured on this gateway (no call provider %q)", s.providerName(route))
	}
	return nil
}

func (s *Service) providerName(route Route) string {
	if route.Provider != "" {
		return route.Provider
	}
	if route.Channel == ChannelCall {
		return s.cfg.DefaultCaller
	}
	return s.cfg.DefaultSender
}

// deliver sends code to v through route's provider (or, for a relayed
// message, msg's body by SMS, or a call reading code); app, if set, names
// the app in the SMS (Start has checked the Formatter can).
func (s *Service) deliver(ctx context.Context, v *Verification, route Route, app, code string, msg *relayed) (string, error) {
	name := s.providerName(route)
	if route.Channel == ChannelSMS {
		m := Message{
			VerificationID: v.ID, To: v.To, Locale: v.Locale, SenderID: route.SenderID, Attempt: v.Sends,
		}
		switch af, ok := s.cfg.Formatter.(AppFormatter); {
		case msg != nil:
			m.Body, m.Relayed = msg.body, true
		case ok && app != "":
			m.Body = af.SMSBodyFor(v.Locale, app, code)
		default:
			m.Body = s.cfg.Formatter.SMSBody(v.Locale, code)
		}
		return s.cfg.Senders[name].Send(ctx, m)
	}
	call := Call{
		VerificationID: v.ID, Tenant: v.Tenant, To: v.To, Locale: v.Locale, Mode: v.CallMode,
		Trunk: route.Trunk, CallerID: route.SenderID, Attempt: v.Sends,
	}
	if v.CallMode == CallModeCode {
		call.Code = code
	}
	return s.cfg.Callers[name].Call(ctx, call)
}

// Check checks code against the tenant's verification id.
//
// Errors: *InputError (ErrInvalidRequest) for a malformed code; ErrNotFound;
// *NotPendingError; *LimitError when failed checks lock the number;
// ErrUnavailable when the store fails.
func (s *Service) Check(ctx context.Context, tenant, id, code string) (*Verification, error) {
	if err := s.validCode(code); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, ErrNotFound
	}
	return s.check(ctx, CheckQuery{Tenant: tenant, ID: id}, code)
}

// CheckByNumber checks code against the tenant's pending verification for to.
func (s *Service) CheckByNumber(ctx context.Context, tenant, to, code string) (*Verification, error) {
	if err := s.validCode(code); err != nil {
		return nil, err
	}
	num, err := s.cfg.Parser.ParseNumber(to)
	if err != nil {
		return nil, err
	}
	return s.check(ctx, CheckQuery{Tenant: tenant, To: num.E164}, code)
}

func (s *Service) check(ctx context.Context, q CheckQuery, code string) (*Verification, error) {
	q.Hash = s.cfg.Hasher.Hash(q.Tenant, code)
	q.Now = s.cfg.Now()
	q.Lock = s.cfg.CheckLock
	v, err := s.cfg.Store.Check(ctx, q)
	if err != nil {
		s.limited(err)
		return nil, unavailableUnless(err, ErrNotFound, ErrNotPending, ErrRateLimited)
	}
	if s.log.Enabled(context.Background(), slog.LevelInfo) { // every check passes here: skip the masking when off
		s.log.Info("verification checked", "verification", v.ID, "tenant", v.Tenant, "to", MaskNumber(v.To), "status", v.Status)
	}
	if v.Status != StatusPending {
		s.notify(v)
		s.ended(v, lastEvent(v))
		s.approved(ctx, v)
	}
	return v, nil
}

func (s *Service) validCode(code string) error {
	if len(code) < MinCodeLength || len(code) > MaxCodeLength || strings.Trim(code, "0123456789") != "" {
		return Invalid(ErrInvalidRequest, "code must be %d to %d digits", MinCodeLength, MaxCodeLength)
	}
	return nil
}

// Get returns the tenant's verification id. A pending verification past
// its lifetime is shown as expired.
func (s *Service) Get(ctx context.Context, tenant, id string) (*Verification, error) {
	v, err := s.cfg.Store.Get(ctx, tenant, id)
	if err != nil {
		return nil, unavailableUnless(err, ErrNotFound)
	}
	if v.Status == StatusPending && !s.cfg.Now().Before(v.ExpiresAt) {
		v.Status = StatusExpired
	}
	return v, nil
}

// Cancel ends the tenant's pending verification id as canceled. A relayed
// message is not found (the store refuses a tenant's transition of one).
func (s *Service) Cancel(ctx context.Context, tenant, id string) (*Verification, error) {
	v, err := s.cfg.Store.Transition(ctx, tenant, id, StatusCanceled, "", Event{Type: EventCanceled, At: s.cfg.Now()})
	if err != nil {
		return nil, unavailableUnless(err, ErrNotFound, ErrNotPending)
	}
	s.log.Info("verification canceled", "verification", v.ID, "tenant", v.Tenant, "to", MaskNumber(v.To))
	s.notify(v)
	s.ended(v, lastEvent(v))
	return v, nil
}

// Report records what a provider saw happen to verification id: delivery
// events, call progress, and what a call meant (ev.Outcome, decided by the
// call script: approved, denied for a fraud report, or failed with its
// reason). The Service records an Outcome as given and decides none
// itself; a denial also blocks the number. Reports are idempotent when
// ev.Key is set.
//
// Attempts: an event whose Attempt is older than the verification's
// current one (Sends) is about a call or message that a resend or a
// fallback has replaced. It is recorded and observed, but it neither ends
// the verification nor starts a fallback; the verification waits for its
// current attempt. An approval or a denial counts from any attempt: the
// person answered a call of this verification. Events with no Attempt (0)
// are taken as about the current attempt.
//
// Fallback: when the verification is pending and its Route.Fallback names
// the other channel, an EventUndelivered for an SMS, or an EventNoAnswer or
// EventBusy for a call, records ev and then resends the verification on
// the fallback channel exactly as a Start would (limits consumed,
// Store.Start resending the pending verification and its code), with a route
// whose Fallback is empty so it happens once; ev's Outcome is then set
// aside. A fallback refused by a limit or a missing provider is recorded as
// EventSendFailed, and ev's Outcome, if any, is recorded as it would have
// been without a fallback.
func (s *Service) Report(ctx context.Context, id string, ev Event) error {
	if ev.At.IsZero() {
		ev.At = s.cfg.Now()
	}
	if o := ev.Outcome; o != nil && o.Status != StatusFailed {
		return s.decide(ctx, id, *o, ev)
	}
	observed := s.cfg.Observer != nil || s.cfg.Lifecycle != nil
	if ev.Outcome == nil && !ev.Type.fallsBack() && messageOutcome(ev.Type) == "" && (!observed || !ev.Type.deliveryOutcome()) {
		if _, err := s.cfg.Store.AddEvent(ctx, id, ev); err != nil {
			return unavailableUnless(err, ErrNotFound)
		}
		return nil
	}
	v, err := s.cfg.Store.Get(ctx, "", id)
	if err != nil {
		return unavailableUnless(err, ErrNotFound)
	}
	if superseded(v, ev) {
		return s.history(ctx, v, ev)
	}
	if v.Kind == KindMessage {
		return s.reportMessage(ctx, v, ev)
	}
	if s.fallbackDue(v, ev) {
		return s.fallback(ctx, v, ev)
	}
	if ev.Outcome != nil && v.Status == StatusPending && (ev.Channel == "" || ev.Channel == v.Channel) {
		err := s.decide(ctx, id, *ev.Outcome, ev)
		s.observe(ctx, v, ev)
		return err
	}
	added, err := s.cfg.Store.AddEvent(ctx, id, ev)
	if err != nil {
		return unavailableUnless(err, ErrNotFound)
	}
	if added {
		s.observe(ctx, v, ev)
	}
	return nil
}

// decide records a call's outcome o on verification id, with ev, and
// blocks the number when the person reported fraud.
func (s *Service) decide(ctx context.Context, id string, o Outcome, ev Event) error {
	v, err := s.cfg.Store.Transition(ctx, "", id, o.Status, o.Reason, ev)
	if err != nil {
		return s.recordInstead(ctx, id, ev, err)
	}
	s.notify(v)
	s.ended(v, ev)
	if o.Status != StatusDenied {
		s.log.Info("verification "+string(o.Status), "verification", v.ID, "tenant", v.Tenant, "to", MaskNumber(v.To), "event", ev.Type, "reason", o.Reason)
		return nil
	}
	s.log.Warn("fraud reported", "verification", v.ID, "tenant", v.Tenant, "to", MaskNumber(v.To))
	if err := s.cfg.Limiter.Block(ctx, v.To, s.cfg.FraudBlock); err != nil {
		return fmt.Errorf("block number: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// superseded reports whether ev belongs to an attempt that a later send
// of v replaced.
func superseded(v *Verification, ev Event) bool {
	return ev.Attempt > 0 && ev.Attempt < v.Sends
}

// history records ev, of a superseded attempt of v, without acting on it:
// the routing statistics still learn how that send ended.
func (s *Service) history(ctx context.Context, v *Verification, ev Event) error {
	added, err := s.cfg.Store.AddEvent(ctx, v.ID, ev)
	if err != nil {
		return unavailableUnless(err, ErrNotFound)
	}
	if added {
		if v.Status == StatusPending {
			s.log.Info("event of a superseded attempt recorded", "verification", v.ID, "event", ev.Type,
				"attempt", ev.Attempt, "current", v.Sends)
		}
		s.observe(ctx, v, ev)
	}
	return nil
}

// fallsBack reports whether t can start a fallback (see Report).
func (t EventType) fallsBack() bool {
	return t == EventUndelivered || t == EventNoAnswer || t == EventBusy
}

// deliveryOutcome reports whether t says how a send ended, for the Observer.
func (t EventType) deliveryOutcome() bool {
	switch t {
	case EventDelivered, EventUndelivered, EventNoAnswer, EventBusy, EventRejected, EventInvalidNumber, EventFailed:
		return true
	}
	return false
}

// fallbackDue reports whether ev on v starts v's fallback: v is pending and
// unexpired, has a fallback to the other channel, and ev is the failure of
// v's current channel (and attempt: Report has set superseded events aside).
func (s *Service) fallbackDue(v *Verification, ev Event) bool {
	fb := v.Route.Fallback
	if v.Status != StatusPending || fb == "" || fb == v.Channel || !s.cfg.Now().Before(v.ExpiresAt) {
		return false
	}
	if ev.Channel != "" && ev.Channel != v.Channel {
		return false // a late report about an earlier send on the other channel
	}
	switch v.Channel {
	case ChannelSMS:
		return ev.Type == EventUndelivered && fb == ChannelCall
	case ChannelCall:
		return (ev.Type == EventNoAnswer || ev.Type == EventBusy) && fb == ChannelSMS
	}
	return false
}

// fallback records ev and resends v on its fallback channel through send,
// the path Start takes, so the limits apply to it.
func (s *Service) fallback(ctx context.Context, v *Verification, ev Event) error {
	added, err := s.cfg.Store.AddEvent(ctx, v.ID, ev)
	if err != nil {
		return unavailableUnless(err, ErrNotFound)
	}
	if !added {
		return nil // a provider retry of a report already acted on
	}
	s.observe(ctx, v, ev)
	route := Route{
		Channel:  v.Route.Fallback,
		Trunk:    v.Route.Trunk,
		Reasons:  append(append([]string(nil), v.Route.Reasons...), "fallback after "+strings.ReplaceAll(string(ev.Type), "_", " ")),
		Provider: v.Route.Provider,
	}
	if !s.hasProvider(route) {
		route.Provider = "" // the route's provider does not carry this channel: use the default
	}
	log := s.log.With("verification", v.ID, "tenant", v.Tenant, "to", MaskNumber(v.To), "event", ev.Type, "channel", route.Channel)
	log.Info("falling back to the other channel")
	_, err = s.send(ctx, StartRequest{
		Tenant: v.Tenant, To: v.To, Channel: route.Channel, CallMode: v.CallMode, Locale: v.Locale,
		UserID: v.UserID, ClientIP: v.ClientIP, CallbackURL: v.CallbackURL,
	}, Number{E164: v.To, Region: v.Country}, route, nil)
	if err == nil {
		return nil
	}
	log.Warn("fallback not sent", "err", err)
	// The failure carries no attempt: the fallback's own start may have
	// counted a send (and so a new attempt) before its delivery failed,
	// and ev's attempt, now older, would be refused as superseded although
	// nothing replaced it on the wire.
	failed := Event{Type: EventSendFailed, At: s.cfg.Now(), Channel: route.Channel, Detail: "fallback: " + err.Error()}
	if o := ev.Outcome; o != nil {
		// Without its fallback the call's outcome stands.
		ended, terr := s.cfg.Store.Transition(ctx, "", v.ID, o.Status, o.Reason, failed)
		if terr != nil && !errors.Is(terr, ErrNotPending) && !errors.Is(terr, ErrSuperseded) {
			return unavailableUnless(terr, ErrNotFound)
		}
		if terr == nil {
			s.notify(ended)
			s.ended(ended, failed)
		}
		return nil
	}
	if errors.Is(err, ErrUnavailable) {
		return err // the store failed: let the provider retry the report
	}
	if _, aerr := s.cfg.Store.AddEvent(ctx, v.ID, failed); aerr != nil {
		return unavailableUnless(aerr, ErrNotFound)
	}
	return nil
}

func (s *Service) hasProvider(route Route) bool {
	if route.Channel == ChannelSMS {
		_, ok := s.cfg.Senders[s.providerName(route)]
		return ok
	}
	_, ok := s.cfg.Callers[s.providerName(route)]
	return ok
}

func (s *Service) observe(ctx context.Context, v *Verification, ev Event) {
	s.reported(v, ev)
	if s.cfg.Observer != nil && ev.Type.deliveryOutcome() {
		s.cfg.Observer.Observe(ctx, v, ev)
	}
}

// notify passes a status change on to the client's callback, if it asked for one.
func (s *Service) notify(v *Verification) {
	if v.CallbackURL != "" && s.cfg.Notifier != nil {
		s.cfg.Notifier.Notify(v)
	}
}

// recordInstead keeps ev in the history when the transition it asked for
// could not happen because the verification had already ended, or because
// a resend superseded ev's attempt after Report read the verification (then
// the report has done all it should, and succeeds).
func (s *Service) recordInstead(ctx context.Context, id string, ev Event, err error) error {
	if !errors.Is(err, ErrNotPending) && !errors.Is(err, ErrSuperseded) {
		return unavailableUnless(err, ErrNotFound)
	}
	if _, aerr := s.cfg.Store.AddEvent(ctx, id, ev); aerr != nil {
		return unavailableUnless(aerr, ErrNotFound)
	}
	if errors.Is(err, ErrSuperseded) {
		return nil
	}
	return err
}

// unavailableUnless passes err through when it is one of the expected
// sentinels and marks anything else (a store or limiter failure) as
// ErrUnavailable, so the API fails closed with 503.
func unavailableUnless(err error, expected ...error) error {
	for _, e := range expected {
		if errors.Is(err, e) {
			return err
		}
	}
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// MaskNumber hides the middle of an E.164 number for logs: +49151*****789.
func MaskNumber(e164 string) string {
	const head, tail = 6, 3
	if len(e164) <= head+tail {
		if len(e164) <= tail {
			return strings.Repeat("*", len(e164))
		}
		return strings.Repeat("*", len(e164)-tail) + e164[len(e164)-tail:]
	}
	return e164[:head] + strings.Repeat("*", len(e164)-head-tail) + e164[len(e164)-tail:]
}

// MaxLocale is the longest locale Start takes: a BCP 47 tag with room to
// spare (pt-BR, zh-Hant-TW), short enough to keep out of the store what
// is not one.
const MaxLocale = 35

// localeOK reports whether l has only the characters of a language tag.
func localeOK(l string) bool {
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
