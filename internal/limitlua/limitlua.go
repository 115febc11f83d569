// Package limitlua holds the Lua of the send-limit consume: the one source
// that ratelimit's Redis limiter runs as a script of its own and that
// store's Redis start script runs first, so that a start consumes its send
// limits and stores itself in one script (one round trip, all or nothing).
//
// Both packages compose their scripts from this package's constants, and
// the limiter hands the store one send's consume as a Step (keys,
// arguments and how to read the reply): the store never learns the
// limiter's keys or policies, and the limiter never learns the store's
// script.
package limitlua

// Now sets the Lua local now, the script's clock in µs: ARGV[1], or
// Redis's TIME when that is empty. Consume's function body starts with it.
const Now = `
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
`

// consumeBody: ARGV[1] now µs or ”, ARGV[2] a member unique to this send,
// ARGV[3] flags: 'b' when KEYS[1] is the block key, 'd' to only look (a
// dry run: nothing is added); then for each bucket key, in order, its
// limit and window µs. Returns {0} when the send was added to every
// bucket, {-1, wait µs} when blocked, {i, wait µs} when the i-th bucket
// (1-based) denied with the longest wait.
const consumeBody = `
local first = 1
if string.find(ARGV[3], 'b', 1, true) then first = 2 end
-- The same consume run twice (go-redis sends a script again when a reply
-- is late, and Redis may run both) counts once: its member is already in.
if #KEYS >= first and not string.find(ARGV[3], 'd', 1, true) and redis.call('ZSCORE', KEYS[first], ARGV[2]) then
  return {0}
end
if first == 2 then
  local b = redis.call('GET', KEYS[1])
  if b and tonumber(b) > now then return {-1, tonumber(b) - now} end
end
local denied, wait = 0, 0
for i = first, #KEYS do
  local j = 2 + 2 * (i - first + 1)
  local lim, win = tonumber(ARGV[j]), tonumber(ARGV[j + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - win)
  local n = redis.call('ZCARD', KEYS[i])
  if n >= lim then
    local o = redis.call('ZRANGE', KEYS[i], n - lim, n - lim, 'WITHSCORES')
    local w = tonumber(o[2]) + win - now
    if denied == 0 or w > wait then denied, wait = i - first + 1, w end
  end
end
if denied > 0 then return {denied, wait} end
if string.find(ARGV[3], 'd', 1, true) then return {0} end
for i = first, #KEYS do
  local j = 2 + 2 * (i - first + 1)
  redis.call('ZADD', KEYS[i], now, ARGV[2])
  redis.call('PEXPIRE', KEYS[i], math.ceil(tonumber(ARGV[j + 1]) / 1000))
end
return {0}
`

// Consume is the whole consume script, for the limiter to run alone over
// its keys and arguments.
const Consume = Now + consumeBody

// ConsumeFunc defines the Lua function consume(KEYS, ARGV), Consume as a
// function over the keys and arguments it is given, for a script that
// consumes a send before its own work (store's start script calls it with
// a Step's Keys and Args).
const ConsumeFunc = "local function consume(KEYS, ARGV)\n" + Now + consumeBody + "end\n"

// Step is one send's consume prepared to run inside another script: Keys
// and Args are what consume(KEYS, ARGV) takes, and Verdict turns its
// reply ({0}, or a denial and its wait) into the limiter's error, nil when
// the send was consumed.
type Step struct {
	Keys    []string
	Args    []any
	Verdict func(reply []int64) error
}
