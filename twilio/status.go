package twilio

import "github.com/verigate/verigate/verify"

// smsEvents maps a Messages status callback's MessageStatus to the event it
// records. Statuses absent here (accepted, scheduled, sending, receiving,
// received, partially_delivered) record nothing: they are steps on the
// way, not news for the verification.
var smsEvents = map[string]verify.EventType{
	"queued":      verify.EventQueued,
	"sent":        verify.EventSent,
	"delivered":   verify.EventDelivered,
	"read":        verify.EventDelivered,
	"undelivered": verify.EventUndelivered,
	"failed":      verify.EventFailed,
	"canceled":    verify.EventSendFailed,
}

// callEvents maps a call status callback's CallStatus to its event.
// completed, busy, no-answer, failed and canceled end an approve-mode call:
// the Service fails the verification if it is still pending then.
var callEvents = map[string]verify.EventType{
	"queued":      verify.EventQueued,
	"initiated":   verify.EventSent,
	"ringing":     verify.EventRinging,
	"in-progress": verify.EventAnswered,
	"completed":   verify.EventCompleted,
	"busy":        verify.EventBusy,
	"no-answer":   verify.EventNoAnswer,
	"failed":      verify.EventFailed,
	"canceled":    verify.EventFailed,
}

// SMSEvent returns the event a MessageStatus records, if any.
func SMSEvent(status string) (verify.EventType, bool) {
	t, ok := smsEvents[status]
	return t, ok
}

// CallEvent returns the event a CallStatus records, if any.
func CallEvent(status string) (verify.EventType, bool) {
	t, ok := callEvents[status]
	return t, ok
}
