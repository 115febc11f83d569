// Package ratelimit holds Verigate's send limits: the policies, and the
// in-memory and Redis implementations of verify.Limiter, which pass the same
// contract tests (internal/limittest).
//
// The algorithm is a sliding-window log: each policy bucket keeps the times
// of the sends it allowed within its window. It is exact ("5 per 10
// minutes" never lets a sixth through, however the sends fall), Retry-After
// follows from the oldest send in the window instead of being guessed, and
// a bucket never holds more than Limit entries.
//
// That last point is what the log costs: a bucket is a sorted set of up to
// Limit members in Redis (127 bytes each, measured), and a consume runs
// four O(log n) commands on each bucket that applies. The aggregate caps
// among the defaults (tenant, prefix, country, global) have limits in the
// thousands, so they count per minute, not per hour: the same protection
// against a burst, sets of at most 20,000 members (2.5 MB for a full
// global bucket), and a Retry-After of seconds. Each costs 8 to 12 µs of
// Redis time per send, the size of its set hardly mattering (a 100 ms
// window cost the same). A sliding-window counter would cost about half
// and answer only approximately, up to twice its limit across a window
// edge. The caps keep the log, one exact algorithm in both implementations
// and on Cluster: at real verification rates (tens of starts a second) the
// cost does not show, and at benchmark rates the four caps lower the most
// start+check pairs one Redis serves by a fifth to two fifths, which a
// deployment that close to Redis's limit avoids by dropping the caps it
// does not need. docs/ROUTING.md ("Send caps") has the defaults and why,
// docs/BENCHMARKS.md the measurements.
//
// Per-person policies (number, user, ip) answer with the contract's limit
// messages ("You've reached our limit on text verification codes.");
// aggregate ones (tenant, prefix, country, global) count many people's
// sends together, so their denial is marked verify.LimitError.Aggregate
// and says instead that codes cannot be sent right now, "not because of
// anything you did". Both are 429 rate_limited with Retry-After.
package ratelimit

import (
	"fmt"
	"strings"
	"time"

	"github.com/verigate/verigate/verify"
)

// Scope says what a policy counts sends against.
type Scope string

// Scopes.
const (
	ScopeNumber  Scope = "number"  // the destination number (across tenants)
	ScopeUser    Scope = "user"    // the tenant's user_id
	ScopeTenant  Scope = "tenant"  // the tenant
	ScopeIP      Scope = "ip"      // the client_ip the IdP reported
	ScopeCountry Scope = "country" // the destination country
	ScopePrefix  Scope = "prefix"  // the destination's prefix: country code and Policy.PrefixDigits more digits
	ScopeGlobal  Scope = "global"  // every send of this gateway
)

// Aggregate reports whether the scope counts many people's sends together
// (tenant, prefix, country, global), so that reaching it is no one
// person's doing.
func (s Scope) Aggregate() bool {
	return s == ScopeTenant || s == ScopePrefix || s == ScopeCountry || s == ScopeGlobal
}

// Policy is one limit: at most Limit sends per Window for each value of
// Scope, counting only Channel when it is set.
type Policy struct {
	Name    string         `yaml:"name"`
	Scope   Scope          `yaml:"scope"`
	Channel verify.Channel `yaml:"channel"`
	Limit   int            `yaml:"limit"`
	Window  time.Duration  `yaml:"window"`
	// PrefixDigits is, for scope prefix, how many digits after the country
	// code the prefix keeps (verify.NumberPrefix); verify.DefaultPrefixDigits if 0.
	PrefixDigits int `yaml:"prefix_digits"`
}

// Default aggregate caps, per minute (see DefaultPolicies).
const (
	DefaultTenantPerMinute  = 6000
	DefaultPrefixPerMinute  = 2000
	DefaultCountryPerMinute = 10000
	DefaultGlobalPerMinute  = 20000
)

