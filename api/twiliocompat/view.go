package twiliocompat

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/verify"
)

// verificationView is Twilio's Verification resource (twilio-go's
// VerifyV2Verification): every field Twilio sends, the ones Verigate has no
// value for as null.
type verificationView struct {
	SID              string          `json:"sid"`
	ServiceSID       string          `json:"service_sid"`
	AccountSID       *string         `json:"account_sid"`
	To               string          `json:"to"`
	Channel          string          `json:"channel"`
	Status           string          `json:"status"`
	Valid            bool            `json:"valid"`
	Lookup           struct{}        `json:"lookup"`
	Amount           *string         `json:"amount"`
	Payee            *string         `json:"payee"`
	SendCodeAttempts []attemptView   `json:"send_code_attempts"`
	DateCreated      string          `json:"date_created"`
	DateUpdated      string          `json:"date_updated"`
	SNA              json.RawMessage `json:"sna"`
	URL              string          `json:"url"`
}

// attemptView is one entry of send_code_attempts.
type attemptView struct {
	AttemptSID string `json:"attempt_sid"`
	Channel    string `json:"channel"`
	Time       string `json:"time"`
}

// checkView is Twilio's VerificationCheck resource (twilio-go's
// VerifyV2VerificationCheck).
type checkView struct {
	SID                   string   `json:"sid"`
	ServiceSID            string   `json:"service_sid"`
	AccountSID            *string  `json:"account_sid"`
	To                    string   `json:"to"`
	Channel               string   `json:"channel"`
	Status                string   `json:"status"`
	Valid                 bool     `json:"valid"`
	Amount                *string  `json:"amount"`
	Payee                 *string  `json:"payee"`
	DateCreated           string   `json:"date_created"`
	DateUpdated           string   `json:"date_updated"`
	SNAAttemptsErrorCodes []string `json:"sna_attempts_error_codes"`
}

var jsonNull = json.RawMessage("null")

// shownTo is the number an answer shows: in full only when the request
// itself carried it (a start, a check by To), masked as verify.MaskNumber
// does otherwise, so that a verification SID alone (one started over v1,
// which masks numbers, included) never reveals whose number it is.
func shownTo(v *verify.Verification, requestHadNumber bool) string {
	if requestHadNumber {
		return v.To
	}
	return verify.MaskNumber(v.To)
}

func (a *API) verification(c echo.Context, s *service, v *verify.Verification, requestHadNumber bool) verificationView {
	base := a.publicURL
	if base == "" {
		base = c.Scheme() + "://" + c.Request().Host
	}
	return verificationView{
		SID: v.ID, ServiceSID: s.sid, AccountSID: accountSID(s), To: shownTo(v, requestHadNumber),
		Channel: string(v.Channel), Status: twilioStatus(v.Status), Valid: v.Status == verify.StatusApproved,
		SendCodeAttempts: attempts(v),
		DateCreated:      twilioTime(v.CreatedAt), DateUpdated: twilioTime(v.UpdatedAt),
		SNA: jsonNull,
		URL: base + "/v2/Services/" + s.sid + "/Verifications/" + v.ID,
	}
}

func (a *API) verificationCheck(s *service, v *verify.Verification, requestHadNumber bool) checkView {
	return checkView{
		SID: v.ID, ServiceSID: s.sid, AccountSID: accountSID(s), To: shownTo(v, requestHadNumber),
		Channel: string(v.Channel), Status: twilioStatus(v.Status), Valid: v.Status == verify.StatusApproved,
		DateCreated: twilioTime(v.CreatedAt), DateUpdated: twilioTime(v.UpdatedAt),
		SNAAttemptsErrorCodes: []string{},
	}
}

func accountSID(s *service) *string {
	if s.tenant.accountSID == "" {
		return nil
	}
	return &s.tenant.accountSID
}

// twilioStatus names a status as Twilio does. Twilio has no denied: a
// verification the person reported as fraud (0# on a call) is failed.
func twilioStatus(s verify.Status) string {
	if s == verify.StatusDenied {
		return "failed"
	}
	return string(s)
}

// attempts lists the sends of v (its start and each resend or fallback),
// each with a stable attempt SID ("VL" and 32 hex digits).
func attempts(v *verify.Verification) []attemptView {
	out := []attemptView{}
	for _, e := range v.Events {
		if e.Type != verify.EventCreated && e.Type != verify.EventResent {
			continue
		}
		ch := e.Channel
		if ch == "" {
			ch = v.Channel
		}
		sum := sha256.Sum256([]byte(v.ID + "/" + strconv.Itoa(len(out)+1)))
		out = append(out, attemptView{AttemptSID: "VL" + hex.EncodeToString(sum[:16]), Channel: string(ch), Time: twilioTime(e.At)})
	}
	return out
}

// twilioTime writes t as Twilio's Verify API does: ISO 8601 in UTC,
// whole seconds.
func twilioTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func (a *API) writeJSON(c echo.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.JSONBlob(status, b)
}
