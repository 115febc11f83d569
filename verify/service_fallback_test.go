package verify_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/verify"
)

// fixedRouter routes every request to one route.
type fixedRouter struct{ route verify.Route }

func (f fixedRouter) Route(context.Context, verify.RouteRequest) (verify.Route, error) {
	r := f.route
	r.Reasons = slices.Clone(r.Reasons)
	return r, nil
}

// recordingObserver remembers the events the Service observed.
type recordingObserver struct {
	mu  sync.Mutex
	got []verify.EventType
}

func (o *recordingObserver) Observe(_ context.Context, _ *verify.Verification, ev verify.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, ev.Type)
}

func (o *recordingObserver) events() []verify.EventType {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.got)
}

// fallbackService is a verifytest.Service whose router always answers
// route, with an observer.
func fallbackService(t *testing.T, route verify.Route, opts ...verifytest.Option) (*verifytest.Service, *recordingObserver) {
	t.Helper()
	obs := &recordingObserver{}
	opts = append(opts, verifytest.WithConfig(func(c *verify.Config) {
		c.Router = fixedRouter{route}
		c.Observer = obs
	}))
	return verifytest.NewService(t, opts...), obs
}

func mustStart(t *testing.T, s *verifytest.Service, ch verify.Channel) *verify.Verification {
	t.Helper()
	v, err := s.Start(context.Background(), verify.StartRequest{Tenant: "acme", To: number, Channel: ch})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return v
}

func mustGet(t *testing.T, s *verifytest.Service, id string) *verify.Verification {
	t.Helper()
	v, err := s.Get(context.Background(), "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFallbackUndeliveredSMSCallsAndApproves(t *testing.T) {
	s, obs := fallbackService(t, verify.Route{Channel: verify.ChannelSMS, Fallback: verify.ChannelCall, Reasons: []string{"default"}})
	ctx := context.Background()
	v := mustStart(t, s, verify.ChannelAuto)
	undelivered := verify.Event{Type: verify.EventUndelivered, Channel: verify.ChannelSMS, ProviderRef: "SM1", ErrorCode: "30003", Key: "SM1:undelivered"}
	if err := s.Report(ctx, v.ID, undelivered); err != nil {
		t.Fatalf("report: %v", err)
	}
	calls := s.Caller.Calls()
	if len(calls) != 1 || calls[0].VerificationID != v.ID || calls[0].Mode != verify.CallModeApprove {
		t.Fatalf("calls placed: %+v", calls)
	}
	got := mustGet(t, s, v.ID)
	if got.Status != verify.StatusPending || got.Channel != verify.ChannelCall || got.Sends != 2 ||
		got.Route.Fallback != "" || !slices.Equal(got.Route.Reasons, []string{"default", "fallback after undelivered"}) {
		t.Errorf("after fallback: status %s channel %s sends %d route %+v", got.Status, got.Channel, got.Sends, got.Route)
	}
	// The provider retries the same report: no second call.
	if err := s.Report(ctx, v.ID, undelivered); err != nil {
		t.Fatal(err)
	}
	// A report without a key after the switch is about the old SMS: no call either.
	if err := s.Report(ctx, v.ID, verify.Event{Type: verify.EventUndelivered, Channel: verify.ChannelSMS}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Caller.Calls()); n != 1 {
		t.Errorf("%d calls after repeated reports, want 1", n)
	}
	if err := s.Report(ctx, v.ID, approved(verify.Event{Channel: verify.ChannelCall})); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, v.ID); got.Status != verify.StatusApproved {
		t.Errorf("status %s, want approved", got.Status)
	}
	if !slices.Contains(obs.events(), verify.EventUndelivered) {
		t.Errorf("observer saw %v", obs.events())
	}
}

func TestFallbackUnansweredCallTexts(t *testing.T) {
	for _, evType := range []verify.EventType{verify.EventNoAnswer, verify.EventBusy} {
		t.Run(string(evType), func(t *testing.T) {
			s, _ := fallbackService(t, verify.Route{Channel: verify.ChannelCall, Fallback: verify.ChannelSMS, Reasons: []string{"roaming"}})
			ctx := context.Background()
			v := mustStart(t, s, verify.ChannelAuto)
			if err := s.Report(ctx, v.ID, ended(verify.Event{Type: evType, Channel: verify.ChannelCall})); err != nil {
				t.Fatal(err)
			}
			got := mustGet(t, s, v.ID)
			if got.Status != verify.StatusPending || got.Channel != verify.ChannelSMS || got.Sends != 2 {
				t.Fatalf("after fallback: %s %s sends %d", got.Status, got.Channel, got.Sends)
			}
			// The person reads the SMS code.
			checked, err := s.Check(ctx, "acme", v.ID, s.Sender.LastCode(t, number))
			if err != nil || checked.Status != verify.StatusApproved {
				t.Errorf("check: %v %v", checked, err)
			}
		})
	}
}

func TestNoFallbackKeepsFailingApproveCalls(t *testing.T) {
	s, _ := fallbackService(t, verify.Route{Channel: verify.ChannelCall})
	v := mustStart(t, s, verify.ChannelCall)
	if err := s.Report(context.Background(), v.ID, ended(verify.Event{Type: verify.EventNoAnswer})); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, v.ID); got.Status != verify.StatusFailed || got.Reason != string(verify.EventNoAnswer) {
		t.Errorf("status %s reason %q", got.Status, got.Reason)
	}
	if len(s.Sender.Messages()) != 0 {
		t.Error("an SMS was sent without a fallback")
	}
}

