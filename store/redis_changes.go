package store

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/verify"
)

// RedisChanges is verify.Changes for the Redis store: the store's scripts
// PUBLISH the id of each verification they change on one channel,
// "<prefix>changes", and Run holds this gateway's one subscription to it
// and fans every message out to the waiters of this process that
// subscribed to that id. However many requests wait, a gateway holds one
// Redis subscription.
//
// Redis Cluster: the scripts use PUBLISH, which a cluster broadcasts to
// every node, so the one subscription (on whichever node go-redis picks)
// hears the changes of every slot. Sharded pub/sub (SPUBLISH) would keep
// each message on its slot's shard but would take a subscription per shard
// and follow slot migrations; one small message per status change is cheap
// enough to broadcast.
//
// Pub/sub delivers nothing that happens while the subscription is down.
// Every waiter is woken whenever it is (re)established, so each reads its
// verification again and misses no change.
type RedisChanges struct {
	c       redis.UniversalClient
	channel string
	log     *slog.Logger
	fan     fanout
}

var _ verify.Changes = (*RedisChanges)(nil)

// redisChangesPing is how long the subscription may stay silent before Run
// pings it, to find a connection that died without a word.
const redisChangesPing = 30 * time.Second

// NewRedisChanges returns the change feed of the Redis store with the key
// prefix prefix ("vg:" if empty, as RedisOptions.Prefix) on c. Give it the
// plain client (OpenRedis), not an AutoPipeline: it holds a subscription.
// Run must run for Subscribe to hear of anything.
func NewRedisChanges(c redis.UniversalClient, prefix string, log *slog.Logger) *RedisChanges {
	if prefix == "" {
		prefix = "vg:"
	}
	if log == nil {
		log = slog.Default()
	}
	return &RedisChanges{c: c, channel: prefix + "changes", log: log}
}

// Subscribe implements verify.Changes. It never fails: while the
// subscription is down, the waiter is woken when it is back.
func (r *RedisChanges) Subscribe(_ context.Context, id string) (<-chan struct{}, func(), error) {
	c, cancel := r.fan.subscribe(id)
	return c, cancel, nil
}

// Waiters is how many subscriptions of this process are open.
func (r *RedisChanges) Waiters() int { return r.fan.waiters() }

// Run holds the subscription until ctx ends; go-redis reconnects it after
// a failure.
func (r *RedisChanges) Run(ctx context.Context) {
	ps := r.c.Subscribe(ctx, r.channel)
	// A blocked Receive does not watch ctx: closing ends it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer func() {
		if stop() {
			ps.Close()
		}
	}()
	down := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, redisChangesPing)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				// Silence: a ping finds out whether the connection still
				// stands (its Pong arrives through Receive).
				if err := ps.Ping(ctx); err == nil {
					continue
				}
			}
			if !down {
				r.log.Warn("redis change subscription lost; reconnecting", "err", err)
				down = true
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Message:
			r.fan.notify(m.Payload)
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				if down {
					r.log.Info("redis change subscription restored")
					down = false
				}
				// Changes made while it was down were not heard.
				r.fan.notifyAll()
			}
		}
	}
}
