package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/limitlua"
	"github.com/verigate/verigate/internal/rediskey"
	"github.com/verigate/verigate/verify"
)

// Redis is a verify.Limiter in Redis, shared by every gateway on the same
// server, Sentinel group or Cluster. It keeps the same sliding-window log
// as Memory: one sorted set per bucket, vg:rl:{<policy>:<value>}, whose
// members are the allowed sends (score: time in µs), and a block key
// vg:rl:block:{<number>} holding the time the block ends.
//
// On a single server or Sentinel one Lua script checks the block and every
// policy that applies and adds the send to all of them or to none: one
// round trip, atomic. In Redis Cluster the buckets of one send live in
// different slots, which one script may not touch, so Consume runs the
// script per policy and removes the send again from the policies it had
// already been added to when a later one denies. Between that add and that
// removal (one or two round trips) another send can see the extra entry and
// be denied although it would have fit; a gateway that dies in between
// leaves the entry until it ages out of its window. Both err on the side of
// fewer sends: no policy ever lets more than its Limit through.
//
// Time: by default the scripts read Redis's own clock (TIME), so gateways
// whose clocks disagree still share one window. Tests inject a clock
// (RedisOptions.Now), which is then passed to every script.
type Redis struct {
	c         redis.UniversalClient
	policies  []Policy
	prefix    string
	now       func() time.Time
	perPolicy bool
}

// RedisOptions configures a Redis limiter.
type RedisOptions struct {
	// Prefix starts every key; "vg:" if empty.
	Prefix string
	// Now is the clock; Redis's TIME if nil.
	Now func() time.Time
	// PerPolicy consumes policy by policy with refunds, as Cluster
	// requires. It is set by itself when the client is a
	// *redis.ClusterClient; set it (store.IsCluster) for a client that
	// wraps one; tests set it to run that path on one server.
	PerPolicy bool
}

var _ verify.Limiter = (*Redis)(nil)

// NewRedis returns a limiter enforcing policies on c.
func NewRedis(c redis.UniversalClient, policies []Policy, opt RedisOptions) (*Redis, error) {
	for _, p := range policies {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("ratelimit: %w", err)
		}
	}
	if opt.Prefix == "" {
		opt.Prefix = "vg:"
	}
	if _, ok := c.(*redis.ClusterClient); ok {
		opt.PerPolicy = true
	}
	return &Redis{c: c, policies: policies, prefix: opt.Prefix, now: opt.Now, perPolicy: opt.PerPolicy}, nil
}

func (r *Redis) bucketKey(bucket string) string {
	return r.prefix + "rl:{" + rediskey.Escape(bucket) + "}"
}

func (r *Redis) blockKey(number string) string {
	return r.prefix + "rl:block:{" + rediskey.Escape(number) + "}"
}

// luaConsume is the consume of internal/limitlua, which the Redis store
// also runs inside its start script (Step).
var luaConsume = redis.NewScript(limitlua.Consume)

// luaBlock: ARGV[1] now µs or ”, ARGV[2] duration µs.
var luaBlock = redis.NewScript(limitlua.Now + `
local d = tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%d', now + d), 'PX', math.ceil(d / 1000))
return 1
`)

func (r *Redis) nowArg() string {
	if r.now == nil {
		return ""
	}
	return strconv.FormatInt(r.now().UnixMicro(), 10)
}

type applied struct {
	policy Policy
	key    string
}

// buckets are the policies that apply to s, with their keys.
func (r *Redis) buckets(s verify.SendSubject) []applied {
	var buckets []applied
	for _, p := range r.policies {
		if b, ok := p.Bucket(s); ok {
			buckets = append(buckets, applied{p, r.bucketKey(b)})
		}
	}
	return buckets
}

// newMember is a sorted-set member unique to one send, so that two sends
// in the same µs both count.
func newMember() (string, error) {
	var tok [8]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return "", fmt.Errorf("ratelimit: %w", err)
	}
	return hex.EncodeToString(tok[:]), nil
}

// memberOf is the sorted-set member that counts send s: its SendID, or a
// new random one when it has none.
func memberOf(s verify.SendSubject) (string, error) {
	if s.SendID != "" {
		return s.SendID, nil
	}
	return newMember()
}

