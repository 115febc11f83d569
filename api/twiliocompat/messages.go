package twiliocompat

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/twilio"
	"github.com/verigate/verigate/verify"
)

// Twilio's Programmable Messaging error codes, where the relay meets the
// same condition.
const (
	CodeInvalidTo       = 21211 // 400: the To number is not valid
	CodeBodyRequired    = 21602 // 400: no Body
	CodeFromRequired    = 21603 // 400: neither From nor MessagingServiceSid
	CodeToRequired      = 21604 // 400: no To
	CodeBodyTooLong     = 21617 // 400: the body exceeds the limit
	CodeMediaNotSupport = 21620 // 400: MediaUrl (Verigate relays text only)
)

// RouteMessages is Twilio's Api v2010 Message create, as Echo names it.
const RouteMessages = "/2010-04-01/Accounts/:account/Messages.json"

// CallbackFormat names the status callbacks of the Messages API in
// verify.Verification.CallbackFormat and callback.WithFormat.
const CallbackFormat = "twilio"

// maxFrom bounds From and MessagingServiceSid: an E.164 number, a short
// code, an alphanumeric sender id or an MG SID are all shorter.
const maxFrom = 64

// messageView is Twilio's Message resource (twilio-go's ApiV2010Message):
// every field Twilio sends, the ones Verigate has no value for as null.
type messageView struct {
	Body                string            `json:"body"`
	NumSegments         string            `json:"num_segments"`
	Direction           string            `json:"direction"`
	From                *string           `json:"from"`
	To                  string            `json:"to"`
	DateUpdated         string            `json:"date_updated"`
	Price               *string           `json:"price"`
	ErrorMessage        *string           `json:"error_message"`
	URI                 string            `json:"uri"`
	AccountSID          string            `json:"account_sid"`
	NumMedia            string            `json:"num_media"`
	Status              string            `json:"status"`
	MessagingServiceSID *string           `json:"messaging_service_sid"`
	SID                 string            `json:"sid"`
	DateSent            *string           `json:"date_sent"`
	DateCreated         string            `json:"date_created"`
	ErrorCode           *int              `json:"error_code"`
	PriceUnit           *string           `json:"price_unit"`
	APIVersion          string            `json:"api_version"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
}

// MessageSID is the Twilio SID of the relayed message id: SM and its 32
// hex digits.
func MessageSID(id string) string { return "SM" + strings.TrimPrefix(id, "VE") }

// KeyID names an API key in a message's callback format without holding
// it: the status callbacks are signed with the key the message was sent
// with, as Twilio signs them with the auth token of the request.
func KeyID(key string) string {
	sum := sha256.Sum256([]byte("verigate twilio status callback key\x00" + key))
	return hex.EncodeToString(sum[:8])
}

// RegisterMessages mounts the Messages API under /2010-04-01 on e, with
// Twilio-shaped errors. Any tenant of api_keys may use it: the HTTP Basic
// username is its account SID (twilio_verify.tenants) or its name, the
// password one of its API keys, and the path's AccountSid is the username.
func (a *API) RegisterMessages(e *echo.Echo) {
	g := e.Group("/2010-04-01", a.twilioErrors)
	sub := strings.TrimPrefix(RouteMessages, "/2010-04-01")
	g.Any(sub, func(echo.Context) error { return echo.ErrMethodNotAllowed })
	g.POST(sub, a.createMessage)
}

// messageTenant authenticates a Messages request.
func (a *API) messageTenant(c echo.Context) (t *tenant, key string, err error) {
	user, pass, ok := c.Request().BasicAuth()
	keyTenant := a.keys.Tenant(pass)
	t = a.tenants[user]
	if t == nil && ok && user != "" && user == keyTenant {
		t = &tenant{name: user} // a tenant without a configured account SID
	}
	if !ok || t == nil || keyTenant == "" || keyTenant != t.name || c.Param("account") != user {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="Verigate"`)
		return nil, "", &Error{Status: http.StatusUnauthorized, Code: CodeAuthenticate, Message: "Authenticate"}
	}
	return t, pass, nil
}

