package hosted

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/rediskey"
)

// RedisStore is a FlowStore in Redis, so that a flow begun on one gateway
// goes on on any other behind the same load balancer. A flow is one hash,
// vg:entra:flow:{<id>}: field f holds the fixed part (JSON, written once),
// s the State (JSON), done "1" once finished. Each method is one command
// or one Lua script.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisStore returns a RedisStore on rdb. prefix, usually empty, goes
// before every key (tests isolate themselves with it).
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{rdb: rdb, prefix: prefix}
}

var _ FlowStore = (*RedisStore)(nil)

func (r *RedisStore) key(id string) string {
	return r.prefix + "vg:entra:flow:{" + rediskey.Escape(id) + "}"
}

// createScript stores the hash unless the key exists.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'f', ARGV[1], 's', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)

// setStateScript replaces s of a live, unfinished flow.
var setStateScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'done') == '1' then return -1 end
redis.call('HSET', KEYS[1], 's', ARGV[1])
return 1`)

// finishScript sets done once and returns the flow's fields.
var finishScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'done') == '1' then return -1 end
redis.call('HSET', KEYS[1], 'done', '1')
return redis.call('HMGET', KEYS[1], 'f', 's')`)

// Create implements FlowStore.
func (r *RedisStore) Create(ctx context.Context, f *Flow, ttl time.Duration) error {
	fixed, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("hosted: encode flow: %w", err)
	}
	st, err := json.Marshal(f.State)
	if err != nil {
		return fmt.Errorf("hosted: encode flow state: %w", err)
	}
	n, err := createScript.Run(ctx, r.rdb, []string{r.key(f.ID)}, fixed, st, ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("hosted: create flow: %w", err)
	}
	if n == 0 {
		return ErrFlowExists
	}
	return nil
}

// Get implements FlowStore.
func (r *RedisStore) Get(ctx context.Context, id string) (*Flow, error) {
	vals, err := r.rdb.HMGet(ctx, r.key(id), "f", "s", "done").Result()
	if err != nil {
		return nil, fmt.Errorf("hosted: get flow: %w", err)
	}
	f, err := decodeFlow(vals[0], vals[1])
	if err != nil {
		return nil, err
	}
	f.Finished = vals[2] == "1"
	return f, nil
}

func decodeFlow(fixed, state any) (*Flow, error) {
	fs, ok := fixed.(string)
	if !ok {
		return nil, ErrFlowNotFound
	}
	var f Flow
	if err := json.Unmarshal([]byte(fs), &f); err != nil {
		return nil, fmt.Errorf("hosted: decode flow: %w", err)
	}
	if ss, ok := state.(string); ok {
		if err := json.Unmarshal([]byte(ss), &f.State); err != nil {
			return nil, fmt.Errorf("hosted: decode flow state: %w", err)
		}
	}
	return &f, nil
}

// SetState implements FlowStore.
func (r *RedisStore) SetState(ctx context.Context, id string, s State) error {
	st, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("hosted: encode flow state: %w", err)
	}
	n, err := setStateScript.Run(ctx, r.rdb, []string{r.key(id)}, st).Int()
	switch {
	case err != nil:
		return fmt.Errorf("hosted: set flow state: %w", err)
	case n == 0:
		return ErrFlowNotFound
	case n < 0:
		return ErrFlowFinished
	}
	return nil
}

// Finish implements FlowStore.
func (r *RedisStore) Finish(ctx context.Context, id string) (*Flow, error) {
	res, err := finishScript.Run(ctx, r.rdb, []string{r.key(id)}).Result()
	if err != nil {
		return nil, fmt.Errorf("hosted: finish flow: %w", err)
	}
	switch v := res.(type) {
	case int64:
		if v == 0 {
			return nil, ErrFlowNotFound
		}
		return nil, ErrFlowFinished
	case []any:
		if len(v) != 2 {
			return nil, errors.New("hosted: finish flow: unexpected reply")
		}
		f, err := decodeFlow(v[0], v[1])
		if err != nil {
			return nil, err
		}
		f.Finished = true
		return f, nil
	}
	return nil, fmt.Errorf("hosted: finish flow: unexpected reply %T", res)
}
