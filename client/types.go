package client

import "time"

// Status is a verification's status.
type Status string

// The statuses (the Status schema of api/openapi.json).
const (
	StatusPending            Status = "pending"
	StatusApproved           Status = "approved"
	StatusDenied             Status = "denied"
	StatusCanceled           Status = "canceled"
	StatusExpired            Status = "expired"
	StatusMaxAttemptsReached Status = "max_attempts_reached"
	StatusFailed             Status = "failed"
)

// Channel is how a verification or message is delivered.
type Channel string

// The channels. A verification or message asks for one; ChannelAuto lets
// routing choose (calls fixed lines and roaming numbers, texts the rest)
// and is never the channel a verification shows.
const (
	ChannelSMS  Channel = "sms"
	ChannelCall Channel = "call"
	ChannelAuto Channel = "auto"
)

// CallMode is what a verification call asks of the person.
type CallMode string

// The call modes.
const (
	// CallModeApprove: press # to approve; the call approves by itself.
	CallModeApprove CallMode = "approve"
	// CallModeCode: the code is read aloud, then checked like an SMS code.
	CallModeCode CallMode = "code"
)

// StartRequest is what to verify and how. Only To is required.
type StartRequest struct {
	// To is the phone number, international (+4915123456789) or, with a
	// default region configured on the gateway, national.
	To       string   `json:"to"`
	Channel  Channel  `json:"channel,omitempty"`   // sms when empty
	Locale   string   `json:"locale,omitempty"`    // e.g. en, de, pt-BR
	UserID   string   `json:"user_id,omitempty"`   // the IdP's user, for per-user limits
	CallMode CallMode `json:"call_mode,omitempty"` // approve when empty
	ClientIP string   `json:"client_ip,omitempty"` // the end user's address
	// Roaming, when set, says whether the IdP believes the phone roams.
	Roaming *bool `json:"roaming,omitempty"`
	// CallbackURL receives every status change, signed (VerifyCallback).
	CallbackURL string `json:"callback_url,omitempty"`
	// IdempotencyKey, when set, is sent as the Idempotency-Key header: a
	// retry with the same key and request gets the first answer again
	// for 24 hours instead of sending a second code.
	IdempotencyKey string `json:"-"`
}

// Verification is a verification as the API shows it.
type Verification struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Reason says why a final status was reached, e.g. fraud_reported,
	// not_confirmed, no_answer, busy.
	Reason   string   `json:"reason,omitempty"`
	Channel  Channel  `json:"channel"`
	CallMode CallMode `json:"call_mode,omitempty"`
	Locale   string   `json:"locale,omitempty"`
	// To is the number in E.164, masked: +49151*****789.
	To           string    `json:"to"`
	Route        Route     `json:"route"`
	AttemptsLeft int       `json:"attempts_left"`
	Sends        int       `json:"sends"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	Events       []Event   `json:"events"`
}

// Route is how a verification is delivered and why.
type Route struct {
	Channel  Channel  `json:"channel"`
	Provider string   `json:"provider,omitempty"`
	Trunk    string   `json:"trunk,omitempty"`
	Reasons  []string `json:"reasons,omitempty"`
}

// Event is one thing that happened to a verification.
type Event struct {
	Type      string    `json:"type"`
	At        time.Time `json:"at"`
	Channel   string    `json:"channel,omitempty"`
	Provider  string    `json:"provider,omitempty"`
	ErrorCode string    `json:"error_code,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	// Attempt is which send a provider's event is about (1 for the first).
	Attempt int `json:"attempt,omitempty"`
}

// Started is the answer to a start.
type Started struct {
	Verification
	// Resent is true when the number had a pending verification: this
	// is it (same id), sent again; every code sent in it stays valid.
	Resent bool `json:"-"`
	// Replayed is true when the answer is the stored one for the
	// request's IdempotencyKey.
	Replayed bool `json:"-"`
}

// CheckResult is the status after a check: StatusApproved, StatusPending
// (a wrong code; AttemptsLeft says how many remain), or
// StatusMaxAttemptsReached or StatusExpired.
type CheckResult struct {
	ID           string `json:"id"`
	Status       Status `json:"status"`
	AttemptsLeft int    `json:"attempts_left"`
}

// MessageRequest is a message the caller wrote, with its own code, for
// the relay. To and Body are required.
type MessageRequest struct {
	To string `json:"to"`
	// Body is sent as written by SMS (at most 459 characters); a call
	// reads the first run of 4 to 10 digits in it, digit by digit, twice.
	Body string `json:"body"`
	// Channel: sms when empty; call reads the body's code; auto lets
	// routing choose (a fixed line is called).
	Channel  Channel `json:"channel,omitempty"`
	Locale   string  `json:"locale,omitempty"` // the language of a call
	UserID   string  `json:"user_id,omitempty"`
	ClientIP string  `json:"client_ip,omitempty"`
	Roaming  *bool   `json:"roaming,omitempty"`
	// CallbackURL receives the message's end (delivered, undelivered,
	// failed), signed as a verification's callbacks are.
	CallbackURL string `json:"callback_url,omitempty"`
	// IdempotencyKey, when set, is sent as the Idempotency-Key header: a
	// retry with the same key gets the first answer instead of a second
	// message.
	IdempotencyKey string `json:"-"`
}

// MessageStatus is how a relayed message stands.
type MessageStatus string

// The statuses of a relayed message (the MessageStatus schema).
const (
	// MessagePending: handed to the provider, no report yet.
	MessagePending MessageStatus = "pending"
	// MessageDelivered: the SMS was delivered, or the call answered.
	MessageDelivered MessageStatus = "delivered"
	// MessageUndelivered: the SMS was not delivered; the call was not
	// answered, busy or rejected.
	MessageUndelivered MessageStatus = "undelivered"
	// MessageFailed: refused by the provider, or not sent.
	MessageFailed MessageStatus = "failed"
	// MessageExpired: no report within the lifetime.
	MessageExpired  MessageStatus = "expired"
	MessageCanceled MessageStatus = "canceled"
)

// Message is a relayed message as the API shows it; never its body.
type Message struct {
	ID     string        `json:"id"`
	Status MessageStatus `json:"status"`
	// Reason is the provider event that ended the message.
	Reason  string  `json:"reason,omitempty"`
	Channel Channel `json:"channel"`
	Locale  string  `json:"locale,omitempty"`
	// To is the number in E.164, masked.
	To        string    `json:"to"`
	Route     Route     `json:"route"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Events    []Event   `json:"events"`
}
