// Package ivr holds the verification call script as a pure state machine.
//
// ivr knows nothing of SIP, RTP or Twilio. A transport (package sip over
// RTP, package twilio over TwiML webhooks) feeds it events (the call was
// answered, keys were gathered, a gather timed out) and executes the
// actions it returns (play prompts, gather keys, hang up, report to
// verify.Service). One script, two transports: a behaviour fixed here is
// fixed for both.
//
// ivr is the only decider of what a call meant. Its Report actions carry
// the verify.Outcome of a call the script ended (approved, denied for
// fraud, not confirmed), and Ended gives the outcome of a call that ended
// otherwise (not answered, busy, hung up...). The transports put that
// outcome in the event they report, and verify.Service records it as
// given.
//
// The script's State is a small value that can travel in a webhook URL
// (State.Encode, DecodeState), because Twilio's webhooks are stateless and
// may reach another gateway instance. The Script (mode, code, limits) is
// not part of the State: the transport rebuilds it for every step, and the
// code in it is never written anywhere in clear by this package.
//
// Keys arrive one gather at a time. A gather ends when the finish key '#'
// is pressed (Input.Finished, with the keys before it in Input.Digits),
// when MaxDigits keys were gathered (Input without Finished), or when the
// key timeout passes (Silence if no key came, otherwise Input without
// Finished). The approve script asks for one key per gather, so "0#"
// arrives either as Input{"0", Finished} (a transport that collects up to
// the finish key) or as Input{"0"} followed by Input{"", Finished} (one key
// per gather, as the Twilio transport does): both mean the same.
package ivr
