// Package limittest is the contract test suite of verify.Limiter with
// ratelimit policies, run the same way against each implementation
// (ratelimit.Memory, ratelimit.Redis) on an injected fake clock.
package limittest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/verify"
)

// NewLimiter returns a limiter with no history enforcing policies on the
// clock now. Implementations sharing a server give each call its own keys.
type NewLimiter func(t *testing.T, policies []ratelimit.Policy, now func() time.Time) verify.Limiter

// T0 is where every fake clock starts.
var T0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Clock is a fake clock that moves only when told.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at T0.
func NewClock() *Clock { return &Clock{t: T0} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Set moves the clock to T0 + d.
func (c *Clock) Set(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = T0.Add(d) }

func unique(t testing.TB, prefix string) string {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(1e8))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s%08d", prefix, n)
}

// subject returns a send to a fresh number, fresh tenant, user and IP.
func subject(t testing.TB, ch verify.Channel) verify.SendSubject {
	return verify.SendSubject{
		Tenant: unique(t, "tenant-"), To: unique(t, "+49151"), Country: "DE", Channel: ch,
		UserID: unique(t, "user-"), ClientIP: "198.51.100.7",
	}
}

type fixture struct {
	t     *testing.T
	ctx   context.Context
	clock *Clock
	l     verify.Limiter
}

func (f fixture) at(d time.Duration) fixture { f.clock.Set(d); return f }

// allow fails unless s is allowed.
func (f fixture) allow(what string, s verify.SendSubject) {
	f.t.Helper()
	if err := f.l.Consume(f.ctx, s); err != nil {
		f.t.Fatalf("%s at +%v: %v, want allowed", what, f.clock.Now().Sub(T0), err)
	}
}

// deny fails unless s is denied by policy with retry; it returns the error.
func (f fixture) deny(what string, s verify.SendSubject, policy string, retry time.Duration) *verify.LimitError {
	f.t.Helper()
	err := f.l.Consume(f.ctx, s)
	var le *verify.LimitError
	if !errors.As(err, &le) || !errors.Is(err, verify.ErrRateLimited) {
		f.t.Fatalf("%s at +%v: err = %v, want *LimitError of %s", what, f.clock.Now().Sub(T0), err, policy)
	}
	if le.Policy != policy || le.RetryAfter != retry || le.Channel != s.Channel {
		f.t.Errorf("%s: LimitError{Policy %q, RetryAfter %v, Channel %q}, want {%q, %v, %q}",
			what, le.Policy, le.RetryAfter, le.Channel, policy, retry, s.Channel)
	}
	return le
}

// wording fails unless le speaks as an aggregate cap (aggregate) or as the
// person's own limit.
func wording(t *testing.T, what string, le *verify.LimitError, aggregate bool) {
	t.Helper()
	personal, paused := verify.MessageSMSLimit, verify.MessageSMSPaused
	if le.Channel == verify.ChannelCall {
		personal, paused = verify.MessageCallLimit, verify.MessageCallPaused
	}
	want := personal
	if aggregate {
		want = paused
	}
	if le.Aggregate != aggregate || !strings.HasPrefix(le.Message(), want+" ") {
		t.Errorf("%s: Aggregate %v, message %q; want Aggregate %v and %q first", what, le.Aggregate, le.Message(), aggregate, want)
	}
}

// Run runs the whole contract against the limiters newLimiter makes.
func Run(t *testing.T, newLimiter NewLimiter) {
	tests := []struct {
		name     string
		policies []ratelimit.Policy
		run      func(f fixture)
	}{
		{"Defaults", ratelimit.DefaultPolicies(), testDefaults},
		{"AllOrNone", []ratelimit.Policy{
			{Name: "per_number", Scope: ratelimit.ScopeNumber, Limit: 2, Window: time.Hour},
			{Name: "per_user", Scope: ratelimit.ScopeUser, Limit: 3, Window: time.Hour},
		}, testAllOrNone},
		{"LongestWait", []ratelimit.Policy{
			{Name: "minute", Scope: ratelimit.ScopeNumber, Limit: 1, Window: time.Minute},
			{Name: "hour", Scope: ratelimit.ScopeNumber, Limit: 1, Window: time.Hour},
		}, testLongestWait},
		{"RetryAfterFromOldest", []ratelimit.Policy{
			{Name: "three", Scope: ratelimit.ScopeNumber, Limit: 3, Window: 10 * time.Minute},
		}, testRetryAfterFromOldest},
		{"ChannelPolicies", []ratelimit.Policy{
			{Name: "sms_only", Scope: ratelimit.ScopeNumber, Channel: verify.ChannelSMS, Limit: 1, Window: time.Hour},
		}, testChannelPolicies},
		{"Block", []ratelimit.Policy{
			{Name: "two", Scope: ratelimit.ScopeNumber, Limit: 2, Window: time.Hour},
		}, testBlock},
		{"NoPolicies", nil, testNoPolicies},
		{"AggregateCaps", []ratelimit.Policy{
			{Name: "per_number", Scope: ratelimit.ScopeNumber, Limit: 2, Window: time.Hour},
			{Name: "per_tenant", Scope: ratelimit.ScopeTenant, Limit: 3, Window: time.Minute},
			{Name: "per_prefix", Scope: ratelimit.ScopePrefix, Limit: 4, Window: time.Minute, PrefixDigits: 3},
		}, testAggregateCaps},
		{"Refund", []ratelimit.Policy{
			{Name: "per_number", Scope: ratelimit.ScopeNumber, Limit: 2, Window: time.Hour},
			{Name: "per_tenant", Scope: ratelimit.ScopeTenant, Limit: 3, Window: time.Hour},
		}, testRefund},
		{"Concurrent", ratelimit.DefaultPolicies(), testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			clock := NewClock()
			tc.run(fixture{t: t, ctx: ctx, clock: clock, l: newLimiter(t, tc.policies, clock.Now)})
		})
	}
	t.Run("Scopes", func(t *testing.T) {
		t.Parallel()
		testScopes(t, newLimiter)
	})
}

