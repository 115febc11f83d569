package api

// The views as encoding/json structs: the oracle that the hand-written
// encoder in view.go must match byte for byte.

import (
	"time"

	"github.com/verigate/verigate/verify"
)

// verificationView is a verification as the API shows it: the number
// masked, no code hashes, no tenant.
type verificationView struct {
	ID           string          `json:"id"`
	Status       verify.Status   `json:"status"`
	Reason       string          `json:"reason,omitempty"`
	Channel      verify.Channel  `json:"channel"`
	CallMode     verify.CallMode `json:"call_mode,omitempty"`
	Locale       string          `json:"locale,omitempty"`
	To           string          `json:"to"`
	Route        routeView       `json:"route"`
	AttemptsLeft int             `json:"attempts_left"`
	Sends        int             `json:"sends"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	ExpiresAt    time.Time       `json:"expires_at"`
	Events       []eventView     `json:"events"`
}

// routeView and eventView, shared with the message view, are in messages.go.

func viewOf(v *verify.Verification) verificationView {
	events := make([]eventView, len(v.Events))
	for i, e := range v.Events {
		events[i] = eventView{Type: e.Type, At: e.At, Channel: e.Channel, Provider: e.Provider, ErrorCode: e.ErrorCode, Detail: e.Detail, Attempt: e.Attempt}
	}
	return verificationView{
		ID: v.ID, Status: v.Status, Reason: v.Reason, Channel: v.Channel, CallMode: callMode(v),
		Locale: v.Locale, To: verify.MaskNumber(v.To),
		Route:        routeView{Channel: v.Route.Channel, Provider: v.Route.Provider, Trunk: v.Route.Trunk, Reasons: v.Route.Reasons},
		AttemptsLeft: v.AttemptsLeft(), Sends: v.Sends,
		CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, ExpiresAt: v.ExpiresAt, Events: events,
	}
}

// checkView answers a check.
type checkView struct {
	ID           string        `json:"id"`
	Status       verify.Status `json:"status"`
	AttemptsLeft int           `json:"attempts_left"`
}

// callMode is shown for calls only: an SMS has no call mode.
func callMode(v *verify.Verification) verify.CallMode {
	if v.Channel == verify.ChannelCall {
		return v.CallMode
	}
	return ""
}
