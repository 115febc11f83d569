package callback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisQueue is a Queue in Redis that every gateway on it shares. Four keys
// under one hash tag (one Cluster slot): <prefix>{cb}:due, a sorted set of
// delivery ids by the time (ms, Redis's clock) each is due; :jobs, the
// notices by id; :lease, the token of the claim holding each; :tries, the
// attempts started. A claim moves the notice's due time to the lease's end,
// so a gateway that dies holding it only delays it. Every operation is one
// script, timed by Redis's TIME so the gateways' clocks do not matter.
type RedisQueue struct {
	rdb  redis.Cmdable
	keys []string
	max  int
}

var _ Queue = (*RedisQueue)(nil)

// RedisQueueOptions configures a RedisQueue.
type RedisQueueOptions struct {
	Prefix string // before the keys; default "vg:cb:"
	Max    int    // notices queued at most; 0: no limit
}

// NewRedisQueue returns a RedisQueue on rdb.
func NewRedisQueue(rdb redis.Cmdable, o RedisQueueOptions) *RedisQueue {
	if o.Prefix == "" {
		o.Prefix = "vg:cb:"
	}
	k := o.Prefix + "{cb}:"
	return &RedisQueue{rdb: rdb, max: o.Max, keys: []string{k + "due", k + "jobs", k + "lease", k + "tries"}}
}

// nowMS is Redis's clock in milliseconds; scripts that call TIME are
// replicated by their effects (the default since Redis 5).
const nowMS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

var pushScript = redis.NewScript(nowMS + `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 1 end
local max = tonumber(ARGV[3])
if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
return 1
`)

// claimScript returns {job, attempt} or nil. A due id without a job (it
// cannot happen through these scripts, but keys can be edited by hand) is
// removed, not returned.
var claimScript = redis.NewScript(nowMS + `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
if #ids == 0 then return nil end
local id = ids[1]
local job = redis.call('HGET', KEYS[2], id)
if not job then
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  return nil
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id)
redis.call('HSET', KEYS[3], id, ARGV[2])
local tries = redis.call('HINCRBY', KEYS[4], id, 1)
return {job, tries}
`)

var retryScript = redis.NewScript(nowMS + `
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return 1
`)

var doneScript = redis.NewScript(`
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
`)

// Push implements Queue.
func (q *RedisQueue) Push(ctx context.Context, j Job) error {
	j.Attempt, j.Token = 0, ""
	body, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("callback: encode job: %w", err)
	}
	ok, err := pushScript.Run(ctx, q.rdb, q.keys, j.ID, body, q.max).Int()
	if err != nil {
		return fmt.Errorf("callback: queue in redis: %w", err)
	}
	if ok == 0 {
		return ErrQueueFull
	}
	return nil
}

// Claim implements Queue.
func (q *RedisQueue) Claim(ctx context.Context, lease time.Duration) (Job, bool, error) {
	token, err := newToken()
	if err != nil {
		return Job{}, false, err
	}
	res, err := claimScript.Run(ctx, q.rdb, q.keys, lease.Milliseconds(), token).Slice()
	if errors.Is(err, redis.Nil) {
		return Job{}, false, nil
	}
	if err != nil {
		return Job{}, false, fmt.Errorf("callback: claim in redis: %w", err)
	}
	if len(res) != 2 {
		return Job{}, false, fmt.Errorf("callback: claim in redis: unexpected reply %v", res)
	}
	body, _ := res[0].(string)
	tries, _ := res[1].(int64)
	var j Job
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		return Job{}, false, fmt.Errorf("callback: decode job: %w", err)
	}
	j.Attempt, j.Token = int(tries), token
	return j, true, nil
}

// Retry implements Queue.
func (q *RedisQueue) Retry(ctx context.Context, j Job, delay time.Duration) error {
	ok, err := retryScript.Run(ctx, q.rdb, q.keys, j.ID, j.Token, delay.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("callback: retry in redis: %w", err)
	}
	if ok == 0 {
		return ErrLeaseLost
	}
	return nil
}

// Done implements Queue.
func (q *RedisQueue) Done(ctx context.Context, j Job) error {
	ok, err := doneScript.Run(ctx, q.rdb, q.keys, j.ID, j.Token).Int()
	if err != nil {
		return fmt.Errorf("callback: done in redis: %w", err)
	}
	if ok == 0 {
		return ErrLeaseLost
	}
	return nil
}

// Len implements Queue.
func (q *RedisQueue) Len(ctx context.Context) (int, error) {
	n, err := q.rdb.ZCard(ctx, q.keys[0]).Result()
	if err != nil {
		return 0, fmt.Errorf("callback: queue length in redis: %w", err)
	}
	return int(n), nil
}
