package twiliocompat

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/verify"
)

// Twilio's error codes, where Verigate meets the same condition
// (https://www.twilio.com/docs/api/errors/<code>).
const (
	CodeAuthenticate         = 20003 // 401: wrong or missing credentials
	CodeMethodNotAllowed     = 20004 // 405
	CodeNotFound             = 20404 // 404: no such service or verification, or it has ended
	CodeTooManyRequests      = 20429 // 429: a cap on many people's sends (tenant, prefix, country, gateway)
	CodeServiceUnavailable   = 20503 // 503: the store or a provider failed, or no room for a call
	CodeInvalidParameter     = 60200 // 400: a parameter is missing or wrong
	CodeMaxCheckAttempts     = 60202 // 429: the verification's checks, or the number's failed checks, are used up
	CodeMaxSendAttempts      = 60203 // 429: the number's (or user's, or IP's) send limit
	CodeFeatureNotSupported  = 60204 // 400: a Twilio feature Verigate does not have (custom codes, PSD2, templates)
	CodeChannelDisabled      = 60223 // 400: the channel is not enabled for the service
	CodeDeliveryBlocked      = 60410 // 403: the number (fraud report) or its prefix (SMS pumping) is blocked
	CodeGeoPermissionBlocked = 60605 // 403: the destination country is not allowed
)

// Error is an error answered as Twilio answers errors:
// {"code","message","more_info","status"}.
type Error struct {
	Status     int
	Code       int
	Message    string
	RetryAfter int // seconds; sets Retry-After when > 0
	// cause is the failure behind a 5xx answer: logged by twilioErrors,
	// never shown to the client.
	cause error
}

func (e *Error) Error() string { return e.Message }

// errorBody is Twilio's error JSON, which twilio-go reads into
// client.TwilioRestError.
type errorBody struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func invalid(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidParameter, Message: "Invalid parameter: " + fmt.Sprintf(format, args...)}
}

// invalidParam words the error as Twilio does, "Invalid parameter `To`: ...".
func invalidParam(name, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidParameter,
		Message: fmt.Sprintf("Invalid parameter `%s`: %s", name, fmt.Sprintf(format, args...))}
}

func missingParam(name string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidParameter, Message: fmt.Sprintf("Missing required parameter %s in the post body", name)}
}

func unsupported(name, why string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeFeatureNotSupported,
		Message: fmt.Sprintf("Service does not support this feature: %s (%s)", name, why)}
}

func notFound(c echo.Context) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound,
		Message: fmt.Sprintf("The requested resource %s was not found", c.Request().URL.Path)}
}

// twilioParams names Twilio's parameter for a field of verify.StartRequest
// that verify.InputError.Field names.
var twilioParams = map[string]string{"locale": "Locale", "client_ip": "DeviceIp"}

// describe maps an error of verify.Service to Twilio's answer. param
// names the parameter an ErrInvalidRequest is about: Code for a check,
// whose refusal of a verification that used up its checks is 60202 (any
// other operation on it finds it ended: 20404).
func describe(c echo.Context, err error, param string) *Error {
	var te *Error
	if errors.As(err, &te) {
		return te
	}
	var in *verify.InputError
	msg := "the request is not valid"
	if errors.As(err, &in) {
		msg = in.Error()
		if name, ok := twilioParams[in.Field]; ok {
			param, msg = name, in.Msg
		}
	}
	var le *verify.LimitError
	var np *verify.NotPendingError
	switch {
	case errors.Is(err, verify.ErrCountryNotAllowed):
		return &Error{Status: http.StatusForbidden, Code: CodeGeoPermissionBlocked, Message: "Verification delivery attempt blocked: " + msg}
	case errors.Is(err, verify.ErrInvalidNumber), errors.Is(err, verify.ErrUnsupportedNumber):
		return invalidParam("To", "%s", msg)
	case errors.Is(err, verify.ErrInvalidRequest):
		if param != "" {
			return invalidParam(param, "%s", msg)
		}
		return invalid("%s", msg)
	case errors.As(err, &le):
		return limited(le)
	case param == "Code" && errors.As(err, &np) && np.Status == verify.StatusMaxAttemptsReached:
		return &Error{Status: http.StatusTooManyRequests, Code: CodeMaxCheckAttempts, Message: "Max check attempts reached"}
	case errors.Is(err, verify.ErrNotFound), errors.Is(err, verify.ErrNotPending):
		// Twilio deletes a verification when it is approved, canceled or
		// expires: what is no longer pending is not found.
		return notFound(c)
	case errors.Is(err, verify.ErrDraining):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeServiceUnavailable, RetryAfter: 2, cause: err,
			Message: "Service Unavailable: the gateway is shutting down; retry in a few seconds"}
	case errors.Is(err, verify.ErrBusy):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeServiceUnavailable, RetryAfter: 5, cause: err,
			Message: "Service Unavailable: the gateway has no room for another call right now (this attempt was not counted); retry in a few seconds"}
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeServiceUnavailable,
		Message: "Service Unavailable: please retry shortly", cause: err}
}

// limited maps a limit to Twilio's code for the same condition.
func limited(le *verify.LimitError) *Error {
	e := &Error{Status: http.StatusTooManyRequests, Message: le.Message(), RetryAfter: retrySeconds(le)}
	switch {
	case le.Blocked():
		e.Status, e.Code = http.StatusForbidden, CodeDeliveryBlocked
		e.Message = "Verification delivery attempt blocked: " + e.Message
	case le.Channel == "":
		e.Code = CodeMaxCheckAttempts // the failed-check lock
		e.Message = "Max check attempts reached: " + e.Message
	case le.Aggregate:
		e.Code = CodeTooManyRequests
		e.Message = "Too many requests: " + e.Message
	default:
		e.Code = CodeMaxSendAttempts
		e.Message = "Max send attempts reached: " + e.Message
	}
	return e
}

func retrySeconds(le *verify.LimitError) int {
	s := int((le.RetryAfter + 999_999_999) / 1_000_000_000)
	return max(s, 1)
}

// twilioErrors answers every error of the /v2 routes in Twilio's shape;
// the v1 API's error handler never sees them.
func (a *API) twilioErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err == nil || c.Response().Committed {
			return err
		}
		var te *Error
		var he *echo.HTTPError
		switch {
		case errors.As(err, &te):
			if te.cause != nil {
				a.log.Error("twilio verify api: request failed", "method", c.Request().Method, "route", c.Path(), "status", te.Status, "err", te.cause)
			}
		case errors.As(err, &he) && he.Code == http.StatusNotFound:
			te = notFound(c)
		case errors.As(err, &he) && he.Code == http.StatusMethodNotAllowed:
			te = &Error{Status: he.Code, Code: CodeMethodNotAllowed, Message: "Method not allowed"}
		default:
			a.log.Error("twilio verify api: request failed", "method", c.Request().Method, "route", c.Path(), "err", err)
			te = &Error{Status: http.StatusServiceUnavailable, Code: CodeServiceUnavailable, Message: "Service Unavailable: please retry shortly"}
		}
		return writeError(c, te)
	}
}

func writeError(c echo.Context, e *Error) error {
	if e.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	b, err := json.Marshal(errorBody{
		Code: e.Code, Message: e.Message, Status: e.Status,
		MoreInfo: "https://www.twilio.com/docs/errors/" + strconv.Itoa(e.Code),
	})
	if err != nil {
		return err
	}
	return c.JSONBlob(e.Status, b)
}
