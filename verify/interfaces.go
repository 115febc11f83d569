package verify

import (
	"context"
	"net/url"
	"time"
)

// Store keeps verifications. Every method is one atomic step: a Redis
// implementation runs each as one Lua script, so concurrent gateways never
// read-modify-write across round trips. tenant "" in a method means "any
// tenant" and is used only by providers reporting on a verification by id.
type Store interface {
	// Start consumes one send of s from the send limits (as
	// Limiter.Consume does) and then stores v, all or nothing: when the
	// limits deny it returns the *LimitError and stores nothing. The Redis
	// store does both in one script (one round trip); the in-memory one
	// consumes, then stores.
	//
	// It stores v, a new pending verification carrying hash (its code's
	// HMAC) and v.SealedCode, unless v.Tenant already has a pending,
	// unexpired verification for v.To: then it resends that one instead
	// (counts a send, takes v's Channel, CallMode, Locale and Route, records
	// EventResent, and keeps its own code: hash and v.SealedCode are
	// ignored, unless it has no SealedCode, as one stored by an earlier
	// version, when hash is added to its CodeHashes, as that version did)
	// and returns it with resent true. An expired pending verification
	// found on the way is marked expired and a new one made.
	//
	// A v of Kind KindMessage (a relayed message) is always stored new,
	// with no code hash, and is never the number's pending verification:
	// it is neither resent nor found by a check by number, and its end
	// leaves the number's pending verification alone.
	Start(ctx context.Context, s SendSubject, v *Verification, hash string, now time.Time) (stored *Verification, resent bool, err error)

	// Get returns the verification with id. ErrNotFound if there is none
	// or it belongs to another tenant.
	Get(ctx context.Context, tenant, id string) (*Verification, error)

	// Check applies one code check (see CheckQuery) and returns the
	// verification after it. Errors: ErrNotFound (also for a relayed
	// message, which has no code to check); *NotPendingError if it
	// had already ended; *LimitError if failed checks lock the number.
	Check(ctx context.Context, q CheckQuery) (*Verification, error)

	// Transition moves a pending verification to status with reason and
	// records ev. A relayed message (KindMessage) is ErrNotFound to a
	// tenant's transition (a client's cancel or approval) and ended only
	// by a provider's report (tenant ""). *NotPendingError if it is no longer pending (an expired
	// one is marked expired on the way); ErrNotFound if missing.
	// ErrSuperseded, changing nothing, when status is StatusFailed and ev
	// belongs to an earlier attempt (0 < ev.Attempt < Sends): a late end of
	// a call or message that a resend replaced must not fail the
	// verification, even when the resend lands between the caller's read
	// and this step. Other statuses are not conditioned: a # or a fraud
	// report on any call of the verification counts.
	Transition(ctx context.Context, tenant, id string, status Status, reason string, ev Event) (*Verification, error)

	// AddEvent records ev. It reports added false, and changes nothing,
	// when ev.Key is set and an event with that key was already recorded.
	AddEvent(ctx context.Context, id string, ev Event) (added bool, err error)
}

// CheckQuery is one check of a code. Exactly one of ID and To is set: a
// check by id, or a check of the tenant's pending verification for the
// number To.
//
// The store, atomically: refuses with *LimitError when the number has had
// Lock.Max failed checks within Lock.Window; refuses with *NotPendingError
// when the verification has ended; marks it expired (and returns it) when
// Now is past ExpiresAt; otherwise counts an attempt and approves when Hash
// matches one of CodeHashes (EventApproved), or records EventCheckFailed and
// one failed check for the lock, ending it as max_attempts_reached
// (EventMaxAttemptsReached) when no attempt is left.
type CheckQuery struct {
	Tenant string
	ID     string
	To     string
	Hash   string
	Now    time.Time
	Lock   CheckLock
}

// CheckLock bounds failed checks per tenant and number across
// verifications, in two sliding windows over the same failures: Max per
// Window against bursts, and LongMax per LongWindow, which bounds the odds
// of guessing a code over a month (docs/SECURITY.md). A window whose max or
// length is 0 is off; both off turn the lock off.
type CheckLock struct {
	Max        int
	Window     time.Duration
	LongMax    int
	LongWindow time.Duration
}

// Keep is how long a failure counts: the longest window in force, 0 when
// the lock is off.
func (l CheckLock) Keep() time.Duration {
	var keep time.Duration
	if l.Max > 0 && l.Window > 0 {
		keep = l.Window
	}
	if l.LongMax > 0 && l.LongWindow > 0 {
		keep = max(keep, l.LongWindow)
	}
	return keep
}

// Wait is how long checks stay locked after failures (their times, oldest
// first, none older than Keep before now): until the failure that filled
// a window leaves it. 0 means not locked. The Redis store's check script
// applies the same rule.
func (l CheckLock) Wait(failures []time.Time, now time.Time) time.Duration {
	var wait time.Duration
	for _, w := range [...]struct {
		max    int
		window time.Duration
	}{{l.Max, l.Window}, {l.LongMax, l.LongWindow}} {
		if w.max <= 0 || w.window <= 0 || len(failures) < w.max {
			continue
		}
		wait = max(wait, failures[len(failures)-w.max].Add(w.window).Sub(now))
	}
	return wait
}

