package entra

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// replayStore remembers the hints already presented, so that one hint
// starts at most one flow: a hint copied from a person's browser (or
// posted twice by a replaying attacker) is refused.
type replayStore interface {
	// firstUse records id for ttl and reports whether it was new.
	firstUse(ctx context.Context, id string, ttl time.Duration, now time.Time) (bool, error)
}

// hintID is the replay key of a hint: SHA-256 of its decoded signature,
// so the store never holds the token itself, and the same signed hint
// written another way (the JWS parser tolerates some) has the same key.
// sig is the hint's third part, base64url; a hint reaches here only after
// canonicalHint accepted it.
func hintID(token string) string {
	var sig []byte
	if i := strings.LastIndexByte(token, '.'); i >= 0 {
		sig, _ = base64.RawURLEncoding.DecodeString(token[i+1:])
	}
	sum := sha256.Sum256(sig)
	return hex.EncodeToString(sum[:])
}

// canonicalHint refuses a compact JWS unless it is written the one way
// its bytes allow: three parts of [A-Za-z0-9_-] that re-encode to
// themselves. go-jose tolerates line breaks and non-zero trailing bits,
// which would give one signed hint many spellings.
func canonicalHint(token string) bool {
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	for _, part := range parts {
		b, err := base64.RawURLEncoding.DecodeString(part)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != part {
			return false
		}
	}
	return true
}

// memoryReplay is the replay store of one gateway. Only validated hints
// reach it, and each leaves after ttl, so it is bounded by the sign-ins
// of that time.
type memoryReplay struct {
	mu   sync.Mutex
	seen map[string]time.Time // id → expiry
	next time.Time            // next sweep
}

func newMemoryReplay() *memoryReplay { return &memoryReplay{seen: map[string]time.Time{}} }

func (m *memoryReplay) firstUse(_ context.Context, id string, ttl time.Duration, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !now.Before(m.next) {
		for k, exp := range m.seen {
			if !now.Before(exp) {
				delete(m.seen, k)
			}
		}
		m.next = now.Add(time.Minute)
	}
	if exp, ok := m.seen[id]; ok && now.Before(exp) {
		return false, nil
	}
	m.seen[id] = now.Add(ttl)
	return true, nil
}

// redisReplay is the replay store shared by every gateway: SET NX with
// the TTL, one round trip.
type redisReplay struct {
	c      redis.UniversalClient
	prefix string // "vg:entra:hint:"
}

func (r *redisReplay) firstUse(ctx context.Context, id string, ttl time.Duration, _ time.Time) (bool, error) {
	ok, err := r.c.SetNX(ctx, r.prefix+id, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("entra: replay check: %w", err)
	}
	return ok, nil
}
