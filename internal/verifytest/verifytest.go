// Package verifytest holds hand-written fakes for tests of verify and of the
// packages around it: a settable clock, a recording Sender and Caller, and
// NewService, which assembles a verify.Service on the in-memory store and
// limiter with the real number classifier, router and SMS template.
package verifytest

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sms"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

// Epoch is the time a Clock starts at unless told otherwise: fixed, so
// test output does not depend on the day it runs.
var Epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Clock is a clock that moves only when told. Safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time; pass c.Now wherever a func() time.Time is wanted.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Sender is a verify.Sender that records every message. Err, when set,
// fails every send instead.
type Sender struct {
	mu   sync.Mutex
	msgs []verify.Message
	err  error
}

var _ verify.Sender = (*Sender)(nil)

// Send implements verify.Sender.
func (s *Sender) Send(_ context.Context, m verify.Message) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return "", s.err
	}
	s.msgs = append(s.msgs, m)
	return "test-sms-" + m.VerificationID, nil
}

// Fail makes every later send return err (nil to succeed again).
func (s *Sender) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// Messages returns a copy of the messages sent so far, oldest first.
func (s *Sender) Messages() []verify.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// LastCode returns the code in the newest message to the E.164 number to,
// failing t when there is none.
func (s *Sender) LastCode(t testing.TB, to string) string {
	t.Helper()
	msgs := s.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].To == to {
			return CodeOf(t, msgs[i].Body)
		}
	}
	t.Fatalf("no message sent to %s (%d messages in all)", verify.MaskNumber(to), len(msgs))
	return ""
}

var codeRE = regexp.MustCompile(`\b\d{4,10}\b`)

// CodeOf extracts the code from an SMS body, failing t when there is none.
func CodeOf(t testing.TB, body string) string {
	t.Helper()
	code := codeRE.FindString(body)
	if code == "" {
		t.Fatalf("no code in message %q", body)
	}
	return code
}

// Caller is a verify.Caller that records every call. Calls in code mode
// carry the code in clear; Caller keeps them only for the test to read.
type Caller struct {
	mu    sync.Mutex
	calls []verify.Call
	err   error
}

var _ verify.Caller = (*Caller)(nil)

// Call implements verify.Caller.
func (c *Caller) Call(_ context.Context, call verify.Call) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return "", c.err
	}
	c.calls = append(c.calls, call)
	return "test-call-" + call.VerificationID, nil
}

// Fail makes every later call return err (nil to succeed again).
func (c *Caller) Fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

// Calls returns a copy of the calls placed so far, oldest first.
func (c *Caller) Calls() []verify.Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// Notifier is a verify.Notifier that records every notice.
type Notifier struct {
	mu      sync.Mutex
	notices []verify.Verification
}

var _ verify.Notifier = (*Notifier)(nil)

// Notify implements verify.Notifier; it keeps a copy of v.
func (n *Notifier) Notify(v *verify.Verification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notices = append(n.notices, *v)
}

// Notices returns the verifications notified so far, oldest first.
func (n *Notifier) Notices() []verify.Verification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.notices)
}

// Provider is the name the fakes are registered under in NewService.
const Provider = "test"

// Secret is the HMAC key of services built by NewService.
const Secret = "verifytest-secret-0123456789"

// Service is a verify.Service with its parts in reach of the test.
type Service struct {
	*verify.Service
	Config verify.Config // as passed to verify.NewService
	Clock  *Clock
	Sender *Sender
	Caller *Caller
	// Notifier is the service's verify.Notifier, so callback_url works.
	Notifier *Notifier
	Store    *store.Memory
	Limiter  *ratelimit.Memory
}

type options struct {
	clock         *Clock
	policies      []ratelimit.Policy
	defaultRegion string
	edit          []func(*verify.Config)
}

// Option changes what NewService builds.
type Option func(*options)

// WithClock uses c instead of a new Clock at Epoch.
func WithClock(c *Clock) Option { return func(o *options) { o.clock = c } }

// WithPolicies uses send limits ps instead of ratelimit.DefaultPolicies.
func WithPolicies(ps ...ratelimit.Policy) Option {
	return func(o *options) { o.policies = ps }
}

// WithDefaultRegion lets the classifier read national numbers of region.
func WithDefaultRegion(region string) Option {
	return func(o *options) { o.defaultRegion = region }
}

// WithConfig edits the verify.Config before the Service is built, e.g. to
// set Lifetime, MaxAttempts or CheckLock.
func WithConfig(f func(*verify.Config)) Option {
	return func(o *options) { o.edit = append(o.edit, f) }
}

// NewService builds a verify.Service on store.Memory, ratelimit.Memory,
// route.Classifier, route.Defaults and sms.Template, with a recording
// Sender and Caller (both named Provider) and a Clock. It fails t on error.
func NewService(t testing.TB, opts ...Option) *Service {
	t.Helper()
	o := options{policies: ratelimit.DefaultPolicies()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.clock == nil {
		o.clock = NewClock(Epoch)
	}
	lim, err := ratelimit.NewMemory(o.policies, o.clock.Now)
	if err != nil {
		t.Fatalf("verifytest: limiter: %v", err)
	}
	h, err := verify.NewHasher([]byte(Secret))
	if err != nil {
		t.Fatalf("verifytest: hasher: %v", err)
	}
	s := &Service{Clock: o.clock, Sender: &Sender{}, Caller: &Caller{}, Notifier: &Notifier{}, Store: store.NewMemory(), Limiter: lim}
	cfg := verify.Config{
		Store: store.Limited{Memory: s.Store, Limits: lim}, Limiter: lim,
		Parser: route.Classifier{DefaultRegion: o.defaultRegion}, Router: route.Defaults{},
		Formatter: sms.Template{}, Hasher: h, Notifier: s.Notifier,
		Senders:       map[string]verify.Sender{Provider: s.Sender},
		Callers:       map[string]verify.Caller{Provider: s.Caller},
		DefaultSender: Provider, DefaultCaller: Provider,
		Now:    o.clock.Now,
		Logger: slog.New(slog.DiscardHandler), // tests read state, not logs
	}
	for _, f := range o.edit {
		f(&cfg)
	}
	svc, err := verify.NewService(cfg)
	if err != nil {
		t.Fatalf("verifytest: service: %v", err)
	}
	s.Service, s.Config = svc, cfg
	return s
}

// ReporterFunc adapts a function to verify.Reporter, for tests that record,
// hold back or forward a provider's reports.
type ReporterFunc func(ctx context.Context, id string, ev verify.Event) error

// Report calls f.
func (f ReporterFunc) Report(ctx context.Context, id string, ev verify.Event) error {
	return f(ctx, id, ev)
}