func (a *API) createMessage(c echo.Context) error {
	t, key, err := a.messageTenant(c)
	if err != nil {
		return err
	}
	f, err := a.form(c)
	if err != nil {
		return err
	}
	to, body, from, msid := f.Get("To"), f.Get("Body"), f.Get("From"), f.Get("MessagingServiceSid")
	switch {
	case to == "":
		return &Error{Status: http.StatusBadRequest, Code: CodeToRequired, Message: "A 'To' phone number is required."}
	case f.Get("MediaUrl") != "" || f.Get("ContentSid") != "":
		return &Error{Status: http.StatusBadRequest, Code: CodeMediaNotSupport, Message: "Verigate relays text messages only: MediaUrl and ContentSid are not supported"}
	case body == "":
		return &Error{Status: http.StatusBadRequest, Code: CodeBodyRequired, Message: "Message body is required."}
	case from == "" && msid == "":
		return &Error{Status: http.StatusBadRequest, Code: CodeFromRequired, Message: "A 'From' phone number is required."}
	case len(from) > maxFrom || len(msid) > maxFrom:
		return invalidParam("From", "at most %d characters", maxFrom)
	case utf8.RuneCountInString(body) > verify.MaxMessageBody:
		return &Error{Status: http.StatusBadRequest, Code: CodeBodyTooLong,
			Message: fmt.Sprintf("The concatenated message body exceeds the %d character limit of this gateway", verify.MaxMessageBody)}
	}
	account := t.accountSID
	if account == "" {
		account = t.name
	}
	req := verify.MessageRequest{Tenant: t.name, To: to, Body: body, Channel: verify.ChannelAuto}
	if cb := f.Get("StatusCallback"); cb != "" {
		req.CallbackURL = cb
		req.CallbackFormat = CallbackFormat + ":" + url.Values{"k": {KeyID(key)}, "a": {account}, "f": {from}}.Encode()
	}
	v, err := a.svc.Relay(c.Request().Context(), req)
	if err != nil {
		if errors.Is(err, verify.ErrInvalidNumber) || errors.Is(err, verify.ErrUnsupportedNumber) {
			var in *verify.InputError
			msg := "Invalid 'To' Phone Number"
			if errors.As(err, &in) {
				msg += ": " + in.Msg
			}
			return &Error{Status: http.StatusBadRequest, Code: CodeInvalidTo, Message: msg}
		}
		param := ""
		if errors.Is(err, verify.ErrInvalidRequest) && req.CallbackURL != "" && strings.Contains(err.Error(), "callback_url") {
			param = "StatusCallback"
		}
		return describe(c, err, param)
	}
	now := twilioDate(v.CreatedAt)
	sid := MessageSID(v.ID)
	uri := "/2010-04-01/Accounts/" + account + "/Messages/" + sid
	view := messageView{
		Body: body, NumSegments: "1", Direction: "outbound-api", From: nullable(from), To: v.To,
		DateUpdated: now, URI: uri + ".json", AccountSID: account, NumMedia: "0", Status: "queued",
		MessagingServiceSID: nullable(msid), SID: sid, DateCreated: now, APIVersion: "2010-04-01",
		SubresourceURIs: map[string]string{"media": uri + "/Media.json"},
	}
	return a.writeJSON(c, http.StatusCreated, view)
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// twilioDate is Twilio's RFC 2822 date in GMT.
func twilioDate(t time.Time) string { return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 +0000") }

// StatusCallbacks writes the status callbacks of relayed Messages as
// Twilio does: form-encoded MessageSid, MessageStatus, To, From,
// AccountSid, ApiVersion (and ErrorCode when undelivered or failed),
// signed with X-Twilio-Signature under the API key the message was sent
// with. It is a callback.Format; the callback package queues, retries
// and sends them through its guarded client.
type StatusCallbacks struct {
	keys map[string]string // KeyID → key
}

// NewStatusCallbacks signs with the keys of apiKeys (key → tenant).
func NewStatusCallbacks(apiKeys map[string]string) *StatusCallbacks {
	s := &StatusCallbacks{keys: make(map[string]string, len(apiKeys))}
	for k := range apiKeys {
		s.keys[KeyID(k)] = k
	}
	return s
}

// Notice implements callback.Format.
func (s *StatusCallbacks) Notice(v *verify.Verification) ([]byte, string, map[string]string, error) {
	_, params, _ := strings.Cut(v.CallbackFormat, ":")
	p, err := url.ParseQuery(params)
	if err != nil {
		return nil, "", nil, fmt.Errorf("twilio status callback: format: %w", err)
	}
	key, ok := s.keys[p.Get("k")]
	if !ok {
		return nil, "", nil, errors.New("twilio status callback: the message's API key is no longer configured")
	}
	status := twilioMessageStatus(v.Status)
	sid := MessageSID(v.ID)
	form := url.Values{
		"MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {status}, "SmsStatus": {status},
		"AccountSid": {p.Get("a")}, "From": {p.Get("f")}, "To": {v.To}, "ApiVersion": {"2010-04-01"},
	}
	switch v.Status {
	case verify.StatusUndelivered:
		form.Set("ErrorCode", "30003") // Twilio's "unreachable destination handset"
	case verify.StatusFailed:
		form.Set("ErrorCode", "30008") // Twilio's "unknown error"
	}
	header := map[string]string{"X-Twilio-Signature": twilio.Sign(key, v.CallbackURL, form)}
	return []byte(form.Encode()), echo.MIMEApplicationForm, header, nil
}

// twilioMessageStatus is the MessageStatus of a relayed message's status.
func twilioMessageStatus(s verify.Status) string {
	switch s {
	case verify.StatusDelivered, verify.StatusUndelivered, verify.StatusFailed, verify.StatusCanceled:
		return string(s)
	case verify.StatusExpired:
		return "undelivered"
	}
	return "sent"
}
