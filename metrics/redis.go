package metrics

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// redisCommands are the command labels RedisHook keeps; any other command
// counts as "other", so a label never takes an unbounded value.
var redisCommands = map[string]bool{
	"eval": true, "evalsha": true, "evalsha_ro": true, "eval_ro": true, "fcall": true, "script": true,
	"get": true, "set": true, "del": true, "exists": true, "expire": true, "pexpire": true, "ttl": true, "pttl": true,
	"incr": true, "incrby": true, "decr": true, "mget": true, "mset": true,
	"hget": true, "hset": true, "hgetall": true, "hdel": true, "hincrby": true, "hmget": true,
	"zadd": true, "zrem": true, "zrange": true, "zrangebyscore": true, "zcard": true, "zremrangebyscore": true, "zpopmin": true,
	"lpush": true, "rpush": true, "lpop": true, "rpop": true, "llen": true, "lrange": true, "blpop": true, "brpop": true, "lmove": true, "blmove": true,
	"publish": true, "subscribe": true, "psubscribe": true, "ping": true, "time": true, "info": true, "hello": true, "client": true, "cluster": true,
	"scan": true, "type": true, "watch": true, "multi": true, "exec": true,
}

// RedisHook times every Redis command and pipeline and counts the ones
// that fail (redis.Nil, a missing key, is no failure); it implements
// redis.Hook and prometheus.Collector. Add it to a client with AddHook,
// or time an auto-pipelined client with Wrap.
type RedisHook struct {
	duration *prometheus.HistogramVec // command
	errors   *prometheus.CounterVec   // command
}

var _ redis.Hook = (*RedisHook)(nil)

// NewRedisHook returns the hook's series, unregistered.
func NewRedisHook() *RedisHook {
	return &RedisHook{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "verigate_redis_command_duration_seconds",
			Help:    "Redis round trips by command (lowercase; pipeline for a pipeline or transaction, other for a command not listed), errors included.",
			Buckets: []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"command"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verigate_redis_errors_total",
			Help: "Redis commands, pipelines and connection dials that failed, by command (dial for a connection).",
		}, []string{"command"}),
	}
}

// Describe implements prometheus.Collector.
func (h *RedisHook) Describe(ch chan<- *prometheus.Desc) {
	h.duration.Describe(ch)
	h.errors.Describe(ch)
}

// Collect implements prometheus.Collector.
func (h *RedisHook) Collect(ch chan<- prometheus.Metric) {
	h.duration.Collect(ch)
	h.errors.Collect(ch)
}

// DialHook implements redis.Hook: failed dials count as errors.
func (h *RedisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			h.errors.WithLabelValues("dial").Inc()
		}
		return c, err
	}
}

// ProcessHook implements redis.Hook.
func (h *RedisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		begin := time.Now()
		err := next(ctx, cmd)
		if handshake(cmd.Name()) {
			err = nil
		}
		h.done(commandLabel(cmd.Name()), begin, err)
		return err
	}
}

// ProcessPipelineHook implements redis.Hook.
func (h *RedisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		begin := time.Now()
		err := next(ctx, cmds)
		h.done("pipeline", begin, pipelineErr(cmds, err))
		return err
	}
}

// pipelineErr is the first failure among cmds other than the connection
// handshake, or err when no command carries one (the pipeline never ran).
func pipelineErr(cmds []redis.Cmder, err error) error {
	failed := false
	for _, c := range cmds {
		e := c.Err()
		if e == nil || errors.Is(e, redis.Nil) {
			continue
		}
		failed = true
		if !handshake(c.Name()) {
			return e
		}
	}
	if failed {
		return nil // only the handshake failed, which go-redis ignores
	}
	return err
}

// Wrap returns c with the commands the gateway's hot path sends timed
// into h's series, without a go-redis hook. An auto-pipelined client
// must not carry a hook: go-redis then runs each command's hook chain on
// a goroutine of its own and reads that goroutine's id from a stack
// trace, which cost the gateway about a sixth of its CPU per verification
// (docs/BENCHMARKS.md, "Through the Twilio provider over TLS"). Build
// the pipeliner from a client without hooks and wrap it.
//
// Only the commands TimedClient names are timed; the others pass through
// untimed. TestTimedClientTimesTheHotPath holds the list to what the
// store, the limiter, the idempotency records and the SMS-pumping watch
// send.
func (h *RedisHook) Wrap(c redis.UniversalClient) *TimedClient {
	return &TimedClient{UniversalClient: c, hook: h}
}

