// Package sip places Verigate's verification calls itself, without Twilio:
// a SIP user agent on github.com/emiago/sipgo that dials a PBX or SIP trunk
// and runs the ivr call script over the call's media (package sip/media).
// This package is the signalling; the RTP, SDP and DTMF are sip/media's.
//
// Files:
//   - ua.go, ua_log.go: the endpoint (sipgo user agent bound to the listen
//     address, UDP, TCP and TLS), Contact and SDP addresses, responses, and
//     the bounding of what strangers make the stack log. endpoint.go
//     exports it as Endpoint for the test phone (internal/siptest).
//   - call.go: Caller (verify.Caller): the INVITE from the listen address,
//     digest, CANCEL after the ring timeout, the answer's SDP, the media
//     session, ACK and BYE, and the events reported to verify.
//   - call_script.go: the select loop that runs the ivr script over the
//     media (play, gather, barge-in, silence); the decisions are ivr's.
//   - call_classify.go: final responses and INVITE errors to verification
//     events.
//   - call_info.go: SIP INFO in a call's dialog (parsed once with
//     media.ParseINFO, the key handed to the session) and 405 with Allow.
//   - call_peer.go: which addresses are the call's peer; requests naming a
//     call's dialog from anyone else are refused and change nothing.
//   - trunk.go: trunks from configuration and the dial-string rewrite;
//     trunk_health.go, trunk_keepalive.go (OPTIONS) and trunk_register.go
//     (REGISTER with digest) keep them usable.
//
// Requests from strangers (an INVITE nobody placed, a BYE for no dialog, a
// request naming a call's dialog from elsewhere than the call's peer) are
// rejected and change nothing; the media takes RTP from the peer's stream
// only, on a port drawn at random.
//
// The test phone that answers such calls for operators and tests (`verigate
// phone`, `serve --dev` without a trunk) is internal/siptest's Phone.
package sip
