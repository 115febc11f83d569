package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/verigate/verigate/verify"
)

// codeUnauthorized and the verify.Code* constants are the error codes.
const codeUnauthorized = verify.CodeUnauthorized

// Error is an error the API answers with as it is: the handlers return it
// for failures found in the request itself (bad JSON, a missing key).
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, in whole seconds, sets Retry-After when > 0 (and
	// error.retry_after for rate_limited).
	RetryAfter int
}

func (e *Error) Error() string { return e.Message }

func invalidRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: verify.CodeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON of every error: {"error":{"code","message",...}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter is in whole seconds, for rate_limited.
	RetryAfter int `json:"retry_after,omitempty"`
	// Status is the verification's status, for not_pending.
	Status verify.Status `json:"status,omitempty"`
}

// unavailableMessage is all a client learns of an internal failure; the
// cause goes to the log.
const unavailableMessage = "the service is temporarily unavailable: please retry shortly"

// busyMessage answers verify.ErrBusy: the provider had no room for the
// call, and the send was not counted against the person.
const busyMessage = "the gateway is busy: it has no room for another call right now (this attempt was not counted against the limits); please retry in a few seconds"

// drainingMessage answers verify.ErrDraining: this gateway is shutting
// down, and another one (or this one restarted) takes the request.
const drainingMessage = "the gateway is shutting down: please retry in a few seconds (another gateway will take the request)"

// drainingRetryAfter is the Retry-After of a draining answer: the load
// balancer takes the gateway out within seconds of /readyz failing.
const drainingRetryAfter = 2

// busyRetryAfter is the Retry-After of a busy answer: calls last tens of
// seconds, so room comes back within seconds under steady load.
const busyRetryAfter = 5

// response is one error made ready to write.
type response struct {
	status     int
	body       errorBody
	retryAfter int // seconds; sets Retry-After when > 0
	internal   bool
}

// describe maps err to the response the client gets. It is the one place
// that turns errors into HTTP.
func describe(err error) response {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		d := errorDetail{Code: apiErr.Code, Message: apiErr.Message}
		if apiErr.Code == verify.CodeRateLimited {
			d.RetryAfter = apiErr.RetryAfter
		}
		return response{status: apiErr.Status, body: errorBody{d}, retryAfter: apiErr.RetryAfter}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return describeEcho(he)
	}
	code := verify.ErrorCode(err)
	d := errorDetail{Code: code}
	var in *verify.InputError
	if errors.As(err, &in) {
		d.Message = in.Error()
	}
	status := http.StatusBadRequest
	switch code {
	case verify.CodeInvalidRequest, verify.CodeInvalidNumber:
		if d.Message == "" {
			d.Message = "the request is not valid"
		}
	case verify.CodeUnsupportedNumber, verify.CodeCountryNotAllowed:
		status = http.StatusUnprocessableEntity
		if d.Message == "" {
			d.Message = "verifications cannot be sent to this number"
		}
	case verify.CodeNotFound:
		status, d.Message = http.StatusNotFound, "verification not found"
	case verify.CodeNotPending:
		status = http.StatusConflict
		d.Message = "the verification is no longer pending"
		var np *verify.NotPendingError
		if errors.As(err, &np) {
			d.Status = np.Status
			d.Message = fmt.Sprintf("the verification is no longer pending: it is %s", np.Status)
		}
	case verify.CodeRateLimited:
		status = http.StatusTooManyRequests
		le := &verify.LimitError{}
		if !errors.As(err, &le) {
			le = &verify.LimitError{RetryAfter: 60e9}
		}
		d.Message = le.Message()
		d.RetryAfter = retrySeconds(le.RetryAfter.Seconds())
		return response{status: status, body: errorBody{d}, retryAfter: d.RetryAfter}
	default:
		if errors.Is(err, verify.ErrDraining) {
			return response{status: http.StatusServiceUnavailable, retryAfter: drainingRetryAfter,
				body: errorBody{errorDetail{Code: verify.CodeUnavailable, Message: drainingMessage}}}
		}
		if errors.Is(err, verify.ErrBusy) {
			return response{status: http.StatusServiceUnavailable, internal: true, retryAfter: busyRetryAfter,
				body: errorBody{errorDetail{Code: verify.CodeUnavailable, Message: busyMessage}}}
		}
		return response{status: http.StatusServiceUnavailable, internal: true,
			body: errorBody{errorDetail{Code: verify.CodeUnavailable, Message: unavailableMessage}}}
	}
	return response{status: status, body: errorBody{d}}
}

// retrySeconds rounds up to whole seconds, at least 1.
func retrySeconds(s float64) int {
	n := int(s)
	if float64(n) < s {
		n++
	}
	return max(n, 1)
}

func describeEcho(he *echo.HTTPError) response {
	d := errorDetail{Code: verify.CodeInvalidRequest, Message: http.StatusText(he.Code)}
	if m, ok := he.Message.(string); ok && m != "" && he.Internal == nil {
		d.Message = m
	}
	switch {
	case he.Code == http.StatusNotFound:
		d.Code, d.Message = verify.CodeNotFound, "no such endpoint: see GET /v1/openapi.json"
	case he.Code == http.StatusMethodNotAllowed:
		d.Message = "method not allowed on this endpoint: see GET /v1/openapi.json"
	case he.Code == http.StatusUnauthorized:
		d.Code = codeUnauthorized
	case he.Code == http.StatusRequestEntityTooLarge:
		d.Message = "request body too large"
	case he.Code >= 500:
		return response{status: http.StatusServiceUnavailable, internal: true,
			body: errorBody{errorDetail{Code: verify.CodeUnavailable, Message: unavailableMessage}}}
	}
	return response{status: he.Code, body: errorBody{d}}
}

// marshal encodes the error body; it cannot fail for these types.
func (r response) marshal() []byte {
	b, _ := json.Marshal(r.body)
	return b
}

// write sends the response with its headers.
func (r response) write(c echo.Context) error {
	if r.retryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(r.retryAfter))
	}
	return c.JSONBlob(r.status, r.marshal())
}

// handleError is the Echo HTTPErrorHandler: every error leaves as JSON.
func (h *handler) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	r := describe(err)
	if r.internal {
		h.log.Error("request failed", "method", c.Request().Method, "route", c.Path(), "err", err)
	}
	var werr error
	if c.Request().Method == http.MethodHead {
		werr = c.NoContent(r.status)
	} else {
		werr = r.write(c)
	}
	if werr != nil {
		h.log.Debug("write error response", "err", werr)
	}
}
