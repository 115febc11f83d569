package verify

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors callers branch on with errors.Is. Each maps to one error
// code of the REST API.
var (
	ErrInvalidRequest    = errors.New("invalid request")
	ErrInvalidNumber     = errors.New("invalid number")
	ErrUnsupportedNumber = errors.New("unsupported number")
	ErrCountryNotAllowed = errors.New("country not allowed")
	ErrRateLimited       = errors.New("rate limited")
	ErrNotFound          = errors.New("verification not found")
	ErrNotPending        = errors.New("verification is not pending")
	ErrUnavailable       = errors.New("service unavailable")
	ErrNoProvider        = errors.New("no provider for channel")
	ErrChecksLocked      = errors.New("too many failed checks")
	// ErrBusy is a provider without room for another send right now (the
	// SIP caller's RTP ports all in use). The send it refused is not
	// counted against the person's limits (Service.Start refunds it); the
	// API answers 503 with a short Retry-After.
	ErrBusy = errors.New("no capacity for another send right now")
	// ErrDraining is a gateway shutting down (Service.Drain): it finishes
	// the verifications it has but starts no new one, so that another
	// gateway takes it. It wraps ErrUnavailable; the API answers 503 with
	// a short Retry-After.
	ErrDraining = fmt.Errorf("gateway shutting down: %w", ErrUnavailable)
)

// ErrSuperseded is returned by Store.Transition when an event of an earlier
// attempt (a call or message that a resend or fallback has replaced) asks
// to fail the verification: the end of a superseded attempt does not end
// the verification. Service.Report records such an event as history
// instead; the error never reaches the REST API.
var ErrSuperseded = errors.New("attempt superseded by a later send")

// Error codes of the REST API (DESIGN.md §3).
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidNumber     = "invalid_number"
	CodeUnsupportedNumber = "unsupported_number"
	CodeCountryNotAllowed = "country_not_allowed"
	CodeRateLimited       = "rate_limited"
	CodeNotFound          = "not_found"
	CodeNotPending        = "not_pending"
	CodeUnauthorized      = "unauthorized"
	CodeUnavailable       = "unavailable"
)

// Limit messages, exactly as the REST API and the prompts speak them.
const (
	MessageSMSLimit  = "You've reached our limit on text verification codes."
	MessageCallLimit = "You've reached our limit on verification calls."
)

// Messages of an aggregate limit (LimitError.Aggregate): the gateway's
// caps on many people's sends together, or an SMS-pumping block of the
// destination's prefix. The person did nothing wrong, so the words do not
// say "your limit".
const (
	MessageSMSPaused  = "We can't send text verification codes right now. This is not because of anything you did."
	MessageCallPaused = "We can't place verification calls right now. This is not because of anything you did."
)

// LimitError is returned (wrapping ErrRateLimited) when a limit denies a send
// or a check. RetryAfter says when the same request would next be allowed.
type LimitError struct {
	Channel    Channel       // the channel whose limit was hit; empty for check locks
	Policy     string        // the policy that denied, e.g. "number_channel"
	RetryAfter time.Duration // how long until a retry can succeed
	// Aggregate is set when the limit counts many people's sends together
	// (a tenant, country, prefix or global cap, or an SMS-pumping block),
	// not this person's: the message then does not blame the person.
	Aggregate bool
}

// Policies of a send refused because its destination is blocked rather than
// counted: LimitError.Policy of a number blocked after a fraud report
// (ratelimit's Limiter.Block) and of a prefix blocked by the SMS-pumping
// watch (route). They live here so that front ends can tell a block from a
// limit without importing ratelimit or route.
const (
	PolicyBlocked = "blocked"
	PolicyPumping = "sms_pumping"
)

func (e *LimitError) Error() string { return e.Message() }

// Blocked reports whether the send was refused because its number or
// prefix is blocked (PolicyBlocked, PolicyPumping), not because a count
// ran out.
func (e *LimitError) Blocked() bool {
	return e.Policy == PolicyBlocked || e.Policy == PolicyPumping
}

// Unwrap lets errors.Is(err, ErrRateLimited) match.
func (e *LimitError) Unwrap() error { return ErrRateLimited }

// Message is the sentence shown to the person: the limit, then when to try again.
func (e *LimitError) Message() string {
	var limit string
	switch {
	case e.Aggregate && e.Channel == ChannelSMS:
		limit = MessageSMSPaused
	case e.Aggregate && e.Channel == ChannelCall:
		limit = MessageCallPaused
	case e.Channel == ChannelSMS:
		limit = MessageSMSLimit
	case e.Channel == ChannelCall:
		limit = MessageCallLimit
	default:
		limit = "You've reached our limit on verification attempts."
	}
	return limit + " " + RetryPhrase(e.RetryAfter)
}

// RetryPhrase says in plain words when to try again.
func RetryPhrase(d time.Duration) string {
	secs := int((d + time.Second - 1) / time.Second)
	switch {
	case secs <= 1:
		return "Please try again in 1 second."
	case secs < 60:
		return fmt.Sprintf("Please try again in %d seconds.", secs)
	case secs < 120:
		return "Please try again in 1 minute."
	case secs < 3600:
		return fmt.Sprintf("Please try again in %d minutes.", (secs+59)/60)
	case secs < 7200:
		return "Please try again in 1 hour."
	default:
		return fmt.Sprintf("Please try again in %d hours.", (secs+3599)/3600)
	}
}

// NotPendingError is returned (wrapping ErrNotPending) by Check and Cancel on
// a verification that has already ended; Status says how.
type NotPendingError struct{ Status Status }

func (e *NotPendingError) Error() string {
	return fmt.Sprintf("verification is %s, not pending", e.Status)
}

// Unwrap lets errors.Is(err, ErrNotPending) match.
func (e *NotPendingError) Unwrap() error { return ErrNotPending }

// InputError carries a message a person can act on, wrapping one of
// ErrInvalidRequest, ErrInvalidNumber, ErrUnsupportedNumber or
// ErrCountryNotAllowed.
type InputError struct {
	Err error
	Msg string
	// Field, when set, names the request field Msg is about, as the REST
	// API v1 names it (locale, client_ip): each front end words it in its
	// own parameter names.
	Field string
}

// Error is Msg, after Field when one is set.
func (e *InputError) Error() string {
	if e.Field != "" {
		return e.Field + " " + e.Msg
	}
	return e.Msg
}

// Unwrap returns the sentinel.
func (e *InputError) Unwrap() error { return e.Err }

// Invalid returns an InputError wrapping kind with a formatted message.
func Invalid(kind error, format string, args ...any) error {
	return &InputError{Err: kind, Msg: fmt.Sprintf(format, args...)}
}

// ErrorCode maps err to its REST API error code.
func ErrorCode(err error) string {
	switch {
	case errors.Is(err, ErrInvalidNumber):
		return CodeInvalidNumber
	case errors.Is(err, ErrUnsupportedNumber):
		return CodeUnsupportedNumber
	case errors.Is(err, ErrCountryNotAllowed):
		return CodeCountryNotAllowed
	case errors.Is(err, ErrRateLimited):
		return CodeRateLimited
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrNotPending):
		return CodeNotPending
	case errors.Is(err, ErrInvalidRequest):
		return CodeInvalidRequest
	default:
		return CodeUnavailable
	}
}
