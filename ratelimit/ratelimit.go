// Package ratelimit holds Verigate's send limits: the policies, and the
// in-memory and Redis implementations of verify.Limiter, which pass the same
// contract tests (internal/limittest).
//
// The algorithm is a sliding-window log: each policy bucket keeps the times
// of the sends it allowed within its window. It is exact ("5 per 10
// minutes" never lets a sixth through, however the sends fall), Retry-After
// follows from the oldest send in the window instead of being guessed, and
// a bucket never holds more than Limit entries.
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
	ScopeGlobal  Scope = "global"  // every send of this gateway
)

// Policy is one limit: at most Limit sends per Window for each value of
// Scope, counting only Channel when it is set.
type Policy struct {
	Name    string         `yaml:"name"`
	Scope   Scope          `yaml:"scope"`
	Channel verify.Channel `yaml:"channel"`
	Limit   int            `yaml:"limit"`
	Window  time.Duration  `yaml:"window"`
}

// DefaultPolicies are 5 SMS and 5 calls per number per 10 minutes.
func DefaultPolicies() []Policy {
	return []Policy{
		{Name: "number_sms", Scope: ScopeNumber, Channel: verify.ChannelSMS, Limit: 5, Window: 10 * time.Minute},
		{Name: "number_call", Scope: ScopeNumber, Channel: verify.ChannelCall, Limit: 5, Window: 10 * time.Minute},
	}
}

// Validate reports the first thing wrong with p.
func (p Policy) Validate() error {
	switch p.Scope {
	case ScopeNumber, ScopeUser, ScopeTenant, ScopeIP, ScopeCountry, ScopeGlobal:
	default:
		return fmt.Errorf("policy %q: scope must be number, user, tenant, ip, country or global, not %q", p.Name, p.Scope)
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
	case ScopeGlobal:
		v = "*"
	}
	if v == "" {
		return "", false
	}
	return p.Name + ":" + v, true
}

// denial builds the error for a denied send: the channel's message, and
// the longest wait among the policies that denied.
func denial(s verify.SendSubject, policy string, retry time.Duration) error {
	return &verify.LimitError{Channel: s.Channel, Policy: policy, RetryAfter: retry}
}
