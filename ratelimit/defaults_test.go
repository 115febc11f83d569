package ratelimit_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/limittest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/verify"
)

// TestDefaultAggregateCaps sends, under the default policies, from one
// tenant to many numbers and from many tenants into one prefix: each meets
// its cap at exactly the documented count, within the minute, with words
// that do not blame the person.
func TestDefaultAggregateCaps(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		limit  int
		send   func(i int) verify.SendSubject
	}{
		{"one tenant, many numbers", "tenant", ratelimit.DefaultTenantPerMinute, func(i int) verify.SendSubject {
			// Ten prefixes, so that the tenant's cap comes before any prefix's.
			return verify.SendSubject{Tenant: "acme", To: fmt.Sprintf("+49%03d%08d", 150+i%10, i), Country: "DE", Channel: verify.ChannelSMS}
		}},
		{"many tenants, one prefix", "prefix", ratelimit.DefaultPrefixPerMinute, func(i int) verify.SendSubject {
			return verify.SendSubject{Tenant: fmt.Sprintf("t%d", i), To: fmt.Sprintf("+26932%05d", i), Country: "KM", Channel: verify.ChannelSMS}
		}},
		{"many tenants, one country", "country", ratelimit.DefaultCountryPerMinute, func(i int) verify.SendSubject {
			return verify.SendSubject{Tenant: fmt.Sprintf("t%d", i%100), To: fmt.Sprintf("+33%03d%06d", 600+i%100, i), Country: "FR", Channel: verify.ChannelCall}
		}},
		{"everyone", "global", ratelimit.DefaultGlobalPerMinute, func(i int) verify.SendSubject {
			cc := []string{"DE", "FR", "GB"}[i%3]
			return verify.SendSubject{Tenant: fmt.Sprintf("t%d", i%100), To: fmt.Sprintf("+%d%03d%07d", 30+i%3, i%1000, i), Country: cc, Channel: verify.ChannelSMS}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := limittest.NewClock()
			l, err := ratelimit.NewMemory(ratelimit.DefaultPolicies(), clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.limit {
				clock.Set(time.Duration(i) * 50 * time.Second / time.Duration(tc.limit)) // all within 50 s
				if err := l.Consume(t.Context(), tc.send(i)); err != nil {
					t.Fatalf("send %d of %d: %v", i+1, tc.limit, err)
				}
			}
			err = l.Consume(t.Context(), tc.send(tc.limit))
			var le *verify.LimitError
			if !errors.As(err, &le) || le.Policy != tc.policy || !le.Aggregate {
				t.Fatalf("send %d: %v, want an aggregate denial by %s", tc.limit+1, err, tc.policy)
			}
			if le.RetryAfter <= 0 || le.RetryAfter > time.Minute {
				t.Errorf("Retry-After %v, want within the minute", le.RetryAfter)
			}
			if msg := le.Message(); strings.Contains(msg, "You've reached") || !strings.Contains(msg, "not because of anything you did") {
				t.Errorf("message %q blames the person", msg)
			}
		})
	}
}

func TestPolicyValidatePrefixDigits(t *testing.T) {
	tests := []struct {
		p    ratelimit.Policy
		want string // "" when valid
	}{
		{ratelimit.Policy{Name: "p", Scope: ratelimit.ScopePrefix, Limit: 1, Window: time.Minute}, ""},
		{ratelimit.Policy{Name: "p", Scope: ratelimit.ScopePrefix, Limit: 1, Window: time.Minute, PrefixDigits: 5}, ""},
		{ratelimit.Policy{Name: "p", Scope: ratelimit.ScopePrefix, Limit: 1, Window: time.Minute, PrefixDigits: 13}, "prefix_digits must be between"},
		{ratelimit.Policy{Name: "p", Scope: ratelimit.ScopePrefix, Limit: 1, Window: time.Minute, PrefixDigits: -1}, "prefix_digits must be between"},
		{ratelimit.Policy{Name: "p", Scope: ratelimit.ScopeTenant, Limit: 1, Window: time.Minute, PrefixDigits: 3}, "prefix_digits is for scope prefix only"},
		{ratelimit.Policy{Name: "p", Scope: "area", Limit: 1, Window: time.Minute}, "country, prefix or global"},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: Validate() = %v, want %q", tc.p, err, tc.want)
		}
	}
	for _, p := range ratelimit.DefaultPolicies() {
		if err := p.Validate(); err != nil {
			t.Errorf("default policy: %v", err)
		}
	}
}
