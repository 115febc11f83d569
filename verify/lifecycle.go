package verify

import "errors"

// LifecycleObserver learns of what happens to verifications, for the
// gateway's metrics: each send, each delivery outcome a provider reports,
// each end, and each limit that refused a request. Relayed messages
// (KindMessage) are not told of. Every method runs in the request that
// caused it and must not block. Optional: see Config.Lifecycle.
type LifecycleObserver interface {
	// Sent is told that v was stored and its code is being sent (or its
	// call placed) through provider: a new verification, or a resend of
	// a pending one (resent). A send that then fails ends v (Ended, status
	// failed) unless it was a resend.
	Sent(v *Verification, provider string, resent bool)
	// Reported is told of a delivery outcome (delivered, undelivered, no
	// answer, busy, rejected, invalid number, failed) recorded on v.
	Reported(v *Verification, provider string, ev Event)
	// Ended is told that v reached its final status; ev is the event that
	// ended it (an approval by a check is EventApproved with v.Channel
	// telling an SMS code from a code read out in a call; a press of #
	// is the call's event with an Outcome).
	Ended(v *Verification, provider string, ev Event)
	// Limited is told that a limit (policy) refused a send on channel, or
	// a check (channel "").
	Limited(channel Channel, policy string)
}

// sent tells the LifecycleObserver of a send of v.
func (s *Service) sent(v *Verification, route Route, resent bool) {
	if l := s.cfg.Lifecycle; l != nil && v.Kind != KindMessage {
		l.Sent(v, s.providerName(route), resent)
	}
}

// reported tells the LifecycleObserver of a delivery outcome on v.
func (s *Service) reported(v *Verification, ev Event) {
	if l := s.cfg.Lifecycle; l != nil && v.Kind != KindMessage && ev.Type.deliveryOutcome() {
		l.Reported(v, s.eventProvider(v, ev), ev)
	}
}

// ended tells the LifecycleObserver that v reached a final status with ev.
func (s *Service) ended(v *Verification, ev Event) {
	if l := s.cfg.Lifecycle; l != nil && v.Kind != KindMessage && v.Status != StatusPending {
		l.Ended(v, s.eventProvider(v, ev), ev)
	}
}

// lastEvent is the event a store's transition appended to v.
func lastEvent(v *Verification) Event {
	if n := len(v.Events); n > 0 {
		return v.Events[n-1]
	}
	return Event{}
}

// eventProvider names the provider ev is about: its own, else the one v's
// route resolves to.
func (s *Service) eventProvider(v *Verification, ev Event) string {
	if ev.Provider != "" {
		return ev.Provider
	}
	r := v.Route
	if r.Channel == "" {
		r.Channel = v.Channel
	}
	return s.providerName(r)
}

// limited tells the LifecycleObserver when err is a limit's refusal.
func (s *Service) limited(err error) {
	var le *LimitError
	if l := s.cfg.Lifecycle; l != nil && errors.As(err, &le) {
		l.Limited(le.Channel, le.Policy)
	}
}