// testRefund: a refunded send leaves every policy that counted it, so the
// next send fits again; a send refunded twice, one never counted, or one
// without a SendID frees nothing more.
func testRefund(f fixture) {
	s := subject(f.t, verify.ChannelCall)
	send := func(id string) verify.SendSubject { c := s; c.SendID = id; return c }
	f.allow("first", send("VE1"))
	f.at(time.Minute).allow("second", send("VE2"))
	f.at(2*time.Minute).deny("third", send("VE3"), "per_number", 58*time.Minute)
	for _, id := range []string{"VE2", "VE2", "VE-never-counted", ""} {
		if err := f.l.Refund(f.ctx, send(id)); err != nil {
			f.t.Fatalf("Refund(%q): %v", id, err)
		}
	}
	f.allow("after one refund", send("VE4"))
	// VE1 (at +0) is the oldest left in the window: the refunded VE2 is gone.
	f.deny("after the refund is used", send("VE5"), "per_number", 58*time.Minute)
	// The tenant's policy took VE2 back too: it holds VE1 and VE4.
	other := send("VE6")
	other.To = unique(f.t, "+49151")
	f.allow("another number of the tenant", other)
	other.SendID, other.To = "VE7", unique(f.t, "+49151")
	f.deny("the tenant's fourth", other, "per_tenant", 58*time.Minute)
}

func testDefaults(f fixture) {
	sms := subject(f.t, verify.ChannelSMS)
	for i := range 5 {
		f.at(time.Duration(i)*time.Minute).allow(fmt.Sprintf("sms %d", i+1), sms)
	}
	le := f.at(5*time.Minute).deny("6th sms", sms, "number_sms", 5*time.Minute)
	if msg := le.Message(); !strings.HasPrefix(msg, verify.MessageSMSLimit+" ") || !strings.Contains(msg, "5 minutes") {
		f.t.Errorf("message %q, want %q and when to retry", msg, verify.MessageSMSLimit)
	}
	// Calls to the same number have their own budget, and their own words.
	call := sms
	call.Channel = verify.ChannelCall
	for i := range 5 {
		f.allow(fmt.Sprintf("call %d", i+1), call)
	}
	le = f.deny("6th call", call, "number_call", 10*time.Minute)
	if msg := le.Message(); !strings.HasPrefix(msg, verify.MessageCallLimit+" ") {
		f.t.Errorf("message %q, want %q first", msg, verify.MessageCallLimit)
	}
	// Another number is not affected; and the window slides.
	f.allow("sms to another number", subject(f.t, verify.ChannelSMS))
	f.at(10*time.Minute).allow("sms after the first left the window", sms)
	f.deny("and the next", sms, "number_sms", time.Minute)
}

func testAllOrNone(f fixture) {
	s := subject(f.t, verify.ChannelSMS)
	f.allow("1st", s)
	f.allow("2nd", s)
	f.deny("3rd to the number", s, "per_number", time.Hour)
	// The denied send took nothing from per_user: two more fit for the user.
	other := s
	other.To = unique(f.t, "+49152")
	f.allow("user's 3rd send, to another number", other)
	third := s
	third.To = unique(f.t, "+49153")
	f.deny("user's 4th send", third, "per_user", time.Hour)
	// Nor did that denial take from the third number's budget.
	third.UserID = unique(f.t, "user-")
	f.allow("another user to the third number", third)
	f.allow("and again", third)
}

