package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/flatjson"
	"github.com/verigate/verigate/internal/limitlua"
	"github.com/verigate/verigate/internal/rediskey"
	"github.com/verigate/verigate/verify"
)

// Redis is a verify.Store in Redis, shared by every gateway that uses the
// same server, Sentinel group or Cluster.
//
// Keys (with the default prefix "vg:"), where <tag> is "<tenant>:<e164>":
//
//	vg:{<tag>}:v:<id>  hash: one verification (fields below, events, event keys)
//	vg:{<tag>}:p       string: id of the number's pending verification
//	vg:{<tag>}:fc      sorted set: failed checks of the number (score: time in µs)
//	vg:id:<id>         string: <tag>, to find a verification by id
//	vg:exp             sorted set: ids of pending verifications (score: expiry in µs)
//	vg:exp:r:<token>   string: one sweep call's reply, 60 s (Cluster: {vg:exp}:r:<token>)
//
// The braces are a Cluster hash tag: every key of one tenant and number
// lives in one slot, so each state change is one Lua script over keys of
// one slot. Every key expires Retention after its verification does.
//
// vg:exp is the sweep's index (Expire): the start script adds a new
// verification to it and every script that ends one removes it, so it
// holds the pending verifications only, and the sweep finds the expired
// ones without scanning. In Cluster it lives in a slot of its own, which
// no script of a verification may touch: there Start adds to it in the
// pipeline that writes vg:id:<id> (no extra round trip), nothing removes
// an ended verification from it, and the sweep drops each entry when its
// time comes, finding it ended (so the index holds every verification
// started within one lifetime, not only the pending ones). Each start
// sets its TTL to its own verification's, so with no gateway sweeping it
// goes when its last verification's keys do.
//
// Check, Transition, AddEvent and a resend by Start PUBLISH the id of the
// verification they change on the channel "<prefix>changes" from inside
// their script (no extra round trip), for RedisChanges.
//
// Round trips: on a single server or Sentinel every method is one script
// (one round trip); a script that starts from an id follows vg:id:<id>
// itself. Cluster forbids a script to touch keys of two slots, so there a
// method that starts from an id first GETs vg:id:<id> (two round trips),
// and Start SETs it, and adds to vg:exp, in one pipeline before the script.
//
// A start is idempotent: go-redis sends a script again on a fresh
// connection when its reply is late (a stalled server), and Redis may then
// run both copies. The start script recognises its own second run (the
// new verification's key exists, or the pending one's "last" field names
// this start's id) and answers as the first did, and the limiter's consume
// recognises its send's member, so the send is counted once.
//
// Codes are compared inside Lua as strings. That is sound: the stored and
// the offered values are HMACs under the server key (verify.Hasher), so an
// attacker cannot choose offered values that share a prefix with a stored
// one, which is what a timing attack on string comparison needs; and Redis's
// Lua 5.1 interns every string, so equality is a pointer comparison whose
// time does not depend on the content.
type Redis struct {
	c         redis.UniversalClient
	prefix    string
	retention time.Duration
	cluster   bool
	limits    Limits        // nil: Start consumes nothing
	token     func() string // a sweep's token (sweepToken); tests fix it
}

// Limits is the limiter whose send limits the store's Start consumes
// (ratelimit.Redis, on the same Redis). On one server or Sentinel it hands
// the store one send's consume as a limitlua.Step, which the start script
// runs first through limitlua.ConsumeFunc: one round trip, and a denied
// start stores nothing. Where it cannot (Cluster: its keys live in other
// slots), Start calls Consume first.
type Limits interface {
	verify.Limiter
	// Step prepares s's consume for the start script; ok false when it
	// cannot run inside one script.
	Step(s verify.SendSubject) (step limitlua.Step, ok bool, err error)
}

// RedisOptions configures a Redis store.
type RedisOptions struct {
	// Prefix starts every key; "vg:" if empty. Tests give each store a
	// prefix of its own to share one Redis.
	Prefix string
	// Retention is how long a verification stays readable after it
	// expires (and how long all its keys live past that); Retention if 0.
	Retention time.Duration
	// Limits are the send limits Start consumes, in the start script
	// itself: one round trip for a start, and no start stored without its
	// send counted. (Redis does not roll a script back: one that fails
	// after counting, say out of memory, leaves the send counted and
	// nothing stored, which errs towards fewer sends.) In Cluster the
	// limiter's keys live in other slots, so Start consumes with
	// Limits.Consume first. Nil: Start consumes nothing, for tests of the
	// state alone; the gateway always sets it.
	Limits Limits
	// Cluster makes the store keep every script within one slot, as Redis
	// Cluster requires. It is set by itself when the client is a
	// *redis.ClusterClient; set it (IsCluster) for a client that wraps one,
	// such as AutoPipeline's; tests set it to run that path on one server.
	Cluster bool
}

var _ verify.Store = (*Redis)(nil)

// NewRedis returns a store on c.
func NewRedis(c redis.UniversalClient, opt RedisOptions) *Redis {
	if opt.Prefix == "" {
		opt.Prefix = "vg:"
	}
	if opt.Retention <= 0 {
		opt.Retention = Retention
	}
	if _, ok := c.(*redis.ClusterClient); ok {
		opt.Cluster = true
	}
	return &Redis{c: c, prefix: opt.Prefix, retention: opt.Retention, cluster: opt.Cluster, limits: opt.Limits}
}

