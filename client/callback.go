package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/verigate/verigate/callback"
)

// DefaultCallbackTolerance is how far a callback's signed timestamp may
// be from the receiver's clock in ReadCallback: wide enough for clock skew
// and a slow network, short enough that a captured callback cannot be
// replayed much later.
const DefaultCallbackTolerance = 5 * time.Minute

// maxCallbackBytes bounds the body ReadCallback reads; a notice is about
// two hundred bytes.
const maxCallbackBytes = 64 << 10

// ErrInvalidSignature is wrapped by every refusal of VerifyCallback and
// ReadCallback for a signature that is missing, malformed, stale or wrong.
var ErrInvalidSignature = callback.ErrInvalidSignature

// KindMessage is the Kind of a callback about a relayed message.
const KindMessage = "message"

// Callback is one status change the gateway POSTed to a callback_url.
type Callback struct {
	// DeliveryID is the same on every attempt of one notice: a receiver
	// that has seen it drops the callback (delivery is at least once).
	DeliveryID string `json:"-"`
	ID         string `json:"id"` // the verification, or the message
	// Kind is KindMessage for a relayed message (Send with a
	// CallbackURL), whose Status is then a MessageStatus
	// (MessageStatus(cb.Status)); empty for a verification.
	Kind   string `json:"kind,omitempty"`
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
	// To is masked: the IdP knows the number it asked for.
	To      string    `json:"to"`
	Channel Channel   `json:"channel"`
	At      time.Time `json:"at"`
}

// VerifyCallback checks the signatures of a callback, with header and
// body as received and secret as configured on the gateway
// (callbacks.secret, plain or "whsec_<base64>"), and decodes it. Both
// signature formats are checked when present (Verigate-Signature and the
// Standard Webhooks headers), at least one must be, and their timestamps
// must be within tolerance of now. The cryptography is the gateway's own
// (callback.VerifyRequest).
func VerifyCallback(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) (*Callback, error) {
	if err := callback.VerifyRequest(secret, header, body, now, tolerance); err != nil {
		return nil, err
	}
	var cb Callback
	if err := json.Unmarshal(body, &cb); err != nil {
		return nil, fmt.Errorf("client: callback body: %w", err)
	}
	cb.DeliveryID = header.Get(callback.DeliveryHeader)
	if cb.DeliveryID == "" {
		cb.DeliveryID = header.Get(callback.WebhookIDHeader)
	}
	return &cb, nil
}

// ReadCallback reads the body of an incoming callback request (at most
// 64 KiB) and checks it with VerifyCallback against the current time and
// DefaultCallbackTolerance. Answer a refused callback with 4xx and an
// accepted one with 2xx; the gateway retries other answers.
func ReadCallback(r *http.Request, secret []byte) (*Callback, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCallbackBytes+1))
	if err != nil {
		return nil, fmt.Errorf("client: read callback: %w", err)
	}
	if len(body) > maxCallbackBytes {
		return nil, fmt.Errorf("client: callback body over %d bytes", maxCallbackBytes)
	}
	return VerifyCallback(secret, r.Header, body, time.Now(), DefaultCallbackTolerance)
}
