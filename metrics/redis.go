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
// redis.Hook and prometheus.Collector. Add it to a client with AddHook.
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
