// Package sip places Verigate's verification calls itself, without Twilio:
// a SIP user agent on github.com/emiago/sipgo that dials a PBX or SIP trunk,
// an RTP media layer (media_*.go, sdp*.go, rfc4733*.go, g711*.go) that
// speaks the prompts and hears the keys, and the test phone that answers
// such calls for operators and tests.
//
// Signalling and media stay apart. The user agent (ua*.go) owns dialogs:
// it sends the INVITE from the configured listen address, answers digest
// challenges, CANCELs after the ring timeout, maps final responses to
// verification events, ACKs, and sends or accepts BYE. Requests from
// strangers (an INVITE nobody placed, a BYE for no dialog, a request
// naming a call's dialog from elsewhere than the call's peer) are rejected
// and change nothing; the media takes RTP from the peer's stream only, on
// a port drawn at random; what strangers make the stack log is bounded
// (ua_log.go). A call (call*.go) runs the ivr script over the RTP session:
// the select loop is here, the decisions are ivr's.
//
// Trunks come from configuration (trunk*.go): where to send calls, with
// which credentials, and how to rewrite an E.164 number into the dial
// string the PBX expects.
package sip