// Consume implements verify.Limiter.
func (r *Redis) Consume(ctx context.Context, s verify.SendSubject) error {
	buckets := r.buckets(s)
	member, err := memberOf(s)
	if err != nil {
		return err
	}
	now := r.nowArg()
	if !r.perPolicy {
		return r.consume(ctx, s, now, member, "b", buckets)
	}
	if err := r.consume(ctx, s, now, member, "b", nil); err != nil {
		return err
	}
	for i := range buckets {
		err := r.consume(ctx, s, now, member, "", buckets[i:i+1])
		if err == nil {
			continue
		}
		r.refund(member, buckets[:i])
		var le *verify.LimitError
		if !errors.As(err, &le) {
			return err
		}
		// Report the longest wait, as the one script does: look at the
		// policies not yet tried without adding to them.
		for j := i + 1; j < len(buckets); j++ {
			var later *verify.LimitError
			if errors.As(r.consume(ctx, s, now, member, "d", buckets[j:j+1]), &later) && later.RetryAfter > le.RetryAfter {
				le = later
			}
		}
		return le
	}
	return nil
}

// consume runs luaConsume over the block key (flag b) and buckets.
func (r *Redis) consume(ctx context.Context, s verify.SendSubject, now, member, flags string, buckets []applied) error {
	keys, args := r.consumeArgs(s, now, member, flags, buckets)
	res, err := luaConsume.Run(ctx, r.c, keys, args...).Int64Slice()
	if err != nil {
		return fmt.Errorf("ratelimit: consume: %w", err)
	}
	return verdictOf(s, buckets, res)
}

// verdictOf turns luaConsume's reply for s over buckets into Consume's error.
func verdictOf(s verify.SendSubject, buckets []applied, res []int64) error {
	switch {
	case len(res) == 0:
		return errors.New("ratelimit: consume: empty reply")
	case res[0] == 0:
		return nil
	case len(res) < 2:
		return fmt.Errorf("ratelimit: consume: unexpected reply %v", res)
	case res[0] == -1:
		return denial(s, Policy{Name: verify.PolicyBlocked, Scope: ScopeNumber}, time.Duration(res[1])*time.Microsecond)
	case res[0] > 0 && int(res[0]) <= len(buckets):
		return denial(s, buckets[res[0]-1].policy, time.Duration(res[1])*time.Microsecond)
	}
	return fmt.Errorf("ratelimit: consume: unexpected reply %v", res)
}

// consumeArgs are luaConsume's keys and arguments.
func (r *Redis) consumeArgs(s verify.SendSubject, now, member, flags string, buckets []applied) ([]string, []any) {
	keys := make([]string, 0, len(buckets)+1)
	args := make([]any, 0, 3+2*len(buckets))
	args = append(args, now, member, flags)
	if strings.Contains(flags, "b") {
		keys = append(keys, r.blockKey(s.To))
	}
	for _, b := range buckets {
		keys = append(keys, b.key)
		args = append(args, b.policy.Limit, b.policy.Window.Microseconds())
	}
	return keys, args
}

// Step prepares s's consume to run inside the Redis store's start script
// (limitlua.ConsumeFunc), so that a start consumes and stores in one round
// trip; its Verdict gives the error Consume would return. ok is false on
// the per-policy path (Cluster), where no one script may touch every key:
// consume with Consume there.
func (r *Redis) Step(s verify.SendSubject) (step limitlua.Step, ok bool, err error) {
	if r.perPolicy {
		return limitlua.Step{}, false, nil
	}
	buckets := r.buckets(s)
	member, err := memberOf(s)
	if err != nil {
		return limitlua.Step{}, false, err
	}
	keys, args := r.consumeArgs(s, r.nowArg(), member, "b", buckets)
	return limitlua.Step{Keys: keys, Args: args, Verdict: func(reply []int64) error { return verdictOf(s, buckets, reply) }}, true, nil
}

// refund removes member from buckets after a later policy denied (Cluster
// only). It runs on its own context: the caller's may be ending, and a
// refund that does not happen only errs towards fewer sends.
func (r *Redis) refund(member string, buckets []applied) {
	if len(buckets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, b := range buckets {
		_ = r.c.ZRem(ctx, b.key, member).Err()
	}
}

// Refund implements verify.Limiter: the send's member leaves every bucket
// of s, one ZREM each, pipelined (in Cluster the buckets live in several
// slots, so no one script may touch them all).
func (r *Redis) Refund(ctx context.Context, s verify.SendSubject) error {
	if s.SendID == "" {
		return nil
	}
	buckets := r.buckets(s)
	if len(buckets) == 0 {
		return nil
	}
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, b := range buckets {
			p.ZRem(ctx, b.key, s.SendID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ratelimit: refund: %w", err)
	}
	return nil
}

// Block implements verify.Limiter.
func (r *Redis) Block(ctx context.Context, number string, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if err := luaBlock.Run(ctx, r.c, []string{r.blockKey(number)}, r.nowArg(), d.Microseconds()).Err(); err != nil {
		return fmt.Errorf("ratelimit: block: %w", err)
	}
	return nil
}
