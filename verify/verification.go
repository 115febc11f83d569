package verify

import "time"

// Channel is how a code or a call reaches the person.
type Channel string

// Channels. ChannelAuto lets the Router choose.
const (
	ChannelSMS  Channel = "sms"
	ChannelCall Channel = "call"
	ChannelAuto Channel = "auto"
)

// Valid reports whether c is a channel a client may ask for.
func (c Channel) Valid() bool {
	return c == ChannelSMS || c == ChannelCall || c == ChannelAuto
}

// CallMode says what a verification call does.
type CallMode string

// Call modes. In approve mode the person presses # and the call itself
// approves the verification; in code mode the call reads the code aloud.
const (
	CallModeApprove CallMode = "approve"
	CallModeCode    CallMode = "code"
)

// Valid reports whether m is a known call mode.
func (m CallMode) Valid() bool { return m == CallModeApprove || m == CallModeCode }

// Status is where a verification stands. Only StatusPending can change.
type Status string

// Statuses, as the REST API names them.
const (
	StatusPending            Status = "pending"
	StatusApproved           Status = "approved"
	StatusDenied             Status = "denied"
	StatusCanceled           Status = "canceled"
	StatusExpired            Status = "expired"
	StatusMaxAttemptsReached Status = "max_attempts_reached"
	StatusFailed             Status = "failed"
)

// Final reports whether s can no longer change.
func (s Status) Final() bool { return s != StatusPending }

