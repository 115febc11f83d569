package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// IdempotencyStore remembers, per tenant and Idempotency-Key, the first
// response to a request. Values are opaque to the store. Implementations:
// store.IdempotencyMemory and store.IdempotencyRedis.
type IdempotencyStore interface {
	// Reserve stores value under tenant and key for ttl, atomically, unless
	// a value is stored there already: then it changes nothing and returns
	// that value with reserved false. Of two concurrent Reserves with one
	// key, exactly one reserves.
	Reserve(ctx context.Context, tenant, key string, value []byte, ttl time.Duration) (existing []byte, reserved bool, err error)
	// Save stores value under tenant and key for ttl, replacing what is there.
	Save(ctx context.Context, tenant, key string, value []byte, ttl time.Duration) error
	// Release deletes the entry if it still holds value, so a reservation
	// whose request will not be remembered frees its key for a retry.
	Release(ctx context.Context, tenant, key string, value []byte) error
}

// HeaderIdempotencyKey names the request header; HeaderIdempotentReplayed
// marks a response replayed from an earlier request.
const (
	HeaderIdempotencyKey     = "Idempotency-Key"
	HeaderIdempotentReplayed = "Idempotent-Replayed"
)

// Idempotency timing: a reservation holds a key while its request runs
// (and frees it by itself if the gateway dies meanwhile); a second request
// with the key waits that long at most for the first one's answer.
const (
	reservationTTL = time.Minute
	replayWait     = 10 * time.Second
	replayPoll     = 20 * time.Millisecond
	maxKeyLength   = 255
)

// idemRecord is what the store holds: while the first request runs,
// Fingerprint and Token only; then its status and body too.
type idemRecord struct {
	Fingerprint string          `json:"f"`
	Token       string          `json:"t,omitempty"`
	Status      int             `json:"s,omitempty"`
	Body        json.RawMessage `json:"b,omitempty"`
}

// idemKey reads and checks the Idempotency-Key header; "" when absent.
func idemKey(c echo.Context) (string, error) {
	k := c.Request().Header.Get(HeaderIdempotencyKey)
	if k == "" {
		return "", nil
	}
	if len(k) > maxKeyLength {
		return "", invalidRequest("the %s header is longer than %d characters", HeaderIdempotencyKey, maxKeyLength)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return "", invalidRequest("the %s header may hold only printable ASCII characters without spaces (a UUID is a good key)", HeaderIdempotencyKey)
		}
	}
	return k, nil
}

func fingerprint(req any) string {
	b, _ := json.Marshal(req)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// idempotent runs do at most once per tenant and key: the first response is
// stored and replayed to every later request with the same key and the same
// body for IdempotencyTTL. A different body with the key is refused (422).
// Responses that are worth retrying (429, 5xx) are not stored: the key is
// released so the client's retry runs again.
func (h *handler) idempotent(c echo.Context, tenant, key string, req any, do func() (status int, body []byte, err error)) error {
	ctx := c.Request().Context()
	fp := fingerprint(req)
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	mine, _ := json.Marshal(idemRecord{Fingerprint: fp, Token: hex.EncodeToString(tok[:])})

	deadline := time.Now().Add(replayWait)
	for {
		existing, reserved, err := h.idem.Reserve(ctx, tenant, key, mine, reservationTTL)
		if err != nil {
			return fmt.Errorf("idempotency reserve: %w", err)
		}
		if reserved {
			break
		}
		var rec idemRecord
		if err := json.Unmarshal(existing, &rec); err != nil {
			return fmt.Errorf("idempotency record: %w", err)
		}
		if rec.Fingerprint != fp {
			return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_request",
				Message: "this Idempotency-Key was already used with a different request body: use a new key for a new request"}
		}
		if rec.Status != 0 {
			h.metrics.replays.Inc()
			c.Response().Header().Set(HeaderIdempotentReplayed, "true")
			return c.JSONBlob(rec.Status, rec.Body)
		}
		if time.Now().After(deadline) {
			return &Error{Status: http.StatusConflict, Code: "invalid_request",
				Message: "a request with this Idempotency-Key is still being processed: retry later"}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("idempotency wait: %w", ctx.Err())
		case <-time.After(replayPoll):
		}
	}

	status, body, err := do()
	if err != nil {
		r := describe(err)
		if r.internal || r.status == http.StatusTooManyRequests {
			// Context of its own: the client may be gone, the key must still be freed.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if rerr := h.idem.Release(rctx, tenant, key, mine); rerr != nil {
				h.log.Warn("idempotency release", "err", rerr)
			}
			return err
		}
		status, body = r.status, r.marshal()
	}
	rec, _ := json.Marshal(idemRecord{Fingerprint: fp, Status: status, Body: body})
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := h.idem.Save(sctx, tenant, key, rec, IdempotencyTTL); serr != nil {
		// The verification started; say so rather than fail the request.
		h.log.Error("idempotency save", "err", serr)
	}
	return c.JSONBlob(status, body)
}
