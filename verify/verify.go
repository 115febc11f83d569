// Package verify is the core of Verigate: the Verification, its statuses and
// events, one-time codes, and the Service that runs the lifecycle
// (Start, Check, CheckByNumber, Get, Cancel, Approve, Report, and the
// expiry sweep, ExpireDue and RunExpiry).
//
// verify imports none of Verigate's other packages. It defines the small
// interfaces it consumes (Store, Limiter, NumberParser, Router, Sender,
// Caller, Formatter); store, ratelimit, route, sms, twilio and sip implement
// them and cmd/verigate wires them together.
package verify