func testLongestWait(f fixture) {
	s := subject(f.t, verify.ChannelSMS)
	f.allow("1st", s)
	f.at(30*time.Second).deny("2nd, both deny", s, "hour", time.Hour-30*time.Second)
	f.at(2*time.Minute).deny("3rd, hour denies", s, "hour", time.Hour-2*time.Minute)
}

func testRetryAfterFromOldest(f fixture) {
	s := subject(f.t, verify.ChannelCall)
	f.at(0).allow("1st", s)
	f.at(2*time.Minute).allow("2nd", s)
	f.at(4*time.Minute).allow("3rd", s)
	f.at(5*time.Minute).deny("4th", s, "three", 5*time.Minute)
	f.at(10*time.Minute).allow("when the 1st leaves", s)
	f.at(10*time.Minute+time.Second).deny("next", s, "three", 2*time.Minute-time.Second)
}

func testChannelPolicies(f fixture) {
	sms := subject(f.t, verify.ChannelSMS)
	call := sms
	call.Channel = verify.ChannelCall
	f.allow("sms", sms)
	f.allow("call: the policy counts only sms", call)
	f.allow("another call", call)
	f.deny("2nd sms", sms, "sms_only", time.Hour)
}

func testBlock(f fixture) {
	s := subject(f.t, verify.ChannelSMS)
	if err := f.l.Block(f.ctx, s.To, time.Hour); err != nil {
		f.t.Fatal(err)
	}
	for i, at := range []time.Duration{0, time.Minute, 59 * time.Minute} {
		f.at(at).deny(fmt.Sprintf("blocked send %d", i+1), s, "blocked", time.Hour-at)
	}
	call := s
	call.Channel, call.Tenant = verify.ChannelCall, unique(f.t, "tenant-")
	f.deny("blocked call from another tenant", call, "blocked", time.Minute)
	f.allow("another number", subject(f.t, verify.ChannelSMS))
	// Denied sends took nothing: both sends of the policy are there after the block.
	f.at(time.Hour).allow("after the block", s)
	f.allow("and the second", s)
	f.deny("third", s, "two", time.Hour)
}

// testAggregateCaps: a tenant sending to many numbers, and many tenants
// sending into one prefix, reach caps that are no one person's: the denial
// does not blame the person, and the per-number limit still speaks as
// before.
func testAggregateCaps(f fixture) {
	s := subject(f.t, verify.ChannelSMS)
	for i := range 3 {
		other := s
		other.To = unique(f.t, "+4917")
		f.allow(fmt.Sprintf("tenant's send %d, to a number of its own", i+1), other)
	}
	other := s
	other.To = unique(f.t, "+4917")
	wording(f.t, "4th send of the tenant", f.at(20*time.Second).deny("4th send of the tenant", other, "per_tenant", 40*time.Second), true)
	other.Channel = verify.ChannelCall
	wording(f.t, "and a call", f.deny("and a call", other, "per_tenant", 40*time.Second), true)

	// Other tenants into one prefix (the country code and three digits
	// more: +49 152): the fifth send there is refused, whoever sends it,
	// while another prefix is open.
	f = f.at(2 * time.Minute)
	for i := range 4 {
		t := s
		t.Tenant, t.To = unique(f.t, "tenant-"), unique(f.t, "+49152")
		f.allow(fmt.Sprintf("send %d into +49152", i+1), t)
	}
	t := s
	t.Tenant, t.To = unique(f.t, "tenant-"), unique(f.t, "+49152")
	wording(f.t, "5th send into the prefix", f.deny("5th send into the prefix", t, "per_prefix", time.Minute), true)
	t.To = unique(f.t, "+49162")
	f.allow("the same tenant into another prefix", t)

	// The per-number limit is the person's own.
	n := s
	n.Tenant, n.To = unique(f.t, "tenant-"), unique(f.t, "+4930")
	f.allow("1st to a number", n)
	f.allow("2nd to it", n)
	wording(f.t, "3rd to the number", f.deny("3rd to the number", n, "per_number", time.Hour), false)
}

func testNoPolicies(f fixture) {
	s := subject(f.t, verify.ChannelSMS)
	for i := range 20 {
		f.allow(fmt.Sprintf("send %d", i+1), s)
	}
}

func testConcurrent(f fixture) {
	const n = 100
	s := subject(f.t, verify.ChannelSMS)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- f.l.Consume(f.ctx, s)
		}()
	}
	wg.Wait()
	close(errs)
	allowed := 0
	for err := range errs {
		switch {
		case err == nil:
			allowed++
		case !errors.Is(err, verify.ErrRateLimited):
			f.t.Errorf("concurrent consume: %v", err)
		}
	}
	if allowed != 5 {
		f.t.Errorf("%d of %d concurrent sends allowed, want exactly 5", allowed, n)
	}
}