func TestFallbackCountsAgainstLimits(t *testing.T) {
	s, _ := fallbackService(t, verify.Route{Channel: verify.ChannelSMS, Fallback: verify.ChannelCall}, verifytest.WithPolicies(
		ratelimit.Policy{Name: "number_sms", Scope: ratelimit.ScopeNumber, Channel: verify.ChannelSMS, Limit: 5, Window: 10 * time.Minute},
		ratelimit.Policy{Name: "number_call", Scope: ratelimit.ScopeNumber, Channel: verify.ChannelCall, Limit: 1, Window: 10 * time.Minute},
	))
	ctx := context.Background()
	v := mustStart(t, s, verify.ChannelAuto)
	if err := s.Report(ctx, v.ID, verify.Event{Type: verify.EventUndelivered, Key: "a"}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Caller.Calls()); n != 1 {
		t.Fatalf("%d calls", n)
	}
	// The fallback happens once: the fallback route has no fallback of its
	// own, so the unanswered approve-mode call fails the verification.
	if err := s.Report(ctx, v.ID, ended(verify.Event{Type: verify.EventNoAnswer, Channel: verify.ChannelCall})); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, v.ID); got.Status != verify.StatusFailed {
		t.Fatalf("status %s after the fallback call went unanswered", got.Status)
	}

	// A fresh verification: the call limit is used up, so its fallback is refused.
	s.Clock.Add(time.Minute)
	v2 := mustStart(t, s, verify.ChannelAuto)
	if err := s.Report(ctx, v2.ID, verify.Event{Type: verify.EventUndelivered, Key: "b"}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Caller.Calls()); n != 1 {
		t.Errorf("%d calls: the limit did not hold", n)
	}
	got := mustGet(t, s, v2.ID)
	last := got.Events[len(got.Events)-1]
	if got.Status != verify.StatusPending || last.Type != verify.EventSendFailed || !strings.Contains(last.Detail, "limit on verification calls") {
		t.Errorf("status %s, last event %+v", got.Status, last)
	}
}

func TestFallbackWithoutCallProvider(t *testing.T) {
	s, _ := fallbackService(t, verify.Route{Channel: verify.ChannelSMS, Fallback: verify.ChannelCall},
		verifytest.WithConfig(func(c *verify.Config) { c.Callers = nil }))
	v := mustStart(t, s, verify.ChannelAuto)
	if err := s.Report(context.Background(), v.ID, verify.Event{Type: verify.EventUndelivered}); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, s, v.ID)
	last := got.Events[len(got.Events)-1]
	if got.Status != verify.StatusPending || last.Type != verify.EventSendFailed || !strings.HasPrefix(last.Detail, "fallback: ") {
		t.Errorf("status %s, events %+v", got.Status, got.Events)
	}
}

func TestFallbackCallFailsWhenSMSCannotBeSent(t *testing.T) {
	// The provider reports the call's attempt (1), as providers do, or none.
	for _, attempt := range []int{0, 1} {
		t.Run(fmt.Sprintf("attempt %d", attempt), func(t *testing.T) {
			s, _ := fallbackService(t, verify.Route{Channel: verify.ChannelCall, Fallback: verify.ChannelSMS})
			v := mustStart(t, s, verify.ChannelAuto)
			s.Sender.Fail(errors.New("provider down"))
			if err := s.Report(context.Background(), v.ID, ended(verify.Event{Type: verify.EventBusy, Attempt: attempt})); err != nil {
				t.Fatal(err)
			}
			// Without its fallback the approve-mode call ended unapproved,
			// although the fallback's start counted a send (a second
			// attempt) before its SMS failed.
			if got := mustGet(t, s, v.ID); got.Status != verify.StatusFailed || got.Reason != string(verify.EventBusy) {
				t.Errorf("status %s reason %q", got.Status, got.Reason)
			}
			if n := len(s.Notifier.Notices()); n != 0 {
				t.Errorf("%d notices without a callback_url", n)
			}
		})
	}
}

func TestFallbackNotAfterExpiry(t *testing.T) {
	s, _ := fallbackService(t, verify.Route{Channel: verify.ChannelSMS, Fallback: verify.ChannelCall})
	v := mustStart(t, s, verify.ChannelAuto)
	s.Clock.Add(verify.DefaultLifetime + time.Second)
	err := s.Report(context.Background(), v.ID, verify.Event{Type: verify.EventUndelivered})
	if err != nil && !errors.Is(err, verify.ErrNotPending) {
		t.Fatal(err)
	}
	if n := len(s.Caller.Calls()); n != 0 {
		t.Errorf("%d calls to an expired verification", n)
	}
}

func TestObserverSeesDeliveryOutcomes(t *testing.T) {
	s, obs := fallbackService(t, verify.Route{Channel: verify.ChannelSMS})
	v := mustStart(t, s, verify.ChannelSMS)
	ctx := context.Background()
	for _, ty := range []verify.EventType{verify.EventQueued, verify.EventSent, verify.EventDelivered, verify.EventDelivered} {
		if err := s.Report(ctx, v.ID, verify.Event{Type: ty, Key: string(ty)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := obs.events(); !slices.Equal(got, []verify.EventType{verify.EventDelivered}) {
		t.Errorf("observed %v, want one delivered (the repeat has the same key)", got)
	}
}