func (r *Redis) tag(tenant, number string) string {
	return rediskey.Escape(tenant) + ":" + rediskey.Escape(number)
}

func (r *Redis) base(tag string) string { return r.prefix + "{" + tag + "}:" }
func (r *Redis) idKey(id string) string { return r.prefix + "id:" + id }

// expKey is the sweep's index of pending verifications by expiry.
func (r *Redis) expKey() string { return r.prefix + "exp" }

// expReplyKey is where a sweep script keeps its reply for token (luaOnce).
// In Cluster it must share the index's slot: the index's whole name is
// its hash tag then (a key without braces hashes whole), unless the
// prefix brings a tag of its own.
func (r *Redis) expReplyKey(token string) string {
	if r.cluster && !strings.Contains(r.expKey(), "{") {
		return "{" + r.expKey() + "}:r:" + token
	}
	return r.expKey() + ":r:" + token
}

// micros encodes a time as the microseconds since 1970 that the scripts
// compare (exact in Lua's doubles); the zero time is "".
func micros(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// asStored is t as reading it back gives it: fromMicros(micros(t)).
func asStored(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

func fromMicros(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if s == "" || err != nil {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

// wireEvent is an event as stored: compact, one JSON object per line of
// the hash field "ev". The scripts write their own events (created by the
// store: approved, check_failed, expired, ...) in the same form.
type wireEvent struct {
	Type        verify.EventType `json:"t"`
	At          int64            `json:"at,omitempty"` // µs since 1970
	Channel     verify.Channel   `json:"c,omitempty"`
	Provider    string           `json:"p,omitempty"`
	ProviderRef string           `json:"r,omitempty"`
	ErrorCode   string           `json:"e,omitempty"`
	Detail      string           `json:"d,omitempty"`
	Attempt     int64            `json:"a,omitempty"`
}

func encodeEvent(ev verify.Event) string {
	w := wireEvent{Type: ev.Type, Channel: ev.Channel, Provider: ev.Provider, ProviderRef: ev.ProviderRef, ErrorCode: ev.ErrorCode, Detail: ev.Detail,
		Attempt: int64(ev.Attempt)}
	if !ev.At.IsZero() {
		w.At = ev.At.UnixMicro()
	}
	b, _ := json.Marshal(w) // strings and numbers only: cannot fail
	return string(b)
}

func decodeEvents(s string) ([]verify.Event, error) {
	if s == "" {
		return nil, nil
	}
	evs := make([]verify.Event, 0, strings.Count(s, "\n")+1)
	for l := range strings.SplitSeq(s, "\n") {
		var w wireEvent
		if err := flatjson.Unmarshal(l, &w); err != nil {
			return nil, fmt.Errorf("decode event: %w", err)
		}
		ev := verify.Event{Type: w.Type, Channel: w.Channel, Provider: w.Provider, ProviderRef: w.ProviderRef, ErrorCode: w.ErrorCode, Detail: w.Detail,
			Attempt: int(w.Attempt)}
		if w.At != 0 {
			ev.At = time.UnixMicro(w.At).UTC()
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// wireFixed holds the fields of a verification that never change, in one
// hash field: the scripts never read them, and fewer fields make every
// HSET and HMGET cheaper.
type wireFixed struct {
	ID          string `json:"id"`
	To          string `json:"to"`
	Country     string `json:"country,omitempty"`
	UserID      string `json:"user_id,omitempty"`
	ClientIP    string `json:"client_ip,omitempty"`
	CallbackURL string `json:"callback_url,omitempty"`
	Created     int64  `json:"created"` // µs since 1970
	// CallbackFormat is set for relayed messages whose callbacks go out
	// in another wire format.
	CallbackFormat string `json:"callback_format,omitempty"`
}

// appendFields appends the values of a new verification's hash fields,
// in viewFields order; its route is already encoded.
func appendFields(args []any, v *verify.Verification, hash, route string, created verify.Event) ([]any, error) {
	evs := make([]string, 0, len(v.Events)+1)
	for _, ev := range v.Events {
		evs = append(evs, encodeEvent(ev))
	}
	evs = append(evs, encodeEvent(created))
	fixed, err := json.Marshal(wireFixed{ID: v.ID, To: v.To, Country: v.Country, UserID: v.UserID,
		ClientIP: v.ClientIP, CallbackURL: v.CallbackURL, Created: v.CreatedAt.UnixMicro(), CallbackFormat: v.CallbackFormat})
	if err != nil {
		return nil, fmt.Errorf("encode verification: %w", err)
	}
	return append(args, // in viewFields order
		string(fixed), v.Tenant, string(v.Channel), string(v.CallMode), v.Locale,
		string(verify.StatusPending), v.Reason, v.Attempts, v.MaxAttempts, v.Sends,
		hash, route, micros(v.UpdatedAt), micros(v.ExpiresAt), strings.Join(evs, "\n"), v.SealedCode, string(v.Kind),
	), nil
}

// viewFields are the hash fields a script returns for a verification, in
// this order (luaView's HMGET): values only, half the reply HGETALL would
// be, and without the event keys ("k:…") no reader needs.
var viewFields = [...]string{"fixed", "tenant", "channel", "call_mode", "locale", "status", "reason",
	"attempts", "max_attempts", "sends", "hashes", "route", "updated", "expires", "ev", "sealed", "kind"}

// luaView defines FN, viewFields as a Lua list, F, their positions by
// name, and view(k), which reads them from the hash k.
var luaView = func() string {
	var names, positions strings.Builder
	for i, f := range viewFields {
		fmt.Fprintf(&names, "'%s', ", f)
		fmt.Fprintf(&positions, "%s = %d, ", f, i+1)
	}
	return "local FN = {" + names.String() + "}\nlocal F = {" + positions.String() + "}\n" +
		"local function view(k) return redis.call('HMGET', k, unpack(FN)) end\n"
}()

// decode turns a script's view(k) reply into a Verification. A check
// decodes one on every request.
func decode(reply any) (*verify.Verification, error) {
	vals, ok := reply.([]any)
	if !ok || len(vals) != len(viewFields) {
		return nil, fmt.Errorf("redis store: unexpected reply %T", reply)
	}
	v := &verify.Verification{}
	var fixed wireFixed
	var fixedRaw, route, evs string
	for i, k := range viewFields {
		val, _ := vals[i].(string) // nil: a field never set
		switch k {
		case "fixed":
			fixedRaw = val
		case "tenant":
			v.Tenant = val
		case "channel":
			v.Channel = verify.Channel(val)
		case "call_mode":
			v.CallMode = verify.CallMode(val)
		case "locale":
			v.Locale = val
		case "status":
			v.Status = verify.Status(val)
		case "reason":
			v.Reason = val
		case "attempts":
			v.Attempts, _ = strconv.Atoi(val)
		case "max_attempts":
			v.MaxAttempts, _ = strconv.Atoi(val)
		case "sends":
			v.Sends, _ = strconv.Atoi(val)
		case "hashes":
			v.CodeHashes = strings.Fields(val)
		case "route":
			route = val
		case "updated":
			v.UpdatedAt = fromMicros(val)
		case "expires":
			v.ExpiresAt = fromMicros(val)
		case "ev":
			evs = val
		case "sealed":
			v.SealedCode = val
		case "kind":
			v.Kind = verify.Kind(val)
		}
	}
	if err := flatjson.Unmarshal(fixedRaw, &fixed); err != nil {
		return nil, fmt.Errorf("redis store: decode verification: %w", err)
	}
	v.ID, v.To, v.Country = fixed.ID, fixed.To, fixed.Country
	v.UserID, v.ClientIP, v.CallbackURL = fixed.UserID, fixed.ClientIP, fixed.CallbackURL
	v.CreatedAt = time.UnixMicro(fixed.Created).UTC()
	v.CallbackFormat = fixed.CallbackFormat
	if route != "" {
		if err := flatjson.Unmarshal(route, (*wireRoute)(&v.Route)); err != nil {
			return nil, fmt.Errorf("redis store: decode route: %w", err)
		}
	}
	events, err := decodeEvents(evs)
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	v.Events = events
	return v, nil
}

// luaCommon is shared by the scripts that find a verification by id or by
// number. ARGV[1] key prefix, ARGV[2] id (” to take the pending one of
// the number), ARGV[3] tag (” to read it from KEYS[1], the id key),
// ARGV[4] tenant (” for any).
var luaCommon = luaView + `
local P, id, tag, tenant = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if tag == '' then
  tag = redis.call('GET', KEYS[1])
  if not tag then return {'nf'} end
end
local base = P .. '{' .. tag .. '}:'
local pk = base .. 'p'
if id == '' then
  id = redis.call('GET', pk)
  if not id then return {'nf'} end
end
local vk = base .. 'v:' .. id
local function ev(t, at) return '{"t":"' .. t .. '","at":' .. at .. '}' end
local function app(evs, e)
  if evs and evs ~= '' then return evs .. '\n' .. e end
  return e
end
-- KEYS[2], the sweep's index, is given on one server only (Cluster keeps
-- it in another slot, and the sweep drops ended entries there itself).
local xk = KEYS[2]
local function unpoint()
  if redis.call('GET', pk) == id then redis.call('DEL', pk) end
  if xk then redis.call('ZREM', xk, id) end
end
-- Tells every gateway's RedisChanges (one channel, no key: allowed in a
-- Cluster script) that the verification changed.
local function changed() redis.call('PUBLISH', P .. 'changes', id) end
`

// luaStart: KEYS[1] the number's pointer, KEYS[2] the new verification,
// KEYS[3] and KEYS[4] (not in Cluster) the new id key and the sweep's
// index, then the limiter's keys. ARGV:
// now, ttl ms, hash, resent event, tag, new id, max hashes, the number of
// the limiter's keys and of its arguments (0 and 0 when the send is not
// consumed here), the new verification's field values in viewFields
// order, then the limiter's arguments. With the limiter's keys the script
// first consumes the send (limitlua's consume, given the limiter's Step)
// and stores nothing when that denies.
var luaStart = redis.NewScript(limitlua.ConsumeFunc + luaView + `
local pk, nk = KEYS[1], KEYS[2]
local now, ttl, hash, resent, tag, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local maxh, nlk, nla = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local function new(f) return ARGV[9 + F[f]] end
-- Tells RedisChanges that the pending verification changed (resent, or
-- found expired); the channel is "<prefix>changes", and pk is
-- "<prefix>{<tag>}:p".
local function changed(cid) redis.call('PUBLISH', string.sub(pk, 1, #pk - #tag - 4) .. 'changes', cid) end
-- The same start run twice (go-redis sends a script again on another
-- connection when a reply is late, and Redis then runs both) must count
-- once: the new id's hash exists only if this start made it, and a resend
-- marks the verification with the id of the start that resent it.
if redis.call('EXISTS', nk) == 1 then return {'new'} end
-- A relayed message is always new and never the number's pending
-- verification: the number's pointer is neither read nor set for it.
local msg = new('kind') == 'message'
local cur = nil
if not msg then cur = redis.call('GET', pk) end
local ok
if cur then
  ok = string.sub(pk, 1, -2) .. 'v:' .. cur -- pk is <base>p
  if redis.call('HGET', ok, 'last') == id then return {'resent', view(ok)} end
end
if nlk > 0 then
  local lk, la = {}, {}
  for i = #KEYS - nlk + 1, #KEYS do lk[#lk + 1] = KEYS[i] end
  for i = #ARGV - nla + 1, #ARGV do la[#la + 1] = ARGV[i] end
  local d = consume(lk, la)
  if d[1] ~= 0 then return {'limit', d[1], d[2]} end
end
if cur then
  -- One read of every field: a resend answers it with its own changes.
  local s = view(ok)
  if s[F.status] == 'pending' then
    if tonumber(now) < tonumber(s[F.expires]) then
      if not s[F.sealed] or s[F.sealed] == '' then
        -- Stored by an earlier version, which sent a fresh code on every
        -- resend: this code joins them, as it did then. (Its sealed code
        -- is not adopted: it is sealed for the new start's id.)
        local hs = {}
        for h in string.gmatch(s[F.hashes], '%S+') do hs[#hs + 1] = h end
        hs[#hs + 1] = hash
        while #hs > maxh do table.remove(hs, 1) end
        s[F.hashes] = table.concat(hs, ' ')
        redis.call('HSET', ok, 'hashes', s[F.hashes])
      end
      s[F.updated], s[F.ev] = now, s[F.ev] .. '\n' .. resent
      s[F.channel], s[F.call_mode], s[F.locale], s[F.route] = new('channel'), new('call_mode'), new('locale'), new('route')
      redis.call('HSET', ok, 'channel', s[F.channel], 'call_mode', s[F.call_mode],
        'locale', s[F.locale], 'route', s[F.route], 'updated', now, 'ev', s[F.ev], 'last', id)
      s[F.sends] = tostring(redis.call('HINCRBY', ok, 'sends', 1))
      changed(cur)
      return {'resent', s}
    end
    redis.call('HSET', ok, 'status', 'expired', 'updated', now,
      'ev', s[F.ev] .. '\n' .. '{"t":"expired","at":' .. s[F.expires] .. '}')
    if #KEYS - nlk >= 4 then redis.call('ZREM', KEYS[4], cur) end
    changed(cur)
  end
end
local hv = {}
for i, f in ipairs(FN) do hv[2 * i - 1], hv[2 * i] = f, ARGV[9 + i] end
redis.call('HSET', nk, unpack(hv))
redis.call('PEXPIRE', nk, ttl)
if not msg then redis.call('SET', pk, id, 'PX', ttl) end
if #KEYS - nlk >= 3 then redis.call('SET', KEYS[3], tag, 'PX', ttl) end
if #KEYS - nlk >= 4 and not msg and new('expires') ~= '' then
  redis.call('ZADD', KEYS[4], new('expires'), id)
  redis.call('PEXPIRE', KEYS[4], ttl)
end
return {'new'}
`)

// luaGet: luaCommon's keys and arguments.
var luaGet = redis.NewScript(luaCommon + `
local v = view(vk)
if not v[F.tenant] or (tenant ~= '' and v[F.tenant] ~= tenant) then return {'nf'} end
return {'ok', v}
`)

// luaCheck: luaCommon's, then ARGV[5] hash, ARGV[6] now µs, ARGV[7] lock
// max, ARGV[8] lock window µs, ARGV[9] long lock max, ARGV[10] long lock
// window µs (a max of 0: that window is off). The lock rule is
// verify.CheckLock.Wait's.
var luaCheck = redis.NewScript(luaCommon + `
local hash, now = ARGV[5], ARGV[6]
local tiers = {{tonumber(ARGV[7]), tonumber(ARGV[8])}, {tonumber(ARGV[9]), tonumber(ARGV[10])}}
-- One read of every field: the answer is v with this check's changes.
local v = view(vk)
if not v[F.tenant] or (tenant ~= '' and v[F.tenant] ~= tenant) then return {'nf'} end
if v[F.kind] == 'message' then return {'nf'} end -- no code of Verigate's to check
local fk = base .. 'fc'
local keep, least = 0, nil
for _, w in ipairs(tiers) do
  if w[1] > 0 then
    keep = math.max(keep, w[2])
    if not least or w[1] < least then least = w[1] end
  end
end
if keep > 0 then
  -- Failures past the longest window only need trimming when they could lock.
  local n = redis.call('ZCARD', fk)
  if n >= least then
    redis.call('ZREMRANGEBYSCORE', fk, '-inf', tonumber(now) - keep)
    n = redis.call('ZCARD', fk)
  end
  local wait = 0
  for _, w in ipairs(tiers) do
    if w[1] > 0 and n >= w[1] then
      local o = redis.call('ZRANGE', fk, n - w[1], n - w[1], 'WITHSCORES')
      wait = math.max(wait, tonumber(o[2]) + w[2] - tonumber(now))
    end
  end
  if wait > 0 then return {'lock', wait} end
end
if v[F.status] ~= 'pending' then return {'np', v[F.status]} end
if tonumber(now) >= tonumber(v[F.expires]) then
  v[F.status], v[F.updated], v[F.ev] = 'expired', now, app(v[F.ev], ev('expired', v[F.expires]))
  redis.call('HSET', vk, 'status', v[F.status], 'updated', now, 'ev', v[F.ev])
  unpoint()
  changed()
  return {'ok', v}
end
local att = tonumber(v[F.attempts]) + 1
-- Every stored hash is compared, with no early exit (see the type's doc).
local match = false
for h in string.gmatch(v[F.hashes], '%S+') do
  if h == hash then match = true end
end
local status, evs = 'pending', v[F.ev]
if match then
  status = 'approved'
  evs = app(evs, ev('approved', now))
  unpoint()
else
  evs = app(evs, ev('check_failed', now))
  if keep > 0 then
    redis.call('ZADD', fk, now, id .. ':' .. att)
    redis.call('PEXPIRE', fk, math.ceil(keep / 1000))
  end
  if att >= tonumber(v[F.max_attempts]) then
    status = 'max_attempts_reached'
    evs = app(evs, ev('max_attempts_reached', now))
    unpoint()
  end
end
v[F.attempts], v[F.updated], v[F.status], v[F.ev] = tostring(att), now, status, evs
redis.call('HSET', vk, 'attempts', v[F.attempts], 'updated', now, 'status', status, 'ev', evs)
changed()
return {'ok', v}
`)

// luaTransition: luaCommon's, then ARGV[5] status, ARGV[6] reason,
// ARGV[7] the event's time µs, ARGV[8] event, ARGV[9] event key, ARGV[10]
// the event's attempt (0 for none).
var luaTransition = redis.NewScript(luaCommon + `
local at = ARGV[7]
-- One read of every field: the answer is v with this transition's changes.
local v = view(vk)
if not v[F.tenant] or (tenant ~= '' and v[F.tenant] ~= tenant) then return {'nf'} end
-- A client's cancel or approval (by tenant) does not apply to a relayed
-- message; its provider's reports (any tenant) end it.
if tenant ~= '' and v[F.kind] == 'message' then return {'nf'} end
local evs = v[F.ev]
if v[F.status] == 'pending' and at ~= '' and tonumber(at) >= tonumber(v[F.expires]) then
  redis.call('HSET', vk, 'status', 'expired', 'updated', at, 'ev', app(evs, ev('expired', v[F.expires])))
  unpoint()
  changed()
  return {'np', 'expired'}
end
if v[F.status] ~= 'pending' then return {'np', v[F.status]} end
-- The end of an attempt that a later send replaced fails nothing.
local att = tonumber(ARGV[10])
if ARGV[5] == 'failed' and att > 0 and att < tonumber(v[F.sends]) then return {'sup'} end
if ARGV[9] == '' or redis.call('HSETNX', vk, 'k:' .. ARGV[9], '1') == 1 then
  evs = app(evs, ARGV[8])
end
v[F.status], v[F.reason], v[F.updated], v[F.ev] = ARGV[5], ARGV[6], at, evs
redis.call('HSET', vk, 'status', ARGV[5], 'reason', ARGV[6], 'updated', at, 'ev', evs)
unpoint()
changed()
return {'ok', v}
`)

// luaAddEvent: luaCommon's, then ARGV[5] event, ARGV[6] event key.
var luaAddEvent = redis.NewScript(luaCommon + `
if redis.call('EXISTS', vk) == 0 then return {'nf'} end
if ARGV[6] ~= '' and redis.call('HSETNX', vk, 'k:' .. ARGV[6], '1') == 0 then return {'dup'} end
redis.call('HSET', vk, 'ev', app(redis.call('HGET', vk, 'ev'), ARGV[5]))
changed()
return {'ok'}
`)

// Start implements verify.Store: on one server or Sentinel the start
// script consumes the send's limits first and stores nothing when they
// deny (one round trip); in Cluster, Limits.Consume runs first.
func (r *Redis) Start(ctx context.Context, s verify.SendSubject, v *verify.Verification, hash string, now time.Time) (*verify.Verification, bool, error) {
	if r.limits == nil {
		return r.startWith(ctx, nil, v, hash, now)
	}
	if !r.cluster {
		step, ok, err := r.limits.Step(s)
		if err != nil {
			return nil, false, fmt.Errorf("redis store: start: %w", err)
		}
		if ok {
			return r.startWith(ctx, &step, v, hash, now)
		}
	}
	if err := r.limits.Consume(ctx, s); err != nil {
		return nil, false, err
	}
	return r.startWith(ctx, nil, v, hash, now)
}

// startWith runs the start script, consuming the send's limits first when
// in is not nil.
func (r *Redis) startWith(ctx context.Context, in *limitlua.Step, v *verify.Verification, hash string, now time.Time) (*verify.Verification, bool, error) {
	if in == nil {
		in = &limitlua.Step{}
	}
	tag := r.tag(v.Tenant, v.To)
	base := r.base(tag)
	created := verify.Event{Type: verify.EventCreated, At: now, Channel: v.Channel, Provider: v.Route.Provider}
	resent := verify.Event{Type: verify.EventResent, At: now, Channel: v.Channel, Provider: v.Route.Provider}
	route, err := json.Marshal(v.Route)
	if err != nil {
		return nil, false, fmt.Errorf("redis store: encode route: %w", err)
	}
	ttl := max(v.ExpiresAt.Sub(now), 0) + r.retention
	keys := []string{base + "p", base + "v:" + v.ID}
	if r.cluster {
		// The id key and the sweep's index live in other slots: write
		// them first, so a stored verification is always findable by id
		// and by the sweep; a resend leaves them naming a verification
		// that never existed, which reads as not found, expires, and is
		// dropped by the sweep.
		_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, r.idKey(v.ID), tag, ttl)
			if v.Kind != verify.KindMessage && !v.ExpiresAt.IsZero() {
				p.ZAdd(ctx, r.expKey(), redis.Z{Score: float64(v.ExpiresAt.UnixMicro()), Member: v.ID})
				p.PExpire(ctx, r.expKey(), ttl)
			}
			return nil
		})
		if err != nil {
			return nil, false, fmt.Errorf("redis store: start: %w", err)
		}
	} else {
		keys = append(keys, r.idKey(v.ID), r.expKey())
	}
	keys = append(keys, in.Keys...)
	args := make([]any, 0, 9+len(viewFields)+len(in.Args))
	args = append(args, micros(now), ttl.Milliseconds(), hash, encodeEvent(resent), tag, v.ID, MaxCodeHashes,
		len(in.Keys), len(in.Args))
	args, err = appendFields(args, v, hash, string(route), created)
	if err != nil {
		return nil, false, fmt.Errorf("redis store: %w", err)
	}
	args = append(args, in.Args...)
	res, err := luaStart.Run(ctx, r.c, keys, args...).Slice()
	if err != nil {
		return nil, false, fmt.Errorf("redis store: start: %w", err)
	}
	if len(res) == 3 && res[0] == "limit" && in.Verdict != nil {
		i, iok := res[1].(int64)
		wait, wok := res[2].(int64)
		if !iok || !wok {
			return nil, false, fmt.Errorf("redis store: start: unexpected reply %v", res)
		}
		if err := in.Verdict([]int64{i, wait}); err != nil {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("redis store: start: a denial the limiter does not read: %v", res)
	}
	if len(res) == 1 && res[0] == "new" {
		// Stored as given: no need to ship it back.
		return startedAs(v, hash, created), false, nil
	}
	if len(res) != 2 {
		return nil, false, fmt.Errorf("redis store: start: unexpected reply %v", res)
	}
	stored, err := decode(res[1])
	if err != nil {
		return nil, false, err
	}
	return stored, res[0] == "resent", nil
}

// startedAs is v as luaStart stores it new, in the precision it is kept in.
func startedAs(v *verify.Verification, hash string, created verify.Event) *verify.Verification {
	c := *v
	c.Status = verify.StatusPending
	c.CodeHashes = strings.Fields(hash) // as decode reads it: none for a message
	c.Route.Reasons = slices.Clone(v.Route.Reasons)
	c.Events = append(slices.Clone(v.Events), created)
	for i := range c.Events {
		c.Events[i].At = asStored(c.Events[i].At)
		c.Events[i].Key = ""
	}
	c.CreatedAt, c.UpdatedAt, c.ExpiresAt = asStored(v.CreatedAt), asStored(v.UpdatedAt), asStored(v.ExpiresAt)
	return &c
}

// byID returns the keys and leading arguments of luaCommon for id: on one
// server the script follows the id key itself; in Cluster it is read first.
func (r *Redis) byID(ctx context.Context, tenant, id string) ([]string, []any, error) {
	if !r.cluster {
		return []string{r.idKey(id)}, []any{r.prefix, id, "", tenant}, nil
	}
	tag, err := r.c.Get(ctx, r.idKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil, verify.ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("redis store: %w", err)
	}
	return []string{r.base(tag) + "v:" + id}, []any{r.prefix, id, tag, tenant}, nil
}

// withIndex adds the sweep's index to the keys of a script that may end a
// verification (luaCommon's KEYS[2]), on one server only.
func (r *Redis) withIndex(keys []string) []string {
	if r.cluster {
		return keys
	}
	return append(keys, r.expKey())
}

// reply interprets the answers the scripts share.
func reply(res []any) (*verify.Verification, error) {
	if len(res) == 0 {
		return nil, errors.New("redis store: empty reply")
	}
	switch res[0] {
	case "nf":
		return nil, verify.ErrNotFound
	case "np":
		s, _ := res[1].(string)
		return nil, &verify.NotPendingError{Status: verify.Status(s)}
	case "sup":
		return nil, verify.ErrSuperseded
	case "lock":
		us, _ := res[1].(int64)
		return nil, &verify.LimitError{Policy: "failed_checks", RetryAfter: time.Duration(us) * time.Microsecond}
	case "ok":
		if len(res) < 2 {
			return nil, nil
		}
		return decode(res[1])
	}
	return nil, fmt.Errorf("redis store: unexpected reply %v", res)
}

// Get implements verify.Store.
func (r *Redis) Get(ctx context.Context, tenant, id string) (*verify.Verification, error) {
	keys, args, err := r.byID(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	res, err := luaGet.Run(ctx, r.c, keys, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("redis store: get: %w", err)
	}
	return reply(res)
}

// Check implements verify.Store.
func (r *Redis) Check(ctx context.Context, q verify.CheckQuery) (*verify.Verification, error) {
	var keys []string
	var args []any
	if q.ID != "" {
		var err error
		if keys, args, err = r.byID(ctx, q.Tenant, q.ID); err != nil {
			return nil, err
		}
	} else {
		tag := r.tag(q.Tenant, q.To)
		keys = []string{r.base(tag) + "p"}
		args = []any{r.prefix, "", tag, q.Tenant}
	}
	keys = r.withIndex(keys)
	on := func(max int, window time.Duration) int {
		if window <= 0 {
			return 0
		}
		return max
	}
	l := q.Lock
	args = append(args, q.Hash, micros(q.Now), on(l.Max, l.Window), l.Window.Microseconds(),
		on(l.LongMax, l.LongWindow), l.LongWindow.Microseconds())
	res, err := luaCheck.Run(ctx, r.c, keys, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("redis store: check: %w", err)
	}
	return reply(res)
}

// Transition implements verify.Store.
func (r *Redis) Transition(ctx context.Context, tenant, id string, status verify.Status, reason string, ev verify.Event) (*verify.Verification, error) {
	keys, args, err := r.byID(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	keys = r.withIndex(keys)
	args = append(args, string(status), reason, micros(ev.At), encodeEvent(ev), ev.Key, ev.Attempt)
	res, err := luaTransition.Run(ctx, r.c, keys, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("redis store: transition: %w", err)
	}
	return reply(res)
}

// AddEvent implements verify.Store.
func (r *Redis) AddEvent(ctx context.Context, id string, ev verify.Event) (bool, error) {
	keys, args, err := r.byID(ctx, "", id)
	if err != nil {
		return false, err
	}
	args = append(args, encodeEvent(ev), ev.Key)
	res, err := luaAddEvent.Run(ctx, r.c, keys, args...).Slice()
	if err != nil {
		return false, fmt.Errorf("redis store: add event: %w", err)
	}
	if len(res) > 0 && res[0] == "dup" {
		return false, nil
	}
	_, err = reply(res)
	return err == nil, err
}

// luaExpireFn defines expire(P, tag, id, now, tok): it marks the
// verification expired as a check past its lifetime does, if it is still
// pending and past its lifetime at now, and returns its view, else nil.
// A tok not empty is kept in the hash (field "sw"), and a verification
// already expired under the same tok is returned again: that is this
// call's own earlier run, re-sent by go-redis after its reply was lost,
// whose expiry would otherwise reach no callback.
var luaExpireFn = luaView + `
local function expire(P, tag, id, now, tok)
  local base = P .. '{' .. tag .. '}:'
  local vk = base .. 'v:' .. id
  local v = view(vk)
  if tok ~= '' and v[F.status] == 'expired' and redis.call('HGET', vk, 'sw') == tok then return v end
  if v[F.status] ~= 'pending' or v[F.kind] == 'message' or not v[F.expires]
    or tonumber(now) < tonumber(v[F.expires]) then return nil end
  local e = '{"t":"expired","at":' .. v[F.expires] .. '}'
  if v[F.ev] and v[F.ev] ~= '' then e = v[F.ev] .. '\n' .. e end
  v[F.status], v[F.updated], v[F.ev] = 'expired', now, e
  redis.call('HSET', vk, 'status', 'expired', 'updated', now, 'ev', e)
  if tok ~= '' then redis.call('HSET', vk, 'sw', tok) end
  if redis.call('GET', base .. 'p') == id then redis.call('DEL', base .. 'p') end
  redis.call('PUBLISH', P .. 'changes', id)
  return v
end
`

// luaOnce wraps a sweep script's body (luaClaim's) so that it runs once
// per token: KEYS[2] is the reply's cache key (expReplyKey); a run that
// finds it returns the reply cached there, else it runs the body, keeps
// what it returns for a minute and returns it. go-redis sends a script
// again when its reply is lost (max_retries, the auto-pipeliner replaying
// unanswered commands), and Redis may run both copies, in either order:
// without this, the ids the first run took off the index would reach the
// sweeper only if its reply did.
func luaOnce(body string) string {
	return `
local cached = redis.call('GET', KEYS[2])
if cached then return cmsgpack.unpack(cached) end
local out = (function()
` + body + `
end)()
redis.call('SET', KEYS[2], cmsgpack.pack(out), 'PX', 60000)
return out
`
}

// luaExpire (one server): KEYS[1] the sweep's index, KEYS[2] the reply's
// cache key (expReplyKey); ARGV[1] key prefix, ARGV[2] now µs, ARGV[3] the
// most to take. It takes the due ids off the index and expires those still
// pending, all in one script, so no two sweeps take one id; it follows
// each id key itself, as luaCommon does. Reply: how many ids were due
// (taken), then the views of those expired. It runs once per token, as
// luaOnce does, but keeps only the count and the tags and ids it expired
// (about 60 bytes each, not a view's 490: a backlog swept at full speed
// keeps a minute of them), and a re-sent run reads their views again.
var luaExpire = redis.NewScript(luaExpireFn + `
local xk, P, now = KEYS[1], ARGV[1], ARGV[2]
local cached = redis.call('GET', KEYS[2])
if cached then
  local c = cmsgpack.unpack(cached)
  local out = {c[1]}
  for i = 2, #c, 2 do out[#out + 1] = view(P .. '{' .. c[i] .. '}:v:' .. c[i + 1]) end
  return out
end
local due = redis.call('ZRANGEBYSCORE', xk, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out, done = {#due}, {#due}
for _, id in ipairs(due) do
  redis.call('ZREM', xk, id)
  local tag = redis.call('GET', P .. 'id:' .. id)
  if tag then
    local v = expire(P, tag, id, now, '')
    if v then
      out[#out + 1] = v
      done[#done + 1], done[#done + 2] = tag, id
    end
  end
end
redis.call('SET', KEYS[2], cmsgpack.pack(done), 'PX', 60000)
return out
`)

// luaClaim (Cluster): KEYS[1] the sweep's index, KEYS[2] the reply's
// cache key (in the index's slot); ARGV[1] now µs, ARGV[2] the end of the
// lease µs, ARGV[3] the most to take. It leases the due ids to this sweep
// by moving their score to the lease's end: no other sweep takes them
// meanwhile, and if this one dies before it removes them, another takes
// them when the lease ends. A re-sent run returns the same ids (luaOnce).
var luaClaim = redis.NewScript(luaOnce(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
return due
`))

// luaExpireOne (Cluster): KEYS[1] the verification; ARGV[1] key prefix,
// ARGV[2] its tag, ARGV[3] its id, ARGV[4] now µs, ARGV[5] the sweep's
// token. Reply: its view when it expired it (or, a re-sent run, when
// this sweep's earlier run did), else nothing.
var luaExpireOne = redis.NewScript(luaExpireFn + `
local v = expire(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
if v then return {v} end
return {}
`)

// claimLease is how long a Cluster sweep holds the ids it claimed before
// another sweep may take them again (when this one died on the way).
const claimLease = 30 * time.Second

var _ verify.Expirer = (*Redis)(nil)

// Expire implements verify.Expirer. On one server or Sentinel it is one
// script (luaExpire). In Cluster the index lives in its own slot: a
// script leases the due ids (luaClaim), each is expired by a script in its
// own slot (the batch's id keys read in one pipeline, its scripts run in
// another: four round trips a batch), and the ids done leave the index;
// an id whose verification has ended meanwhile (Cluster's index keeps
// them) is dropped. The expire script marks only a verification still
// pending, so a sweep whose lease ran out while it worked and the sweep
// that took the id over cannot both mark it. Each call has a random token
// its scripts are given, so that a script go-redis sends twice (a lost
// reply) answers both times as its first run did.
func (r *Redis) Expire(ctx context.Context, now time.Time, limit int) ([]*verify.Verification, bool, error) {
	if limit <= 0 {
		return nil, false, nil
	}
	token := r.sweepToken()
	if !r.cluster {
		res, err := luaExpire.Run(ctx, r.c, []string{r.expKey(), r.expReplyKey(token)}, r.prefix, micros(now), limit).Slice()
		if err != nil {
			return nil, false, fmt.Errorf("redis store: expire: %w", err)
		}
		due, ok := res[0].(int64)
		if !ok {
			return nil, false, fmt.Errorf("redis store: expire: unexpected reply %v", res)
		}
		out := make([]*verify.Verification, 0, len(res)-1)
		for _, view := range res[1:] {
			v, err := decode(view)
			if err != nil {
				return out, true, err
			}
			out = append(out, v)
		}
		return out, due == int64(limit), nil
	}
	ids, err := luaClaim.Run(ctx, r.c, []string{r.expKey(), r.expReplyKey(token)}, micros(now), micros(now.Add(claimLease)), limit).StringSlice()
	if err != nil {
		return nil, false, fmt.Errorf("redis store: expire: claim: %w", err)
	}
	out, done, err := r.expireClaimed(ctx, ids, now, token)
	if len(done) > 0 {
		if zerr := r.c.ZRem(ctx, r.expKey(), done...).Err(); zerr != nil {
			err = errors.Join(err, zerr)
		}
	}
	if err != nil {
		return out, true, fmt.Errorf("redis store: expire: %w", err)
	}
	return out, len(ids) == limit, nil
}

// expireClaimed expires, in Cluster, the claimed ids still pending and
// due: their id keys are read in one pipeline, then the expire scripts run
// in another (go-redis sends each node its share), so a batch costs a few
// round trips, not two per id. It returns the views expired and the ids
// done (to drop from the index: expired, ended, or never stored, a
// resend's id); an id that failed stays leased, taken again when the
// lease ends.
func (r *Redis) expireClaimed(ctx context.Context, ids []string, now time.Time, token string) ([]*verify.Verification, []any, error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	gets := make([]*redis.StringCmd, len(ids))
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			gets[i] = p.Get(ctx, r.idKey(id))
		}
		return nil
	}) // each command's own error is read below
	var errs []error
	done := make([]any, 0, len(ids))
	runs := make([]*redis.Cmd, len(ids))
	args := func(i int) ([]string, []any) {
		tag := gets[i].Val()
		return []string{r.base(tag) + "v:" + ids[i]}, []any{r.prefix, tag, ids[i], micros(now), token}
	}
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range ids {
			if gets[i].Err() == nil {
				keys, a := args(i)
				runs[i] = luaExpireOne.EvalSha(ctx, p, keys, a...)
			}
		}
		return nil
	})
	var out []*verify.Verification
	for i, id := range ids {
		switch err := gets[i].Err(); {
		case errors.Is(err, redis.Nil):
			done = append(done, id)
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		}
		res, err := runs[i].Slice()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			keys, a := args(i)
			res, err = luaExpireOne.Run(ctx, r.c, keys, a...).Slice()
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, id)
		if len(res) == 0 {
			continue
		}
		v, err := decode(res[0])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, v)
	}
	return out, done, errors.Join(errs...)
}

// sweepToken names one Expire call, for its scripts to recognise their
// own re-sent runs (luaOnce, luaExpireFn).
func (r *Redis) sweepToken() string {
	if r.token != nil {
		return r.token()
	}
	return rand.Text()
}
