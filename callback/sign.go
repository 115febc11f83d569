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
	// HMAC-SHA256 of "t.body">,v2=<hex HMAC-SHA256 of "t.id.body">, id
	// being the delivery id; v2 binds the id, so that a replay within the
	// tolerance cannot pass for a new delivery under another id.
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
	return signKey(key, "", t, body)
}

// SignDelivery returns the Verigate-Signature value, v2 included, for body
// sent with delivery id at t, as the gateway sends it.
func SignDelivery(secret []byte, id string, t time.Time, body []byte) string {
	key, err := Key(secret)
	if err != nil {
		key = secret
	}
	return signKey(key, id, t, body)
}

// signKey signs body sent at t, and with id (v2) when id is not empty.
func signKey(key []byte, id string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	sig := "t=" + ts + ",v1=" + hex.EncodeToString(mac(key, ts, "", body))
	if id != "" {
		sig += ",v2=" + hex.EncodeToString(mac(key, ts, id, body))
	}
	return sig
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

// Verify checks a Verigate-Signature header's v1 as a receiver should:
// the HMAC matches and the timestamp is within tolerance of now, so a
// captured callback cannot be replayed later. v1 does not cover the
// delivery id: a receiver that drops duplicates by it should use
// VerifyDelivery (or VerifyRequest). secret is as configured on the
// gateway (either form, see Key). Every refusal wraps ErrInvalidSignature.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	return verifySignature(secret, header, "", body, now, tolerance)
}

// VerifyDelivery checks a Verigate-Signature header's v2, which covers
// the delivery id (the Verigate-Delivery header) as well as the timestamp
// and body: a callback replayed under another id is refused, so the id
// can be trusted to drop duplicates. A header without v2 (a gateway older
// than v2) is refused. Every refusal wraps ErrInvalidSignature.
func VerifyDelivery(secret []byte, header, id string, body []byte, now time.Time, tolerance time.Duration) error {
	if id == "" {
		return errMalformed
	}
	return verifySignature(secret, header, id, body, now, tolerance)
}

// verifySignature checks v2 over id when id is not empty, else v1.
func verifySignature(secret []byte, header, id string, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := Key(secret)
	if err != nil {
		return err
	}
	want := "v1"
	if id != "" {
		want = "v2"
	}
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case want:
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
	if !hmac.Equal(got, mac(key, ts, id, body)) {
		return errMismatch
	}
	return nil
}

// hasV2 says whether a Verigate-Signature header carries a v2.
func hasV2(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		if k, _, _ := strings.Cut(strings.TrimSpace(part), "="); k == "v2" {
			return true
		}
	}
	return false
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
// at least one must be present. A Verigate-Signature with v2 is checked
// against Verigate-Delivery (VerifyDelivery), and both delivery ids, when
// both are sent, must be equal: the delivery id of a request that passes
// is signed, except from a gateway that sends v1 alone.
func VerifyRequest(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	checked := false
	if v := h.Get(SignatureHeader); v != "" {
		var err error
		if hasV2(v) {
			err = VerifyDelivery(secret, v, h.Get(DeliveryHeader), body, now, tolerance)
		} else {
			err = Verify(secret, v, body, now, tolerance)
		}
		if err != nil {
			return err
		}
		checked = true
	}
	if d, w := h.Get(DeliveryHeader), h.Get(WebhookIDHeader); d != "" && w != "" && d != w {
		return fmt.Errorf("%w: %s and %s differ", ErrInvalidSignature, DeliveryHeader, WebhookIDHeader)
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
