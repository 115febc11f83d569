package verify_test

import (
	"context"
	"slices"
	"testing"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

// resent starts a verification on route and resends it once, and checks
// that the provider was told each send's attempt number.
func resent(t *testing.T, route verify.Route, opts ...verifytest.Option) (*verifytest.Service, *recordingObserver, *verify.Verification) {
	t.Helper()
	s, obs := fallbackService(t, route, opts...)
	v := mustStart(t, s, route.Channel)
	if again := mustStart(t, s, route.Channel); again.ID != v.ID || again.Sends != 2 {
		t.Fatalf("second start: id %s sends %d, want a resend of %s", again.ID, again.Sends, v.ID)
	}
	var attempts []int
	for _, c := range s.Caller.Calls() {
		attempts = append(attempts, c.Attempt)
	}
	for _, m := range s.Sender.Messages() {
		attempts = append(attempts, m.Attempt)
	}
	if !slices.Equal(attempts, []int{1, 2}) {
		t.Fatalf("providers were given attempts %v, want [1 2]", attempts)
	}
	return s, obs, v
}

func TestLateEndOfAnEarlierCallDoesNotFailTheResend(t *testing.T) {
	for _, late := range []verify.EventType{verify.EventNoAnswer, verify.EventBusy, verify.EventFailed, verify.EventCompleted} {
		t.Run(string(late), func(t *testing.T) {
			s, obs, v := resent(t, verify.Route{Channel: verify.ChannelCall})
			ctx := context.Background()
			if err := s.Report(ctx, v.ID, ended(verify.Event{Type: late, Channel: verify.ChannelCall, ProviderRef: "call-1", Attempt: 1})); err != nil {
				t.Fatalf("late report: %v", err)
			}
			got := mustGet(t, s, v.ID)
			if got.Status != verify.StatusPending {
				t.Fatalf("status %s (%q) after the end of the superseded call", got.Status, got.Reason)
			}
			if last := got.Events[len(got.Events)-1]; last.Type != late || last.Attempt != 1 {
				t.Errorf("last event %+v, want the late %s recorded with attempt 1", last, late)
			}
			if late != verify.EventCompleted && !slices.Contains(obs.events(), late) {
				t.Errorf("observer saw %v: a superseded attempt still counts for routing", obs.events())
			}
			// The # on the second call approves.
			if err := s.Report(ctx, v.ID, approved(verify.Event{Channel: verify.ChannelCall, Attempt: 2})); err != nil {
				t.Fatalf("# on the second call: %v", err)
			}
			if got := mustGet(t, s, v.ID); got.Status != verify.StatusApproved {
				t.Fatalf("status %s after # on the current call", got.Status)
			}
		})
	}
}

func TestEndOfTheCurrentCallFails(t *testing.T) {
	for _, attempt := range []int{2, 0} { // 0: a report from before attempts were numbered
		s, _, v := resent(t, verify.Route{Channel: verify.ChannelCall})
		if err := s.Report(context.Background(), v.ID, ended(verify.Event{Type: verify.EventNoAnswer, Channel: verify.ChannelCall, Attempt: attempt})); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, s, v.ID); got.Status != verify.StatusFailed || got.Reason != string(verify.EventNoAnswer) {
			t.Errorf("attempt %d: status %s (%q), want failed (no_answer)", attempt, got.Status, got.Reason)
		}
	}
}

func TestPoundOnAnEarlierCallStillCounts(t *testing.T) {
	for _, tc := range []struct {
		ev   verify.Event
		want verify.Status
	}{
		{approved(verify.Event{Channel: verify.ChannelCall, Attempt: 1}), verify.StatusApproved},
		{fraud(verify.Event{Channel: verify.ChannelCall, Attempt: 1}), verify.StatusDenied},
	} {
		s, _, v := resent(t, verify.Route{Channel: verify.ChannelCall})
		if err := s.Report(context.Background(), v.ID, tc.ev); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, s, v.ID); got.Status != tc.want {
			t.Errorf("%s on the first call: status %s, want %s", tc.ev.Type, got.Status, tc.want)
		}
	}
}

func TestLateUndeliveredOfAnEarlierSMSDoesNotFallBack(t *testing.T) {
	s, obs, v := resent(t, verify.Route{Channel: verify.ChannelSMS, Fallback: verify.ChannelCall})
	ctx := context.Background()
	first := verify.Event{Type: verify.EventUndelivered, Channel: verify.ChannelSMS, ProviderRef: "SM1", Attempt: 1, Key: "SM1:undelivered"}
	if err := s.Report(ctx, v.ID, first); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Caller.Calls()); n != 0 {
		t.Fatalf("%d calls: the undelivered first SMS started the fallback although a second one is on its way", n)
	}
	if got := mustGet(t, s, v.ID); got.Status != verify.StatusPending || got.Channel != verify.ChannelSMS || got.Sends != 2 {
		t.Fatalf("after the late report: %s %s sends %d", got.Status, got.Channel, got.Sends)
	}
	if !slices.Contains(obs.events(), verify.EventUndelivered) {
		t.Errorf("observer saw %v", obs.events())
	}
	// The current SMS going undelivered does fall back.
	if err := s.Report(ctx, v.ID, verify.Event{Type: verify.EventUndelivered, Channel: verify.ChannelSMS, ProviderRef: "SM2", Attempt: 2, Key: "SM2:undelivered"}); err != nil {
		t.Fatal(err)
	}
	if calls := s.Caller.Calls(); len(calls) != 1 || calls[0].Attempt != 3 {
		t.Fatalf("calls %+v, want the fallback call as attempt 3", calls)
	}
}

// resendingStore resends the verification once, through the Service,
// right after the first Get of a report: the read the Service decides on
// is then stale, as when a client's resend lands between the two steps.
type resendingStore struct {
	verify.Store
	resend func()
}

func (r *resendingStore) Get(ctx context.Context, tenant, id string) (*verify.Verification, error) {
	v, err := r.Store.Get(ctx, tenant, id)
	if f := r.resend; f != nil && tenant == "" {
		r.resend = nil
		f()
	}
	return v, err
}

func TestResendBetweenReadAndTransition(t *testing.T) {
	rs := &resendingStore{}
	s, _ := fallbackService(t, verify.Route{Channel: verify.ChannelCall}, verifytest.WithConfig(func(c *verify.Config) {
		rs.Store = c.Store
		c.Store = rs
	}))
	v := mustStart(t, s, verify.ChannelCall)
	rs.resend = func() { mustStart(t, s, verify.ChannelCall) }
	if err := s.Report(context.Background(), v.ID, ended(verify.Event{Type: verify.EventNoAnswer, Channel: verify.ChannelCall, Attempt: 1})); err != nil {
		t.Fatalf("report: %v", err)
	}
	got := mustGet(t, s, v.ID)
	if got.Sends != 2 {
		t.Fatalf("sends %d: the resend did not happen", got.Sends)
	}
	if got.Status != verify.StatusPending {
		t.Fatalf("status %s (%q): the end of call 1 failed the verification that call 2 had just resent", got.Status, got.Reason)
	}
	if last := got.Events[len(got.Events)-1]; last.Type != verify.EventNoAnswer {
		t.Errorf("last event %s, want the no_answer kept as history", last.Type)
	}
}