// testScopes checks that each scope counts what it names and nothing else,
// and that user and ip policies do not apply without a user_id or client_ip.
func testScopes(t *testing.T, newLimiter NewLimiter) {
	tests := []struct {
		scope ratelimit.Scope
		// same changes a subject so that it shares the scope's value (the
		// second send is denied); other so that it does not (allowed).
		same, other func(t testing.TB, s *verify.SendSubject)
		// unset removes the scope's value: then the policy does not apply.
		unset func(s *verify.SendSubject)
	}{
		{scope: ratelimit.ScopeNumber,
			same: func(t testing.TB, s *verify.SendSubject) {
				s.Tenant, s.UserID = unique(t, "tenant-"), unique(t, "user-")
			},
			other: func(t testing.TB, s *verify.SendSubject) { s.To = unique(t, "+49160") }},
		{scope: ratelimit.ScopeUser,
			same:  func(t testing.TB, s *verify.SendSubject) { s.To = unique(t, "+49160") },
			other: func(t testing.TB, s *verify.SendSubject) { s.Tenant = unique(t, "tenant-") }, // same user id, another tenant
			unset: func(s *verify.SendSubject) { s.UserID = "" }},
		{scope: ratelimit.ScopeTenant,
			same:  func(t testing.TB, s *verify.SendSubject) { s.To, s.UserID = unique(t, "+49160"), unique(t, "user-") },
			other: func(t testing.TB, s *verify.SendSubject) { s.Tenant = unique(t, "tenant-") }},
		{scope: ratelimit.ScopeIP,
			same:  func(t testing.TB, s *verify.SendSubject) { s.To, s.Tenant = unique(t, "+49160"), unique(t, "tenant-") },
			other: func(t testing.TB, s *verify.SendSubject) { s.ClientIP = "2001:db8::" + unique(t, "")[4:] },
			unset: func(s *verify.SendSubject) { s.ClientIP = "" }},
		{scope: ratelimit.ScopeCountry,
			same:  func(t testing.TB, s *verify.SendSubject) { s.To, s.Tenant = unique(t, "+49160"), unique(t, "tenant-") },
			other: func(t testing.TB, s *verify.SendSubject) { s.Country = "AT" },
			unset: func(s *verify.SendSubject) { s.Country = "" }},
		{scope: ratelimit.ScopePrefix,
			same: func(t testing.TB, s *verify.SendSubject) {
				s.To, s.Tenant = unique(t, "+49151"), unique(t, "tenant-") // +49 151: the prefix of subject's numbers
			},
			other: func(t testing.TB, s *verify.SendSubject) { s.To = unique(t, "+49160") },
			unset: func(s *verify.SendSubject) { s.To = "" }},
		{scope: ratelimit.ScopeGlobal,
			same: func(t testing.TB, s *verify.SendSubject) {
				s.To, s.Tenant, s.Country, s.ClientIP = unique(t, "+1202"), unique(t, "tenant-"), "US", "203.0.113.9"
			}},
	}
	for _, tc := range tests {
		t.Run(string(tc.scope), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			clock := NewClock()
			// The policy name is unique so that scopes shared across tests
			// (country, ip, global) start empty on a shared server too.
			name := unique(t, "scope_"+string(tc.scope)+"_")
			pol := []ratelimit.Policy{{Name: name, Scope: tc.scope, Limit: 1, Window: time.Hour}}
			f := fixture{t: t, ctx: ctx, clock: clock, l: newLimiter(t, pol, clock.Now)}
			s := subject(t, verify.ChannelSMS)
			if tc.scope == ratelimit.ScopeIP {
				s.ClientIP = "192.0.2." + unique(t, "")[5:]
			}
			f.allow("first", s)
			same := s
			tc.same(t, &same)
			f.deny("same "+string(tc.scope), same, name, time.Hour)
			if tc.other != nil {
				other := s
				tc.other(t, &other)
				f.allow("another "+string(tc.scope), other)
			}
			if tc.unset != nil {
				none := s
				tc.unset(&none)
				f.allow("without a value", none)
				f.allow("again without a value", none)
			}
		})
	}
}

// Unbounded returns ps with the limits of its aggregate policies (tenant,
// prefix, country, global) raised out of reach, for benchmarks that send
// one tenant's traffic at machine speed into one prefix: the same buckets,
// so the same commands per send, and no denial.
func Unbounded(ps []ratelimit.Policy) []ratelimit.Policy {
	out := append([]ratelimit.Policy(nil), ps...)
	for i := range out {
		if out[i].Scope.Aggregate() {
			out[i].Limit = UnboundedLimit
		}
	}
	return out
}

// UnboundedLimit is the limit Unbounded gives aggregate policies.
const UnboundedLimit = 1_000_000_000