// Verification is one attempt to prove that a person holds a phone number.
// The code is never held here in clear: CodeHashes holds its HMAC and
// SealedCode its encryption.
type Verification struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	// Kind is KindMessage for a message relayed for the client
	// (Service.Relay), which has no code of Verigate's and ends as
	// delivered, undelivered or failed.
	Kind     Kind     `json:"kind,omitempty"`
	To       string   `json:"to"` // E.164
	Country  string   `json:"country,omitempty"`
	Channel  Channel  `json:"channel"`
	CallMode CallMode `json:"call_mode,omitempty"`
	Locale   string   `json:"locale,omitempty"`
	UserID   string   `json:"user_id,omitempty"`
	ClientIP string   `json:"client_ip,omitempty"`

	CallbackURL string `json:"callback_url,omitempty"`
	// CallbackFormat names the wire format of the callbacks to
	// CallbackURL: "" for Verigate's; another is written by the Notifier
	// of the front end that set it (MessageRequest.CallbackFormat).
	CallbackFormat string `json:"callback_format,omitempty"`

	Status Status `json:"status"`
	// Reason says why a final status was reached, e.g. "fraud_reported".
	Reason string `json:"reason,omitempty"`

	Attempts    int `json:"attempts"`     // checks made so far
	MaxAttempts int `json:"max_attempts"` // checks allowed
	Sends       int `json:"sends"`        // codes sent or calls placed

	// CodeHashes are the HMACs of the verification's code. A verification
	// has one code, sent again by every resend; more than one hash is
	// found only in verifications that an earlier version resent with a
	// fresh code each time. Any of them is accepted until it ends.
	CodeHashes []string `json:"code_hashes,omitempty"`
	// SealedCode is the code sealed under the server secret
	// (Hasher.SealCode), so a resend sends the same code; never shown.
	SealedCode string `json:"-"`

	Route Route `json:"route"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	ExpiresAt time.Time `json:"expires_at"`

	Events []Event `json:"events,omitempty"`
}

// AttemptsLeft is how many more checks the verification accepts.
func (v *Verification) AttemptsLeft() int {
	if n := v.MaxAttempts - v.Attempts; n > 0 {
		return n
	}
	return 0
}

// Route is the routing decision for one send: which channel, through which
// provider (and SIP trunk), and why.
type Route struct {
	Channel  Channel  `json:"channel"`
	Provider string   `json:"provider,omitempty"`
	Trunk    string   `json:"trunk,omitempty"`
	SenderID string   `json:"sender_id,omitempty"`
	Fallback Channel  `json:"fallback,omitempty"`
	Reasons  []string `json:"reasons,omitempty"`
}

// EventType names something that happened to a verification.
type EventType string

// Event types. Delivery events come from providers (Twilio callbacks, SIP
// responses, RTP timeouts); the rest from the Service.
const (
	EventCreated            EventType = "created"
	EventResent             EventType = "resent"
	EventSent               EventType = "sent"
	EventSendFailed         EventType = "send_failed"
	EventQueued             EventType = "queued"
	EventDelivered          EventType = "delivered"
	EventUndelivered        EventType = "undelivered"
	EventRinging            EventType = "ringing"
	EventAnswered           EventType = "answered"
	EventKeyPressed         EventType = "key_pressed"
	EventNoAnswer           EventType = "no_answer"
	EventBusy               EventType = "busy"
	EventRejected           EventType = "rejected"
	EventInvalidNumber      EventType = "invalid_number"
	EventFailed             EventType = "failed"
	EventCompleted          EventType = "completed"
	EventCheckFailed        EventType = "check_failed"
	EventApproved           EventType = "approved"
	EventCallApproved       EventType = "call_approved"
	EventFraudReported      EventType = "fraud_reported"
	EventCanceled           EventType = "canceled"
	EventExpired            EventType = "expired"
	EventMaxAttemptsReached EventType = "max_attempts_reached"
)

// Outcome is what a call meant for its verification, as the call script
// (package ivr) decided it: the status the verification ends in and why.
// The Service records it as given, on a pending verification of the
// event's current attempt (an approval or a denial counts from any
// attempt); it never derives one from an event's type.
type Outcome struct {
	// Status is StatusApproved, StatusDenied (fraud reported: the number
	// is blocked too) or StatusFailed.
	Status Status
	// Reason is the verification's Reason: "" for an approval,
	// "fraud_reported", "not_confirmed", or how the call ended
	// ("no_answer", "busy", "completed", ...).
	Reason string
}

// Event is one entry in a verification's history.
type Event struct {
	Type     EventType `json:"type"`
	At       time.Time `json:"at"`
	Channel  Channel   `json:"channel,omitempty"`
	Provider string    `json:"provider,omitempty"`
	// ProviderRef identifies the message or call at the provider (a Twilio
	// SID, a SIP Call-ID).
	ProviderRef string `json:"provider_ref,omitempty"`
	// ErrorCode is the provider's error code or SIP status, if any.
	ErrorCode string `json:"error_code,omitempty"`
	Detail    string `json:"detail,omitempty"`
	// Attempt is the send that ev belongs to: the verification's Sends
	// when that message was sent or that call placed (1 for the first, 2
	// for the first resend or fallback, ...). Providers copy it from
	// Message.Attempt and Call.Attempt. 0 when unknown: events the core and
	// the stores write themselves, and reports of sends made before
	// attempts were numbered.
	Attempt int `json:"attempt,omitempty"`
	// Outcome, on a call's event, is what the call meant for the
	// verification, as ivr decided it; nil when the event decides nothing
	// (call progress, a code-mode call, any SMS event). Not stored: the
	// verification's Status and Reason keep it.
	Outcome *Outcome `json:"-"`
	// Key de-duplicates provider retries: a store records an event whose
	// non-empty Key it has already seen for this verification only once.
	Key string `json:"-"`
}

// Seq numbers the states of a verification, for event streams and
// callbacks: each change adds an event, so the count of its events grows
// with every one; an expiry that only Service.Get reports (nothing stored
// yet) counts one more.
func (v *Verification) Seq() int {
	n := len(v.Events)
	if v.Status == StatusExpired {
		for _, ev := range v.Events {
			if ev.Type == EventExpired {
				return n
			}
		}
		n++
	}
	return n
}
