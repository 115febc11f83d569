package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// Bounds on what a webhook request may carry, checked before anything is
// parsed or hashed. Twilio's own webhooks are a few dozen parameters and a
// few KB (a voice webhook with caller-name and geography fields stays under
// 3 KB); anything much larger is not Twilio.
const (
	MaxWebhookBody   = 32 << 10
	MaxWebhookParams = 128
)

// signatureLen is the length of a base64 HMAC-SHA1, the only form an
// X-Twilio-Signature can take.
var signatureLen = base64.StdEncoding.EncodedLen(sha1.Size)

// signer checks X-Twilio-Signature as Twilio computes it: HMAC-SHA1, keyed
// with the auth token, over the URL Twilio requested followed by every POST
// parameter's name and (first) value in name order, base64. It agrees with
// twilio-go's client.RequestValidator.Validate, including trying the URL
// with and without its default port, but its work is linear in the request:
// the parameters are written into the MAC as they are, where the library
// builds the signed string by repeated concatenation (quadratic) and does
// it twice.
type signer struct {
	key []byte
}

// valid reports whether sig signs rawURL with form's parameters.
func (s signer) valid(rawURL string, form url.Values, sig string) bool {
	if len(sig) != signatureLen {
		return false
	}
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	ok := false
	for _, u := range urlVariants(rawURL) {
		// Both variants are computed, as twilio-go does, so the time taken
		// does not say which matched.
		if s.matches(u, keys, form, sig) {
			ok = true
		}
	}
	return ok
}

func (s signer) matches(u string, keys []string, form url.Values, sig string) bool {
	mac := hmac.New(sha1.New, s.key)
	io.WriteString(mac, u)
	for _, k := range keys {
		io.WriteString(mac, k)
		io.WriteString(mac, form[k][0])
	}
	var sum [sha1.Size]byte
	var enc [28]byte // signatureLen
	base64.StdEncoding.Encode(enc[:], mac.Sum(sum[:0]))
	return subtle.ConstantTimeCompare(enc[:], []byte(sig)) == 1
}

// urlVariants returns rawURL with its scheme's default port made explicit
// and with any port removed: Twilio's signing is inconsistent about the
// port, so twilio-go accepts either, and so does this.
func urlVariants(rawURL string) [2]string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return [2]string{rawURL, rawURL}
	}
	if u.Port() != "" {
		bare := *u
		bare.Host = bracketed(u.Hostname())
		return [2]string{rawURL, bare.String()}
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	withPort := *u
	withPort.Host = net.JoinHostPort(u.Hostname(), port)
	return [2]string{withPort.String(), rawURL}
}

func bracketed(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// errTooLarge is a body or parameter count over the webhook bounds.
var errTooLarge = errors.New("webhook request too large")

// readForm reads r's form body within MaxWebhookBody and MaxWebhookParams
// and returns its parameters. It reads nothing when Content-Length already
// says the body is too large. A body that is not form-encoded is refused:
// Twilio posts application/x-www-form-urlencoded.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.ContentLength > MaxWebhookBody {
		return nil, errTooLarge
	}
	if ct := r.Header.Get(echo.HeaderContentType); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != echo.MIMEApplicationForm {
			return nil, errors.New("webhook body is not form-encoded")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errTooLarge
		}
		return nil, err
	}
	if n := countParams(body); n > MaxWebhookParams {
		return nil, errTooLarge
	}
	if n := countParams([]byte(r.URL.RawQuery)); n > MaxWebhookParams {
		return nil, errTooLarge
	}
	return url.ParseQuery(string(body))
}

// countParams is how many parameters url.ParseQuery would look at in q.
func countParams(q []byte) int {
	if len(q) == 0 {
		return 0
	}
	n := 1
	for _, b := range q {
		if b == '&' {
			n++
		}
	}
	return n
}

// Sign returns the X-Twilio-Signature Twilio would put on a POST of form
// to rawURL under key (the account's auth token): HMAC-SHA1 over the URL
// as given and every parameter's name and first value in name order,
// base64. The gateway signs the status callbacks of its Twilio-compatible
// Messages API with it, so that receivers validating Twilio's signature
// (twilio-go's client.RequestValidator) accept them.
func Sign(key, rawURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	mac := hmac.New(sha1.New, []byte(key))
	io.WriteString(mac, rawURL)
	for _, k := range keys {
		io.WriteString(mac, k)
		if len(form[k]) > 0 {
			io.WriteString(mac, form[k][0])
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
