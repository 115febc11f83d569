package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/verify"
)

// RedisHistory is a DeliveryHistory in Redis, shared by every gateway on
// it: Twilio's report that an SMS went undelivered lands on whichever
// gateway its status callback reaches, and the next start for the number
// may come to another, which must call first all the same. One key per
// number, vg:undelivered:{<e164>}: when an SMS to it last went undelivered
// (Unix ms), expiring after the window; a delivered SMS deletes it, as
// MemoryHistory forgets it.
type RedisHistory struct {
	rdb    redis.UniversalClient
	window time.Duration
	log    *slog.Logger
}

var (
	_ DeliveryHistory      = (*RedisHistory)(nil)
	_ verify.EventObserver = (*RedisHistory)(nil)
)

// historyTimeout bounds Observe's round trip: it runs in the request that
// reports the event, which must not wait on the history.
const historyTimeout = time.Second

// NewRedisHistory returns a history over rdb whose entries last window.
func NewRedisHistory(rdb redis.UniversalClient, window time.Duration, log *slog.Logger) *RedisHistory {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RedisHistory{rdb: rdb, window: window, log: log}
}

// HistoryKey is the Redis key of e164's delivery history.
func HistoryKey(e164 string) string { return "vg:undelivered:{" + e164 + "}" }

// laterScript keeps the later of the stored time and ARGV[1], so that
// reports arriving out of order (two gateways, Twilio's retries) leave the
// last undelivered SMS, as MemoryHistory does.
var laterScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '')
if cur == nil or tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 0`)

// Observe implements verify.EventObserver: an undelivered (or failed) SMS
// is recorded against the number; a delivered one clears it. A Redis
// failure is logged: the history is a routing hint, not worth failing the
// report for.
func (h *RedisHistory) Observe(ctx context.Context, v *verify.Verification, ev verify.Event) {
	if v == nil || v.To == "" || smsChannel(v, ev) != verify.ChannelSMS {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	var err error
	switch ev.Type {
	case verify.EventUndelivered, verify.EventFailed:
		err = laterScript.Run(ctx, h.rdb, []string{HistoryKey(v.To)}, ev.At.UnixMilli(), h.window.Milliseconds()).Err()
	case verify.EventDelivered:
		err = h.rdb.Del(ctx, HistoryKey(v.To)).Err()
	default:
		return
	}
	if err != nil {
		h.log.Warn("routing history: record delivery outcome", "verification", v.ID, "event", ev.Type, "err", err)
	}
}

// LastUndelivered implements DeliveryHistory.
func (h *RedisHistory) LastUndelivered(ctx context.Context, e164 string) (time.Time, bool, error) {
	s, err := h.rdb.Get(ctx, HistoryKey(e164)).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("routing history get: %w", err)
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("routing history: stored value: %w", err)
	}
	return time.UnixMilli(ms), true, nil
}