// DefaultPolicies are 5 SMS and 5 calls per number per 10 minutes, and
// per-minute caps on a tenant (6,000 sends), a destination prefix (2,000),
// a destination country (10,000) and the whole gateway (20,000), both
// channels together.
//
// The caps are sized so that a genuine deployment does not reach them by
// accident: a 50,000-person organisation whose whole staff signs in by SMS
// between 8:30 and 9:30 on a Monday sends about 3,000 codes in its busiest
// minute (5 % of the hour's sign-ins in one minute, three times the
// average, plus a fifth for resends), 900 of them to its busiest prefix
// (30 % of its numbers in one operator's block or area code). Each cap
// leaves at least twice that, and the country and global caps leave room
// for several such tenants on one gateway. What they stop is the rest: a
// stolen key or a bug sending at machine speed is held to a known cost per
// minute while the destination permissions and the SMS-pumping watch
// (route, pumping) deal with where it sends.
func DefaultPolicies() []Policy {
	return []Policy{
		{Name: "number_sms", Scope: ScopeNumber, Channel: verify.ChannelSMS, Limit: 5, Window: 10 * time.Minute},
		{Name: "number_call", Scope: ScopeNumber, Channel: verify.ChannelCall, Limit: 5, Window: 10 * time.Minute},
		{Name: "tenant", Scope: ScopeTenant, Limit: DefaultTenantPerMinute, Window: time.Minute},
		{Name: "prefix", Scope: ScopePrefix, Limit: DefaultPrefixPerMinute, Window: time.Minute, PrefixDigits: verify.DefaultPrefixDigits},
		{Name: "country", Scope: ScopeCountry, Limit: DefaultCountryPerMinute, Window: time.Minute},
		{Name: "global", Scope: ScopeGlobal, Limit: DefaultGlobalPerMinute, Window: time.Minute},
	}
}

// maxPrefixDigits bounds PrefixDigits: E.164 numbers have at most 15 digits.
const maxPrefixDigits = 12

// Validate reports the first thing wrong with p.
func (p Policy) Validate() error {
	switch p.Scope {
	case ScopeNumber, ScopeUser, ScopeTenant, ScopeIP, ScopeCountry, ScopePrefix, ScopeGlobal:
	default:
		return fmt.Errorf("policy %q: scope must be number, user, tenant, ip, country, prefix or global, not %q", p.Name, p.Scope)
	}
	if p.PrefixDigits != 0 && p.Scope != ScopePrefix {
		return fmt.Errorf("policy %q: prefix_digits is for scope prefix only", p.Name)
	}
	if p.PrefixDigits < 0 || p.PrefixDigits > maxPrefixDigits {
		return fmt.Errorf("policy %q: prefix_digits must be between 0 (default %d) and %d, not %d", p.Name, verify.DefaultPrefixDigits, maxPrefixDigits, p.PrefixDigits)
	}
	if p.Channel != "" && p.Channel != verify.ChannelSMS && p.Channel != verify.ChannelCall {
		return fmt.Errorf("policy %q: channel must be sms, call or empty, not %q", p.Name, p.Channel)
	}
	if p.Name == "" || strings.ContainsAny(p.Name, ":{} ") {
		return fmt.Errorf("policy name %q: must be non-empty without ':', '{', '}' or spaces", p.Name)
	}
	if p.Limit <= 0 || p.Window <= 0 {
		return fmt.Errorf("policy %q: limit and window must be positive", p.Name)
	}
	return nil
}

// Bucket returns the key under which p counts s, and false when p does not
// apply to s (another channel, or no user_id or client_ip given).
func (p Policy) Bucket(s verify.SendSubject) (string, bool) {
	if p.Channel != "" && p.Channel != s.Channel {
		return "", false
	}
	var v string
	switch p.Scope {
	case ScopeNumber:
		v = s.To
	case ScopeUser:
		if s.UserID == "" {
			return "", false
		}
		v = s.Tenant + ":" + s.UserID
	case ScopeTenant:
		v = s.Tenant
	case ScopeIP:
		v = s.ClientIP
	case ScopeCountry:
		v = s.Country
	case ScopePrefix:
		v = verify.NumberPrefix(s.To, p.PrefixDigits)
	case ScopeGlobal:
		v = "*"
	}
	if v == "" {
		return "", false
	}
	return p.Name + ":" + v, true
}

// denial builds the error for a send denied by policy (the one with the
// longest wait among those that denied): the channel's message, in the
// words of an aggregate cap when policy is one.
func denial(s verify.SendSubject, policy Policy, retry time.Duration) error {
	return &verify.LimitError{Channel: s.Channel, Policy: policy.Name, RetryAfter: retry, Aggregate: policy.Scope.Aggregate()}
}
