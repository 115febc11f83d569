package prompts

import "time"

// ID names one prompt of the catalogue. The ivr script speaks in IDs; the
// transports turn them into audio (SIP) or <Say>/<Play> (Twilio).
type ID string

// The catalogue. Spoken lines first, then texts.
const (
	Greeting        ID = "greeting"         // "Thank you for using our verification system."
	PressPound      ID = "press_pound"      // "Press the pound key to finish verifying your account."
	NotRecognised   ID = "not_recognised"   // "That key was not recognised."
	NoResponse      ID = "no_response"      // "We did not receive your response."
	VerifiedGoodbye ID = "verified_goodbye" // "Your account has been verified. Goodbye."
	FraudGoodbye    ID = "fraud_goodbye"    // "Your fraud report has been recorded. Goodbye."
	Goodbye         ID = "goodbye"          // "Goodbye."
	CodeIntro       ID = "code_intro"       // "Your verification code is"
	CodeAgain       ID = "code_again"       // "Again:"
	Digit0          ID = "digit_0"
	Digit1          ID = "digit_1"
	Digit2          ID = "digit_2"
	Digit3          ID = "digit_3"
	Digit4          ID = "digit_4"
	Digit5          ID = "digit_5"
	Digit6          ID = "digit_6"
	Digit7          ID = "digit_7"
	Digit8          ID = "digit_8"
	Digit9          ID = "digit_9"

	// SMSBody is "Your {app} verification code is {code}.". The limit
	// messages are not prompts: the REST API gives them in English, and
	// verify/errors.go holds them (MessageSMSLimit, MessageCallLimit).
	SMSBody ID = "sms_body"

	// Texts of the hosted verification page of the Entra ID external
	// authentication method (entra/hosted). {number} is the masked number
	// the page calls or texts, {seconds} the resend cool-down.
	PageTitle       ID = "page_title"        // "Verify it's you"
	PageCalling     ID = "page_calling"      // "We're calling {number}. Answer and press # to finish."
	PageCallingCode ID = "page_calling_code" // "We're calling {number}. Enter the code you hear."
	PageTexted      ID = "page_texted"       // "We've sent a code to {number}. Enter it below."
	PageCodeLabel   ID = "page_code_label"   // "Verification code"
	PageSubmitCode  ID = "page_submit_code"  // "Verify"
	PageTextInstead ID = "page_text_instead" // "Text me a code instead"
	PageCallInstead ID = "page_call_instead" // "Call me instead"
	PageCallAgain   ID = "page_call_again"   // "Call me again"
	PageTextAgain   ID = "page_text_again"   // "Text me the code again"
	PageCooldown    ID = "page_cooldown"     // "You can ask again in {seconds} seconds."
	PageNotMe       ID = "page_not_me"       // "This wasn't me"
	PageCancel      ID = "page_cancel"       // "Cancel"
	PageContinue    ID = "page_continue"     // "Continue"
	PageWrongCode   ID = "page_wrong_code"   // "That code is not right. Please try again."
	PagePending     ID = "page_pending"      // "Waiting for your answer…"
	PageApproved    ID = "page_approved"     // "Verified. Signing you in…"
	PageDenied      ID = "page_denied"       // "The verification was refused."
	PageExpired     ID = "page_expired"      // "The time to verify has run out."
	PageFailed      ID = "page_failed"       // "We couldn't reach your phone."
	PageEnded       ID = "page_ended"        // "The verification has ended."
	PageUnavailable ID = "page_unavailable"  // "Verification is not available right now. Please try again later."
	PageErrorTitle  ID = "page_error_title"  // "Sign-in could not continue"
	PageErrorBody   ID = "page_error_body"   // "Go back to the sign-in page and try again."
)

// pagePlaceholders are the placeholders a page text may hold besides {app}.
var pagePlaceholders = map[ID][]string{
	PageCalling:     {"{number}"},
	PageCallingCode: {"{number}"},
	PageTexted:      {"{number}"},
	PageCooldown:    {"{seconds}"},
}

// Placeholders returns the placeholders besides {app} that the text of id
// must hold, each once: {code} in the SMS body, {number} or {seconds} in
// some page texts.
func (id ID) Placeholders() []string {
	if id == SMSBody {
		return []string{"{code}"}
	}
	return append([]string(nil), pagePlaceholders[id]...)
}

// spoken lists, in catalogue order, the IDs that have audio.
var spoken = [...]ID{
	Greeting, PressPound, NotRecognised, NoResponse, VerifiedGoodbye, FraudGoodbye, Goodbye,
	CodeIntro, CodeAgain,
	Digit0, Digit1, Digit2, Digit3, Digit4, Digit5, Digit6, Digit7, Digit8, Digit9,
}

// written lists the IDs that are texts only.
var written = [...]ID{
	SMSBody,
	PageTitle, PageCalling, PageCallingCode, PageTexted, PageCodeLabel, PageSubmitCode,
	PageTextInstead, PageCallInstead, PageCallAgain, PageTextAgain, PageCooldown,
	PageNotMe, PageCancel, PageContinue, PageWrongCode,
	PagePending, PageApproved, PageDenied, PageExpired, PageFailed, PageEnded,
	PageUnavailable, PageErrorTitle, PageErrorBody,
}

// Digit returns the ID that speaks the decimal digit d ('0'..'9').
func Digit(d byte) ID { return ID("digit_" + string(d)) }

// IDs returns every prompt ID, spoken ones first, in catalogue order.
func IDs() []ID {
	ids := make([]ID, 0, len(spoken)+len(written))
	ids = append(ids, spoken[:]...)
	return append(ids, written[:]...)
}

// SpokenIDs returns the IDs that have audio, in catalogue order.
func SpokenIDs() []ID { return append([]ID(nil), spoken[:]...) }

// Spoken reports whether id has audio.
func (id ID) Spoken() bool {
	for _, s := range spoken {
		if s == id {
			return true
		}
	}
	return false
}

// Valid reports whether id is in the catalogue.
func (id ID) Valid() bool {
	if id.Spoken() {
		return true
	}
	for _, w := range written {
		if w == id {
			return true
		}
	}
	return false
}

// Gap is the pause between the prompts of one sequence as a call speaks
// them (Catalogue.Render's gap for a call's audio): the recordings are
// trimmed of silence, and a code's digits would run together without it;
// longer would draw the call out.
const Gap = 250 * time.Millisecond

// CodeSequence returns the prompts that read code aloud: the intro, the
// digits, "again", the digits once more. Characters other than digits are
// skipped.
func CodeSequence(code string) []ID {
	var digits []ID
	for i := 0; i < len(code); i++ {
		if code[i] >= '0' && code[i] <= '9' {
			digits = append(digits, Digit(code[i]))
		}
	}
	seq := make([]ID, 0, 2+2*len(digits))
	seq = append(seq, CodeIntro)
	seq = append(seq, digits...)
	seq = append(seq, CodeAgain)
	return append(seq, digits...)
}
