package callback

import (
	"crypto/rand"
	"encoding/hex"
	mathrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// backoff is the wait after the attempt-th failed attempt (1-based) when
// the receiver named none: base doubled per attempt, capped at limit, with
// "equal jitter" (a uniformly random half added to the other half) so
// that callbacks failed together by one outage do not return together.
func backoff(attempt int, base, limit time.Duration, jitter func(time.Duration) time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + jitter(d-d/2)
}

// randJitter is uniform in [0, d].
func randJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return mathrand.N(d + 1)
}

// retryAfter reads a Retry-After header, delay-seconds or an HTTP date
// (RFC 9110 §10.2.3), as a wait from now bounded by limit; ok is false when
// there is none or it cannot be read.
func retryAfter(h http.Header, now time.Time, limit time.Duration) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > int64(limit/time.Second) {
			return limit, true
		}
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(now), 0)
	} else {
		return 0, false
	}
	return min(d, limit), true
}

// newToken is 128 random bits in hex: delivery ids and lease tokens.
func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
