package verify

import (
	"context"
	"errors"
	"unicode/utf8"
)

// Kind tells what a stored Verification is: a verification of Verigate's
// own code (KindVerification, the zero value) or a message relayed for a
// client that makes its own codes (KindMessage).
type Kind string

// Kinds.
const (
	KindVerification Kind = ""
	KindMessage      Kind = "message"
)

// Statuses of a relayed message (KindMessage). A message is pending until
// its provider reports how the send ended: delivered (an SMS delivered, a
// call answered), undelivered (an SMS not delivered, a call not answered,
// busy or rejected) or failed (the provider refused it, or the number is
// not reachable). A message with no report within the lifetime shows as
// expired, as a verification does.
const (
	StatusDelivered   Status = "delivered"
	StatusUndelivered Status = "undelivered"
)

// MaxMessageBody is the most characters a relayed message may hold: three
// concatenated SMS segments of the GSM 7-bit alphabet (153 characters
// each). A text outside that alphabet travels as UCS-2, 67 characters a
// segment, so the longest such body takes seven segments. IdPs send a
// sentence and a code; anything longer is a mistake or an abuse.
const MaxMessageBody = 459

// Code digits a call reads out of a relayed message: the first run of
// MinMessageCode to MaxMessageCode digits.
const (
	MinMessageCode = 4
	MaxMessageCode = 10
)

// MessageRequest asks to relay one message, written by the client (an IdP
// with its own codes), to To. Channel sms sends Body as the SMS; call
// phones To and reads the code found in Body (MessageCode), digit by digit
// and twice, in Locale; auto lets routing choose (a landline gets the
// call), and is sms when Body holds no code.
type MessageRequest struct {
	Tenant      string
	To          string // as the client gave it; normalised by the NumberParser
	Body        string
	Channel     Channel
	Locale      string
	UserID      string
	ClientIP    string
	Roaming     *bool
	CallbackURL string
	// CallbackFormat names the wire format of the status callbacks to
	// CallbackURL: "" for Verigate's own; a front end that answers in
	// another provider's shape (the Twilio-compatible Messages API) names
	// its own, and its Notifier writes it (see Verification.CallbackFormat).
	CallbackFormat string
}

// MessageCode returns the code a call reads from a relayed message body:
// the first run of MinMessageCode to MaxMessageCode ASCII digits (a run
// is as long as the digits go on: a longer one, such as a phone number, is
// not a code), or "" when there is none.
func MessageCode(body string) string {
	for i := 0; i < len(body); {
		if body[i] < '0' || body[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(body) && body[j] >= '0' && body[j] <= '9' {
			j++
		}
		if n := j - i; n >= MinMessageCode && n <= MaxMessageCode {
			return body[i:j]
		}
		i = j
	}
	return ""
}

// Relay delivers a message the client wrote, through the limits, routing,
// fraud controls and providers a verification's send goes through, and
// stores it (Kind KindMessage) so its delivery can be read back with Get
// and reported by the providers. Relayed messages never resend or join a
// pending verification of the same number, and have no fallback to the
// other channel: the body is not kept after the send, so nothing could be
// sent again. The body, and the code a call reads, are never logged or
// stored.
//
// Errors as for Start; *InputError (ErrInvalidRequest) for an empty or too
// long body, or a call asked for a body without a code.
func (s *Service) Relay(ctx context.Context, req MessageRequest) (*Verification, error) {
	switch n := utf8.RuneCountInString(req.Body); {
	case n == 0:
		return nil, Invalid(ErrInvalidRequest, "body is empty: send the text of the message")
	case n > MaxMessageBody:
		return nil, Invalid(ErrInvalidRequest, "body is %d characters; at most %d (three SMS segments)", n, MaxMessageBody)
	case !utf8.ValidString(req.Body):
		return nil, Invalid(ErrInvalidRequest, "body is not valid UTF-8")
	}
	code := MessageCode(req.Body)
	if req.Channel == ChannelCall && code == "" {
		return nil, Invalid(ErrInvalidRequest, "channel call reads the code in the body aloud, and body holds none (a run of %d to %d digits)", MinMessageCode, MaxMessageCode)
	}
	textOnly := req.Channel == ChannelAuto && code == ""
	if textOnly {
		req.Channel = ChannelSMS // a call would have nothing to say
	}
	v, err := s.begin(ctx, StartRequest{
		Tenant: req.Tenant, To: req.To, Channel: req.Channel, CallMode: CallModeCode, Locale: req.Locale,
		UserID: req.UserID, ClientIP: req.ClientIP, Roaming: req.Roaming, CallbackURL: req.CallbackURL,
	}, &relayed{body: req.Body, code: code, format: req.CallbackFormat})
	var in *InputError
	if textOnly && errors.Is(err, ErrUnsupportedNumber) && errors.As(err, &in) {
		// The router's words suggest a call, which this body cannot have.
		return nil, Invalid(ErrUnsupportedNumber, "%s; but the body holds no code (a run of %d to %d digits) for a call to read", in.Msg, MinMessageCode, MaxMessageCode)
	}
	return v, err
}

// relayed is what a message's send carries past a verification's: the
// body an SMS sends and the code a call reads, in memory for the send only.
type relayed struct {
	body, code, format string
}

// messageOutcome is the status a provider's event ends a pending message
// with, or "" when the event does not end it.
func messageOutcome(t EventType) Status {
	switch t {
	case EventDelivered, EventAnswered:
		return StatusDelivered
	case EventUndelivered, EventNoAnswer, EventBusy, EventRejected:
		return StatusUndelivered
	case EventFailed, EventInvalidNumber:
		return StatusFailed
	}
	return ""
}

// reportMessage records ev on v, a relayed message, and ends v when ev
// says how its send ended (messageOutcome), telling the client.
func (s *Service) reportMessage(ctx context.Context, v *Verification, ev Event) error {
	status := messageOutcome(ev.Type)
	if status == "" || v.Status != StatusPending || (ev.Channel != "" && ev.Channel != v.Channel) {
		added, err := s.cfg.Store.AddEvent(ctx, v.ID, ev)
		if err != nil {
			return unavailableUnless(err, ErrNotFound)
		}
		if added {
			s.observe(ctx, v, ev)
		}
		return nil
	}
	ended, err := s.cfg.Store.Transition(ctx, "", v.ID, status, string(ev.Type), ev)
	if err != nil {
		return s.recordInstead(ctx, v.ID, ev, err)
	}
	s.log.Info("message "+string(status), "verification", v.ID, "tenant", v.Tenant, "to", MaskNumber(v.To), "event", ev.Type)
	s.observe(ctx, v, ev)
	s.notify(ended)
	return nil
}
