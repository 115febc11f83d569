package pumping

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store in Redis, shared by every gateway on the same server,
// Sentinel group or Cluster. A prefix's counts are a hash,
// vg:pump:{pump}:c:<prefix>, with a field per slot and kind (s<slot> for
// SMS sent, a<slot> for approvals) and a TTL of the window; the blocks are
// one hash, vg:pump:{pump}:b, prefix → end in Unix milliseconds. All keys
// share the hash tag {pump}, so that one script may touch them in Redis
// Cluster: a flush is one script whatever the number of prefixes, and
// the watch's traffic (one script per gateway every few seconds) is too
// little to need spreading.
//
// Time is the gateways' clocks (Batch.Now, and the slots they count in):
// slots are a minute or more, so clocks a few seconds apart do not matter.
type Redis struct {
	c      redis.UniversalClient
	prefix string
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Store on c whose keys start with keyPrefix ("vg:" if empty).
func NewRedis(c redis.UniversalClient, keyPrefix string) *Redis {
	if keyPrefix == "" {
		keyPrefix = "vg:"
	}
	return &Redis{c: c, prefix: keyPrefix + "pump:{pump}:"}
}

func (r *Redis) blocksKey() string         { return r.prefix + "b" }
func (r *Redis) countsKey(p string) string { return r.prefix + "c:" + p }

// luaAdd: KEYS[1] the blocks hash, KEYS[2..] a counts hash per prefix.
// ARGV[1] now (ms), ARGV[2] from, ARGV[3] to, ARGV[4] keep (ms), then per
// counts key its counts as "field n field n ...". Returns {sums, blocks}:
// sums holds sent and approved per counts key, in order; blocks holds
// prefix and end (ms) of every block in force. Fields of slots before from,
// and blocks that ended, are deleted on the way.
var luaAdd = redis.NewScript(`
local now, from, to, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local sums = {}
for i = 2, #KEYS do
  local k = KEYS[i]
  local wrote = false
  for f, n in string.gmatch(ARGV[3 + i], '(%S+) (%S+)') do
    redis.call('HINCRBY', k, f, n)
    wrote = true
  end
  if wrote then redis.call('PEXPIRE', k, keep) end
  local all = redis.call('HGETALL', k)
  local sent, approved, stale = 0, 0, {}
  for j = 1, #all, 2 do
    local slot = tonumber(string.sub(all[j], 2))
    if slot < from then
      stale[#stale + 1] = all[j]
    elseif slot <= to then
      if string.sub(all[j], 1, 1) == 's' then
        sent = sent + tonumber(all[j + 1])
      else
        approved = approved + tonumber(all[j + 1])
      end
    end
  end
  if #stale > 0 then redis.call('HDEL', k, unpack(stale)) end
  sums[#sums + 1] = sent
  sums[#sums + 1] = approved
end
local b = redis.call('HGETALL', KEYS[1])
local blocks, ended = {}, {}
for j = 1, #b, 2 do
  if tonumber(b[j + 1]) > now then
    blocks[#blocks + 1] = b[j]
    blocks[#blocks + 1] = b[j + 1]
  else
    ended[#ended + 1] = b[j]
  end
end
if #ended > 0 then redis.call('HDEL', KEYS[1], unpack(ended)) end
return {sums, blocks}
`)

// luaBlock: KEYS[1] the blocks hash, KEYS[2] the prefix's counts; ARGV[1]
// the prefix, ARGV[2] the block's end (ms), ARGV[3] now (ms). Returns 1
// when it blocked, 0 when a block was in force.
var luaBlock = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and tonumber(cur) > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
`)

// Add implements Store.
func (r *Redis) Add(ctx context.Context, b Batch) (map[string]Tally, map[string]time.Time, error) {
	var order []string
	fields := map[string]*strings.Builder{}
	for _, c := range b.Counts {
		sb := fields[c.Prefix]
		if sb == nil {
			sb = &strings.Builder{}
			fields[c.Prefix] = sb
			order = append(order, c.Prefix)
		}
		slot := strconv.FormatInt(c.Slot, 10)
		if c.Sent != 0 {
			fmt.Fprintf(sb, "s%s %d ", slot, c.Sent)
		}
		if c.Approved != 0 {
			fmt.Fprintf(sb, "a%s %d ", slot, c.Approved)
		}
	}
	for _, p := range b.Judge {
		if fields[p] == nil {
			fields[p] = &strings.Builder{}
			order = append(order, p)
		}
	}
	keys := make([]string, 0, 1+len(order))
	args := make([]any, 0, 4+len(order))
	keys = append(keys, r.blocksKey())
	args = append(args, b.Now.UnixMilli(), b.From, b.To, b.Keep.Milliseconds())
	for _, p := range order {
		keys = append(keys, r.countsKey(p))
		args = append(args, fields[p].String())
	}
	res, err := luaAdd.Run(ctx, r.c, keys, args...).Slice()
	if err != nil {
		return nil, nil, fmt.Errorf("pumping: add: %w", err)
	}
	if len(res) != 2 {
		return nil, nil, fmt.Errorf("pumping: add: unexpected reply %v", res)
	}
	rawSums, ok1 := res[0].([]any)
	rawBlocks, ok2 := res[1].([]any)
	if !ok1 || !ok2 || len(rawSums) != 2*len(order) || len(rawBlocks)%2 != 0 {
		return nil, nil, fmt.Errorf("pumping: add: unexpected reply %v", res)
	}
	sums := make(map[string]Tally, len(order))
	for i, p := range order {
		sent, _ := rawSums[2*i].(int64)
		approved, _ := rawSums[2*i+1].(int64)
		sums[p] = Tally{Sent: sent, Approved: approved}
	}
	blocks := make(map[string]time.Time, len(rawBlocks)/2)
	for i := 0; i < len(rawBlocks); i += 2 {
		p, _ := rawBlocks[i].(string)
		ms, err := strconv.ParseInt(fmt.Sprint(rawBlocks[i+1]), 10, 64)
		if p == "" || err != nil {
			return nil, nil, fmt.Errorf("pumping: add: unexpected block %v", rawBlocks[i:i+2])
		}
		blocks[p] = time.UnixMilli(ms)
	}
	return sums, blocks, nil
}

// Block implements Store.
func (r *Redis) Block(ctx context.Context, prefix string, until, now time.Time) (bool, error) {
	n, err := luaBlock.Run(ctx, r.c, []string{r.blocksKey(), r.countsKey(prefix)}, prefix, until.UnixMilli(), now.UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("pumping: block: %w", err)
	}
	return n == 1, nil
}
