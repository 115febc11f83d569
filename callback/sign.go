package callback

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a callback.
const (
	// SignatureHeader carries Verigate's signature: t=<unix>,v1=<hex
	// HMAC-SHA256 of "t.body">.
	SignatureHeader = "Verigate-Signature"
	// DeliveryHeader carries the delivery id, the same on every attempt
	// of one notice (and equal to webhook-id): receivers drop duplicates by it.
	DeliveryHeader = "Verigate-Delivery"
	// The Standard Webhooks headers (https://www.standardwebhooks.com/):
	// the delivery id, the attempt's unix time, and "v1,<base64 HMAC-SHA256
	// of id.timestamp.body>".
	WebhookIDHeader        = "webhook-id"
	WebhookTimestampHeader = "webhook-timestamp"
	WebhookSignatureHeader = "webhook-signature"
)

// SecretPrefix marks a secret in the Standard Webhooks form: "whsec_"
// followed by the base64 of the key.
const SecretPrefix = "whsec_"

// Errors of the verification helpers; each refusal wraps ErrInvalidSignature.
var (
	ErrInvalidSignature = errors.New("callback: invalid signature")
	errMalformed        = fmt.Errorf("%w: malformed signature headers", ErrInvalidSignature)
	errStale            = fmt.Errorf("%w: timestamp outside tolerance", ErrInvalidSignature)
	errMismatch         = fmt.Errorf("%w: signature mismatch", ErrInvalidSignature)
)

// Key returns the HMAC key of a secret as configured: the decoded bytes of
// a "whsec_<base64>" secret, otherwise the secret's own bytes. Both sides
// of a callback call it, so one setting serves both signature formats.
func Key(secret []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(secret, []byte(SecretPrefix))
	if !ok {
		if len(secret) < 16 {
			return nil, errors.New("callback: secret must be at least 16 characters")
		}
		return secret, nil
	}
	key, err := base64.StdEncoding.DecodeString(string(rest))
	if err != nil {
		return nil, fmt.Errorf("callback: secret after %s is not base64: %w", SecretPrefix, err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("callback: secret after %s must decode to at least 16 bytes", SecretPrefix)
	}
	return key, nil
}

// Sign returns the Verigate-Signature value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	key, err := Key(secret)
	if err != nil {
		key = secret // New refuses such secrets; a caller that did not check still gets a value
	}
	return signKey(key, t, body)
}

func signKey(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(key, ts, "", body))
}

// SignWebhook returns the Standard Webhooks signature ("v1,<base64>") of
// body sent with id at t.
func SignWebhook(secret []byte, id string, t time.Time, body []byte) string {
	key, err := Key(secret)
	if err != nil {
		key = secret
	}
	return signWebhookKey(key, id, t, body)
}

func signWebhookKey(key []byte, id string, t time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, strconv.FormatInt(t.Unix(), 10), body))
}

// mac is HMAC-SHA256 of the non-empty parts and body joined by dots.
func mac(key []byte, a, b string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range []string{a, b} {
		if p != "" {
			m.Write([]byte(p))
			m.Write([]byte{'.'})
		}
	}
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a Verigate-Signature header as a receiver should: the HMAC
// matches and the timestamp is within tolerance of now, so a captured
// callback cannot be replayed later (within the tolerance, drop
// duplicates by DeliveryHeader). secret is as configured on the gateway
// (either form, see Key). Every refusal wraps ErrInvalidSignature.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := Key(secret)
	if err != nil {
		return err
	}
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	if err := checkTime(ts, now, tolerance); err != nil {
		return err
	}
	got, err := hex.DecodeString(sig)
	if err != nil || sig == "" {
		return errMalformed
	}
	if !hmac.Equal(got, mac(key, ts, "", body)) {
		return errMismatch
	}
	return nil
}

// VerifyWebhook checks the Standard Webhooks headers in h as that spec
// asks: webhook-timestamp within tolerance of now, and one of the
// space-separated "v1,<base64>" signatures in webhook-signature matching.
// Every refusal wraps ErrInvalidSignature.
func VerifyWebhook(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := Key(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := h.Get(WebhookIDHeader), h.Get(WebhookTimestampHeader), h.Get(WebhookSignatureHeader)
	if id == "" || sigs == "" {
		return errMalformed
	}
	if err := checkTime(ts, now, tolerance); err != nil {
		return err
	}
	want := mac(key, id, ts, body)
	for sig := range strings.FieldsSeq(sigs) {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errMismatch
}

// VerifyRequest checks whichever signatures a callback's headers carry
// (Verigate-Signature, the Standard Webhooks set, or both, as the
// gateway's callbacks.signatures sends them): all present must pass, and
// at least one must be present.
func VerifyRequest(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	checked := false
	if v := h.Get(SignatureHeader); v != "" {
		if err := Verify(secret, v, body, now, tolerance); err != nil {
			return err
		}
		checked = true
	}
	if h.Get(WebhookSignatureHeader) != "" {
		if err := VerifyWebhook(secret, h, body, now, tolerance); err != nil {
			return err
		}
		checked = true
	}
	if !checked {
		return errMalformed
	}
	return nil
}

func checkTime(ts string, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errMalformed
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errStale
	}
	return nil
}