// Limiter enforces the send limits. The Service refunds and blocks
// through it; sends are consumed by Store.Start, which the gateway builds
// on the same limiter.
type Limiter interface {
	// Consume takes one send from every policy that applies to s, all or
	// none. Denied: a *LimitError (wrapping ErrRateLimited) naming the
	// policy and when to retry. A number blocked by Block is denied too.
	Consume(ctx context.Context, s SendSubject) error

	// Block refuses every send to the E.164 number for d (after a fraud report).
	Block(ctx context.Context, number string, d time.Duration) error

	// Refund takes back the send s.SendID that Consume counted, from every
	// policy that counted it, when the send did not happen for a reason
	// that is not the person's (ErrBusy). Refunding a send that was never
	// counted, or twice, changes nothing.
	Refund(ctx context.Context, s SendSubject) error
}

// SendSubject is what a send is counted against.
type SendSubject struct {
	Tenant   string
	To       string // E.164
	Country  string // ISO 3166 region of To
	Channel  Channel
	UserID   string
	ClientIP string
	// SendID identifies this send (the id of the verification it starts):
	// the limiter counts the send under it, so that Refund can take it back
	// and a consume run twice by a retry counts once. Empty: the limiter
	// makes one up, and the send cannot be refunded.
	SendID string
}

// Number is a parsed, classified phone number.
type Number struct {
	E164     string `json:"e164"`
	Region   string `json:"region"`    // ISO 3166-1 alpha-2
	LineType string `json:"line_type"` // e.g. "mobile", "fixed_line"
	Carrier  string `json:"carrier,omitempty"`
}

// NumberParser validates and normalises phone numbers.
type NumberParser interface {
	// ParseNumber returns the number raw names, in E.164, or an
	// *InputError wrapping ErrInvalidNumber that says what is wrong.
	ParseNumber(raw string) (Number, error)
}

// RouteRequest is what the Router decides on.
type RouteRequest struct {
	Tenant   string
	Number   Number
	Channel  Channel // as requested; may be ChannelAuto
	Roaming  *bool   // the client's hint, if given
	ClientIP string
}

// Router chooses the channel and provider for a send.
type Router interface {
	// Route returns a Route whose Channel is sms or call, or an
	// *InputError wrapping ErrUnsupportedNumber or ErrCountryNotAllowed, or
	// a *LimitError when sends there are paused for a while (an aggregate
	// one: an SMS-pumping block of the destination's prefix).
	Route(ctx context.Context, r RouteRequest) (Route, error)
}

// Message is one SMS to send.
type Message struct {
	VerificationID string
	To             string // E.164
	Body           string
	Locale         string
	SenderID       string // from the route; empty for the provider's default
	// Attempt numbers this send within the verification (its Sends after
	// storing the send). The provider sets it on every Event it reports
	// about this message, so a late report of a superseded message does
	// not end the verification or start its fallback.
	Attempt int
	// Relayed marks a message the client wrote (Service.Relay): it carries
	// the client's code, which Verigate never sees checked, so it is not
	// one of the verification SMS the SMS-pumping watch weighs against
	// approvals.
	Relayed bool
}

// Sender delivers text messages.
type Sender interface {
	// Send hands m to the provider and returns the provider's reference for it.
	Send(ctx context.Context, m Message) (ref string, err error)
}

// Call is one verification call to place.
type Call struct {
	VerificationID string
	Tenant         string
	To             string // E.164
	Locale         string
	Mode           CallMode
	// Code is the code in clear, for code mode only. A Caller keeps it in
	// memory for the length of the call and never logs or stores it.
	Code     string
	Trunk    string // SIP trunk from the route, if any
	CallerID string
	// Attempt numbers this call within the verification, as
	// Message.Attempt does; the Caller sets it on every Event it reports
	// about the call.
	Attempt int
}

// Caller places verification calls. The call runs on after Call returns;
// its outcome arrives through Service.Report.
type Caller interface {
	// Call starts placing c and returns the provider's reference for it.
	Call(ctx context.Context, c Call) (ref string, err error)
}

// Reporter takes what providers see happen to verifications: delivery
// reports, call progress and a call's Outcome. *Service is the one
// implementation; SMS and call providers (and the SMS delivery watch)
// report through it.
type Reporter interface {
	// Report records ev on verification id; see Service.Report.
	Report(ctx context.Context, id string, ev Event) error
}

// EventObserver learns of the provider events the Service records (routing
// keeps its delivery history with it). Optional: see Config.Observer.
type EventObserver interface {
	// Observe is told that ev was recorded on v (v as it was just before
	// ev). It runs in the reporting request and must not block.
	Observe(ctx context.Context, v *Verification, ev Event)
}

// Formatter writes the text of a verification SMS.
type Formatter interface {
	// SMSBody returns the message that carries code, in locale.
	SMSBody(locale, code string) string
}

// AppFormatter is a Formatter that can name another app than the
// gateway's in the SMS (StartRequest.AppName). Optional: without it, a
// start that names an app is refused.
type AppFormatter interface {
	Formatter
	// SMSBodyFor returns the message that carries code, in locale, naming app.
	SMSBodyFor(locale, app, code string) string
}

// Notifier tells the client (the IdP) that a verification changed status,
// at the CallbackURL it gave when it started the verification.
type Notifier interface {
	// Notify queues a notice of v's current status. It must not block for
	// long: it may store the notice (the callback package waits at most
	// callbacks.enqueue_timeout for Redis), but delivery, signing and
	// retries happen on the Notifier's own time.
	Notify(v *Verification)
}

// CallbackChecker is a Notifier that refuses some destinations (the
// callback package refuses the gateway's own networks); Start asks it, so
// a client gets invalid_request at once rather than callbacks that never
// come. Optional.
type CallbackChecker interface {
	// CheckCallbackURL says why callbacks cannot go to u, or returns nil.
	CheckCallbackURL(u *url.URL) error
}
