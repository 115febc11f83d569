package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// IdempotencyRedis remembers Idempotency-Key responses in Redis
// (api.IdempotencyStore), shared by every gateway. Keys are
// vg:idem:{<tenant>}:<key>; Redis expires them.
type IdempotencyRedis struct {
	rdb redis.UniversalClient
}

// NewIdempotencyRedis returns a store on rdb (a client, a Sentinel client
// or a Cluster client).
func NewIdempotencyRedis(rdb redis.UniversalClient) *IdempotencyRedis {
	return &IdempotencyRedis{rdb: rdb}
}

// IdempotencyKey is the Redis key of tenant's Idempotency-Key key.
func IdempotencyKey(tenant, key string) string {
	return "vg:idem:{" + tenant + "}:" + key
}

// releaseScript deletes the key only if it still holds the caller's value,
// so a late Release never drops another request's reservation or response.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// Reserve is one SET NX: it stores value unless the key exists; then it
// reads what is there. A key that expires between the two steps is
// reserved on the next try.
func (r *IdempotencyRedis) Reserve(ctx context.Context, tenant, key string, value []byte, ttl time.Duration) ([]byte, bool, error) {
	k := IdempotencyKey(tenant, key)
	for range 3 {
		ok, err := r.rdb.SetNX(ctx, k, value, ttl).Result()
		if err != nil {
			return nil, false, fmt.Errorf("idempotency reserve: %w", err)
		}
		if ok {
			return nil, true, nil
		}
		existing, err := r.rdb.Get(ctx, k).Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("idempotency read: %w", err)
		}
		return existing, false, nil
	}
	return nil, false, errors.New("idempotency reserve: key keeps vanishing")
}

// Save stores value under the key for ttl.
func (r *IdempotencyRedis) Save(ctx context.Context, tenant, key string, value []byte, ttl time.Duration) error {
	if err := r.rdb.Set(ctx, IdempotencyKey(tenant, key), value, ttl).Err(); err != nil {
		return fmt.Errorf("idempotency save: %w", err)
	}
	return nil
}

// Release deletes the key if it still holds value.
func (r *IdempotencyRedis) Release(ctx context.Context, tenant, key string, value []byte) error {
	if err := releaseScript.Run(ctx, r.rdb, []string{IdempotencyKey(tenant, key)}, value).Err(); err != nil {
		return fmt.Errorf("idempotency release: %w", err)
	}
	return nil
}
