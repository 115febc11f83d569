package twiliocompat

import (
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/verify"
)

// Parameters of Twilio's CreateVerification and CreateVerificationCheck
// that ask for what Verigate does not do: refused with 60204 rather than
// ignored, since ignoring them would send another message than the client
// meant (a code it did not make, no amount or payee, another template).
var refusedStart = map[string]string{
	"CustomCode":                  "Verigate makes every code itself",
	"CustomMessage":               "the message text is the gateway's (prompts)",
	"Amount":                      "PSD2 transaction data is not supported",
	"Payee":                       "PSD2 transaction data is not supported",
	"TemplateSid":                 "message templates are the gateway's (prompts)",
	"Templates":                   "message templates are the gateway's (prompts)",
	"TemplateCustomSubstitutions": "message templates are the gateway's (prompts)",
}

var refusedCheck = map[string]string{
	"Amount":         "PSD2 transaction data is not supported",
	"Payee":          "PSD2 transaction data is not supported",
	"SnaClientToken": "silent network auth is not supported",
}

// Channels Twilio has and Verigate does not: a start on one gets 60223,
// as on Twilio when a service has the channel off.
var twilioOnlyChannels = map[string]bool{"email": true, "whatsapp": true, "sna": true, "auto": true, "rbm": true}

// start is CreateVerification: POST /v2/Services/{ServiceSid}/Verifications.
func (a *API) start(c echo.Context, s *service) error {
	f, err := a.form(c)
	if err != nil {
		return err
	}
	if err := refuse(f, refusedStart); err != nil {
		return err
	}
	to, channel := f.Get("To"), f.Get("Channel")
	switch {
	case to == "":
		return missingParam("To")
	case channel == "":
		return missingParam("Channel")
	case twilioOnlyChannels[channel]:
		return &Error{Status: http.StatusBadRequest, Code: CodeChannelDisabled, Message: "Delivery channel disabled: " + channel + " is not a channel of Verigate (sms and call are)"}
	case channel != string(verify.ChannelSMS) && channel != string(verify.ChannelCall):
		return invalidParam("Channel", "must be sms or call, not %q", channel)
	case !s.enabled(verify.Channel(channel)):
		return &Error{Status: http.StatusBadRequest, Code: CodeChannelDisabled, Message: "Delivery channel disabled: " + channel + " is not enabled for this service"}
	}
	app := s.appName
	if name := f.Get("CustomFriendlyName"); name != "" {
		if len(name) > MaxFriendlyName {
			return invalidParam("CustomFriendlyName", "at most %d characters", MaxFriendlyName)
		}
		if a.appNames != nil {
			if err := a.appNames.CheckAppName(name, s.codeLength); err != nil {
				return invalidParam("CustomFriendlyName", "%v", err)
			}
		}
		app = name
	}
	v, err := a.svc.Start(c.Request().Context(), verify.StartRequest{
		Tenant: s.tenant.name, To: to, Channel: verify.Channel(channel),
		// A Twilio call reads the code aloud; the client then checks it.
		CallMode: verify.CallModeCode,
		Locale:   f.Get("Locale"), ClientIP: f.Get("DeviceIp"), AppName: app, CodeLength: s.codeLength,
	})
	if err != nil {
		return describe(c, err, "")
	}
	return a.writeJSON(c, http.StatusCreated, a.verification(c, s, v, true))
}

// check is CreateVerificationCheck: POST /v2/Services/{ServiceSid}/VerificationCheck.
func (a *API) check(c echo.Context, s *service) error {
	f, err := a.form(c)
	if err != nil {
		return err
	}
	if err := refuse(f, refusedCheck); err != nil {
		return err
	}
	code, to, sid := f.Get("Code"), f.Get("To"), f.Get("VerificationSid")
	if code == "" {
		return missingParam("Code")
	}
	var v *verify.Verification
	switch {
	case sid != "":
		if !verificationSIDPattern.MatchString(sid) {
			return notFound(c)
		}
		v, err = a.svc.Check(c.Request().Context(), s.tenant.name, sid, code)
	case to != "":
		v, err = a.svc.CheckByNumber(c.Request().Context(), s.tenant.name, to, code)
	default:
		return missingParam("To or VerificationSid")
	}
	if err != nil {
		return describe(c, err, "Code")
	}
	if v.Status == verify.StatusExpired {
		// The check found it past its lifetime: Twilio has deleted an
		// expired verification by then.
		return notFound(c)
	}
	return a.writeJSON(c, http.StatusOK, a.verificationCheck(s, v, sid == ""))
}

// fetch is FetchVerification: GET /v2/Services/{ServiceSid}/Verifications/{Sid}.
func (a *API) fetch(c echo.Context, s *service) error {
	if _, err := a.form(c); err != nil {
		return err
	}
	sid := c.Param("sid")
	if !verificationSIDPattern.MatchString(sid) {
		return notFound(c)
	}
	v, err := a.svc.Get(c.Request().Context(), s.tenant.name, sid)
	if err != nil {
		return describe(c, err, "")
	}
	if v.Kind != verify.KindVerification || v.Status != verify.StatusPending {
		// A relayed message is not a verification; and Twilio deletes a
		// verification once it is approved, canceled or expired: a check
		// or an update of one that has ended answers 20404 here too, so
		// Fetch does not show it either.
		return notFound(c)
	}
	return a.writeJSON(c, http.StatusOK, a.verification(c, s, v, false))
}

// update is UpdateVerification: POST /v2/Services/{ServiceSid}/Verifications/{Sid}
// with Status canceled or approved.
func (a *API) update(c echo.Context, s *service) error {
	f, err := a.form(c)
	if err != nil {
		return err
	}
	sid := c.Param("sid")
	if !verificationSIDPattern.MatchString(sid) {
		return notFound(c)
	}
	var v *verify.Verification
	switch st := f.Get("Status"); st {
	case "":
		return missingParam("Status")
	case "canceled":
		v, err = a.svc.Cancel(c.Request().Context(), s.tenant.name, sid)
	case "approved":
		v, err = a.svc.Approve(c.Request().Context(), s.tenant.name, sid)
	default:
		return invalidParam("Status", "must be canceled or approved, not %q", st)
	}
	if err != nil {
		return describe(c, err, "")
	}
	return a.writeJSON(c, http.StatusOK, a.verification(c, s, v, false))
}

// refuse answers 60204 for the first parameter of f, in alphabetical
// order, that refused names: the same request always names the same one.
func refuse(f url.Values, refused map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(refused)) {
		if f.Has(name) {
			return unsupported(name, refused[name])
		}
	}
	return nil
}
