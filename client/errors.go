package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The API's error codes (the ErrorCode schema of api/openapi.json).
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidNumber     = "invalid_number"
	CodeUnsupportedNumber = "unsupported_number"
	CodeCountryNotAllowed = "country_not_allowed"
	CodeRateLimited       = "rate_limited"
	CodeNotFound          = "not_found"
	CodeNotPending        = "not_pending"
	CodeUnauthorized      = "unauthorized"
	CodeUnavailable       = "unavailable"
)

// Sentinels for errors.Is: an *Error is one of them when its Code is the
// same.
var (
	ErrInvalidRequest    = &Error{Code: CodeInvalidRequest}
	ErrInvalidNumber     = &Error{Code: CodeInvalidNumber}
	ErrUnsupportedNumber = &Error{Code: CodeUnsupportedNumber}
	ErrCountryNotAllowed = &Error{Code: CodeCountryNotAllowed}
	ErrRateLimited       = &Error{Code: CodeRateLimited}
	ErrNotFound          = &Error{Code: CodeNotFound}
	ErrNotPending        = &Error{Code: CodeNotPending}
	ErrUnauthorized      = &Error{Code: CodeUnauthorized}
	ErrUnavailable       = &Error{Code: CodeUnavailable}
)

// Error is a failure the gateway answered.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the API's error code (the Code* constants); empty when the
	// answer was not the API's error body (a proxy's page, say).
	Code string
	// Message is the API's explanation, meant for people: for
	// rate_limited it is the text to show ("You've reached our limit on
	// text verification codes. Please try again in 8 minutes.").
	Message string
	// RetryAfter is when a retry may succeed, from the Retry-After header
	// or error.retry_after; zero when the answer gave none.
	RetryAfter time.Duration
	// VerificationStatus is how the verification ended, for not_pending.
	VerificationStatus Status
}

// Error reads "<code>: <message>", with how a not_pending verification
// ended and when to retry where the answer said so; "HTTP <status>: ..."
// for an answer that was not the API's.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.VerificationStatus != "" && !strings.Contains(e.Message, string(e.VerificationStatus)) {
		fmt.Fprintf(&b, " (status %s)", e.VerificationStatus)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter.Round(time.Second))
	}
	return b.String()
}

// Is reports whether target is an *Error with the same Code, so
// errors.Is(err, client.ErrNotFound) works on any not_found answer.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code != "" && t.Code == e.Code
}

// errorBody is {"error":{"code","message","retry_after","status"}}.
type errorBody struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		RetryAfter int    `json:"retry_after"`
		Status     Status `json:"status"`
	} `json:"error"`
}

// newError reads a failed answer. b is the body, already bounded.
func newError(res *http.Response, b []byte) *Error {
	e := &Error{StatusCode: res.StatusCode, RetryAfter: retryAfter(res.Header.Get("Retry-After"), time.Now())}
	var eb errorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message, e.VerificationStatus = eb.Error.Code, eb.Error.Message, eb.Error.Status
		if e.RetryAfter == 0 && eb.Error.RetryAfter > 0 {
			e.RetryAfter = time.Duration(eb.Error.RetryAfter) * time.Second
		}
		return e
	}
	e.Message = http.StatusText(res.StatusCode)
	if s := strings.TrimSpace(string(b)); s != "" && strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		// A proxy's short text says more than the status; never a whole page.
		e.Message += ": " + truncate(s, 200)
	}
	return e
}

// retryAfter reads a Retry-After header: whole seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 32); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		n--
	}
	return s[:n] + "…"
}
