package route

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisLookupCache is a LookupCache in Redis, shared by every gateway:
// one key per number, vg:lookup:{<e164>}, a JSON value with the TTL as its
// expiry. Works with a single server, Sentinel and Cluster (the hash tag
// keeps each key in one slot).
type RedisLookupCache struct {
	rdb redis.UniversalClient
}

var _ LookupCache = (*RedisLookupCache)(nil)

// NewRedisLookupCache returns a cache over rdb.
func NewRedisLookupCache(rdb redis.UniversalClient) *RedisLookupCache {
	return &RedisLookupCache{rdb: rdb}
}

// LookupKey is the Redis key of e164's cached lookup.
func LookupKey(e164 string) string { return "vg:lookup:{" + e164 + "}" }

// Get implements LookupCache.
func (c *RedisLookupCache) Get(ctx context.Context, e164 string) (LookupResult, bool, error) {
	data, err := c.rdb.Get(ctx, LookupKey(e164)).Bytes()
	if errors.Is(err, redis.Nil) {
		return LookupResult{}, false, nil
	}
	if err != nil {
		return LookupResult{}, false, fmt.Errorf("lookup cache get: %w", err)
	}
	var r LookupResult
	if err := json.Unmarshal(data, &r); err != nil {
		return LookupResult{}, false, fmt.Errorf("lookup cache: stored value: %w", err)
	}
	return r, true, nil
}

// Set implements LookupCache.
func (c *RedisLookupCache) Set(ctx context.Context, e164 string, r LookupResult, ttl time.Duration) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("lookup cache: %w", err)
	}
	if err := c.rdb.Set(ctx, LookupKey(e164), data, ttl).Err(); err != nil {
		return fmt.Errorf("lookup cache set: %w", err)
	}
	return nil
}
