package twiliocompat

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
)

// Bounds on a request, checked before anything is parsed: Twilio's
// clients send a handful of parameters (CreateVerification has about
// twenty, most unset) in well under a kilobyte.
const (
	MaxBody   = 16 << 10
	MaxParams = 64
)

// form returns the request's parameters: the form-encoded body of a POST
// and the query string, within MaxBody and MaxParams. Each parameter may
// be given once.
func (a *API) form(c echo.Context) (url.Values, error) {
	r := c.Request()
	if n := countParams(r.URL.RawQuery); n > MaxParams {
		return nil, tooManyParams(n)
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalid("the query string is not URL-encoded")
	}
	if r.Method != http.MethodPost {
		return q, repeated(q)
	}
	if r.ContentLength > MaxBody {
		return nil, tooLarge()
	}
	if ct := r.Header.Get(echo.HeaderContentType); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != echo.MIMEApplicationForm {
			return nil, invalid("the request body must be application/x-www-form-urlencoded, as Twilio's API takes")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if n := countParams(string(body)) + len(q); n > MaxParams {
		return nil, tooManyParams(n)
	}
	f, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, invalid("the request body is not form-encoded")
	}
	for k, vs := range q {
		f[k] = append(f[k], vs...)
	}
	return f, repeated(f)
}

// repeated refuses a parameter given more than once: which of the values
// counts would be a guess.
func repeated(f url.Values) error {
	for k, vs := range f {
		if len(vs) > 1 {
			return invalidParam(k, "given more than once")
		}
	}
	return nil
}

// countParams is how many parameters url.ParseQuery would look at in q.
func countParams(q string) int {
	if q == "" {
		return 0
	}
	n := 1
	for i := 0; i < len(q); i++ {
		if q[i] == '&' || q[i] == ';' {
			n++
		}
	}
	return n
}

func tooLarge() *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeInvalidParameter,
		Message: fmt.Sprintf("Request body too large: at most %d bytes", MaxBody)}
}

func tooManyParams(n int) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeInvalidParameter,
		Message: fmt.Sprintf("Too many parameters: %d, at most %d", n, MaxParams)}
}
