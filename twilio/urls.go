package twilio

import (
	"net/url"
	"strconv"

	"github.com/verigate/verigate/ivr"
	"github.com/verigate/verigate/verify"
)

// Webhook routes, under PathPrefix. Twilio requests all of them with POST,
// except RouteAudio.
const (
	RouteVoice      = "/voice"         // TwiML when the call is answered
	RouteGather     = "/voice/gather"  // <Gather action>: a key was pressed
	RouteSilence    = "/voice/silence" // <Redirect> after <Gather>: no key came
	RouteCallStatus = "/status/call"   // call StatusCallback
	RouteSMSStatus  = "/status/sms"    // message StatusCallback
	// RouteAudio serves the prompts' recordings to <Play> (VoicePlay),
	// with GET and no signature: "<RouteAudio>/<locale>/<id>.ulaw.wav".
	RouteAudio = "/audio"
)

// Query parameters of the webhook URLs.
const (
	paramContext = "c" // the sealed call context
	paramState   = "s" // the encoded ivr.State
	paramID      = "v" // the verification id, for status callbacks
	// paramAttempt numbers the send a status callback is about (see
	// verify.Event.Attempt). Twilio signs the URL with the rest, so it
	// cannot be altered.
	paramAttempt = "a"
	// paramMode is the call mode a call status callback is about, so that
	// ivr can say what the call's end meant (ivr.Ended).
	paramMode = "m"
)

// urls builds the absolute public webhook URLs Twilio is given.
type urls struct{ base string } // PublicURL + PathPrefix

func (u urls) voice(token string) string {
	return u.base + RouteVoice + "?" + url.Values{paramContext: {token}}.Encode()
}

func (u urls) gather(token string, st ivr.State) string {
	return u.base + RouteGather + "?" + url.Values{paramContext: {token}, paramState: {st.Encode()}}.Encode()
}

func (u urls) silence(token string, st ivr.State) string {
	return u.base + RouteSilence + "?" + url.Values{paramContext: {token}, paramState: {st.Encode()}}.Encode()
}

func (u urls) callStatus(id string, attempt int, mode verify.CallMode) string {
	q := statusValues(id, attempt)
	if mode == "" {
		mode = verify.CallModeApprove // as ivr.Script takes it
	}
	q.Set(paramMode, string(mode))
	return u.base + RouteCallStatus + "?" + q.Encode()
}

func (u urls) smsStatus(id string, attempt int) string {
	return u.base + RouteSMSStatus + "?" + statusValues(id, attempt).Encode()
}

func statusValues(id string, attempt int) url.Values {
	q := url.Values{paramID: {id}}
	if attempt > 0 {
		q.Set(paramAttempt, strconv.Itoa(attempt))
	}
	return q
}