// TimedClient is a Redis client whose scripts and the few plain commands
// the hot path sends are timed into a RedisHook's series (see Wrap).
type TimedClient struct {
	redis.UniversalClient
	hook *RedisHook
}

// timed records one command that began at begin and returns it.
func timed[C redis.Cmder](t *TimedClient, begin time.Time, cmd C) C {
	err := cmd.Err()
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		// redis.Script.Run loads the script and runs it again: the
		// normal first call after Redis restarted, no failure.
		err = nil
	}
	t.hook.done(commandLabel(cmd.Name()), begin, err)
	return cmd
}

// Eval implements redis.Scripter.
func (t *TimedClient) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return timed(t, time.Now(), t.UniversalClient.Eval(ctx, script, keys, args...))
}

// EvalSha implements redis.Scripter.
func (t *TimedClient) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return timed(t, time.Now(), t.UniversalClient.EvalSha(ctx, sha1, keys, args...))
}

// EvalRO implements redis.Scripter.
func (t *TimedClient) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return timed(t, time.Now(), t.UniversalClient.EvalRO(ctx, script, keys, args...))
}

// EvalShaRO implements redis.Scripter.
func (t *TimedClient) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return timed(t, time.Now(), t.UniversalClient.EvalShaRO(ctx, sha1, keys, args...))
}

// ScriptExists implements redis.Scripter.
func (t *TimedClient) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	return timed(t, time.Now(), t.UniversalClient.ScriptExists(ctx, hashes...))
}

// ScriptLoad implements redis.Scripter.
func (t *TimedClient) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	return timed(t, time.Now(), t.UniversalClient.ScriptLoad(ctx, script))
}

// Get is redis.Cmdable's, timed.
func (t *TimedClient) Get(ctx context.Context, key string) *redis.StringCmd {
	return timed(t, time.Now(), t.UniversalClient.Get(ctx, key))
}

// Set is redis.Cmdable's, timed.
func (t *TimedClient) Set(ctx context.Context, key string, value any, expiration time.Duration) *redis.StatusCmd {
	return timed(t, time.Now(), t.UniversalClient.Set(ctx, key, value, expiration))
}

// SetNX is redis.Cmdable's, timed.
func (t *TimedClient) SetNX(ctx context.Context, key string, value any, expiration time.Duration) *redis.BoolCmd {
	return timed(t, time.Now(), t.UniversalClient.SetNX(ctx, key, value, expiration))
}

// ZRem is redis.Cmdable's, timed.
func (t *TimedClient) ZRem(ctx context.Context, key string, members ...any) *redis.IntCmd {
	return timed(t, time.Now(), t.UniversalClient.ZRem(ctx, key, members...))
}

// Pipelined is redis.Cmdable's, timed as one "pipeline".
func (t *TimedClient) Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error) {
	begin := time.Now()
	cmds, err := t.UniversalClient.Pipelined(ctx, fn)
	t.hook.done("pipeline", begin, pipelineErr(cmds, err))
	return cmds, err
}

func (h *RedisHook) done(command string, begin time.Time, err error) {
	h.duration.WithLabelValues(command).Observe(time.Since(begin).Seconds())
	if err != nil && !errors.Is(err, redis.Nil) {
		h.errors.WithLabelValues(command).Inc()
	}
}

// commandLabel bounds a command name to redisCommands.
func commandLabel(name string) string {
	name = strings.ToLower(name)
	if redisCommands[name] {
		return name
	}
	return "other"
}

// handshake reports whether a command is one go-redis sends to set up a
// connection (HELLO, CLIENT SETINFO), whose refusal by an older server it
// ignores: counting those would raise the error alert against a healthy
// Redis.
func handshake(name string) bool {
	switch strings.ToLower(name) {
	case "hello", "client":
		return true
	}
	return false
}
