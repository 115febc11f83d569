package twilio_test

import (
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/verigate/verigate/internal/twiliotest"
	"github.com/verigate/verigate/twilio"
	"github.com/verigate/verigate/verify"
)

// attemptOf returns the attempt number a status callback URL carries.
func attemptOf(t *testing.T, statusURL string) string {
	t.Helper()
	u, err := url.Parse(statusURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("a")
}

// TestLateNoAnswerOfAnEarlierCallDoesNotFailTheResend: an approve-mode
// call rings unanswered, the IdP resends (a second call), Twilio then
// reports the first call as no-answer, and the person presses # on the
// second call: the verification is approved.
func TestLateNoAnswerOfAnEarlierCallDoesNotFailTheResend(t *testing.T) {
	h := newHarness(t)
	hold1, hold2 := make(chan struct{}), make(chan struct{})
	release1, release2 := sync.OnceFunc(func() { close(hold1) }), sync.OnceFunc(func() { close(hold2) })
	t.Cleanup(func() { release1(); release2() })

	h.fake.SetPhone(mobile, twiliotest.Phone{Answer: "no-answer", Hold: hold1})
	id := h.start(startBody{To: mobile, Channel: verify.ChannelCall, CallMode: verify.CallModeApprove})
	h.fake.SetPhone(mobile, twiliotest.Phone{Keys: "#", Hold: hold2})
	var again view
	if status := h.do(http.MethodPost, "/v1/verifications", startBody{To: mobile, Channel: verify.ChannelCall, CallMode: verify.CallModeApprove}, &again); status != http.StatusOK || again.ID != id {
		t.Fatalf("second start: HTTP %d, id %s; want 200, a resend of %s", status, again.ID, id)
	}
	calls := h.fake.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d calls placed, want 2", len(calls))
	}
	for i, c := range calls {
		if got, want := attemptOf(t, c.StatusCallback), string(rune('1'+i)); got != want {
			t.Errorf("call %d's status callback %s carries attempt %q, want %q", i+1, c.StatusCallback, got, want)
		}
	}

	release1()
	h.fake.WaitCall(calls[0].Sid)
	if v := h.get(id); v.Status != verify.StatusPending {
		t.Fatalf("after call 1's late no-answer: %s (%q), want pending; events %v", v.Status, v.Reason, eventTypes(v))
	}
	var late *verify.Event
	for _, e := range h.record(id).Events {
		if e.Type == verify.EventNoAnswer {
			late = &e
		}
	}
	if late == nil || late.ProviderRef != calls[0].Sid || late.Attempt != 1 || late.Provider != twilio.ProviderName {
		t.Fatalf("no_answer recorded as %+v, want call 1's with attempt 1", late)
	}

	release2()
	h.settle()
	wantSaid(t, h.fake.Calls()[1], greeting, pressPound, verifiedGB)
	v := h.get(id)
	if v.Status != verify.StatusApproved {
		t.Fatalf("after # on call 2: %s (%q), want approved; events %v", v.Status, v.Reason, eventTypes(v))
	}
	for _, e := range h.record(id).Events {
		if e.Type == verify.EventCallApproved && (e.Attempt != 2 || e.ProviderRef != calls[1].Sid) {
			t.Errorf("call_approved %+v, want call 2's with attempt 2", e)
		}
	}
}

// TestStatusCallbackWithoutAttempt: URLs given to Twilio before attempts
// were numbered carry none; their callbacks keep today's meaning (the
// end of the current call), and a malformed attempt is refused.
func TestStatusCallbackWithoutAttempt(t *testing.T) {
	h := newHarness(t)
	hold := make(chan struct{})
	t.Cleanup(sync.OnceFunc(func() { close(hold) }))
	h.fake.SetPhone(mobile, twiliotest.Phone{Answer: "no-answer", Hold: hold})
	id := h.start(startBody{To: mobile, Channel: verify.ChannelCall, CallMode: verify.CallModeApprove})
	call := h.onlyCall()
	params := url.Values{"AccountSid": {accountSID}, "CallSid": {call.Sid}, "CallStatus": {"no-answer"}}
	bad := publicURL + twilio.PathPrefix + twilio.RouteCallStatus + "?" + url.Values{"v": {id}, "a": {"x"}}.Encode()
	if status, _, err := h.fake.Post(h.ctx(), bad, params, twiliotest.Signature(authToken, bad, params)); err != nil || status != http.StatusBadRequest {
		t.Fatalf("malformed attempt: HTTP %d, %v; want 400", status, err)
	}
	// Without the call mode either (a URL of an older version), the end is
	// recorded but means nothing: what it meant depends on the mode.
	old := publicURL + twilio.PathPrefix + twilio.RouteCallStatus + "?" + url.Values{"v": {id}}.Encode()
	if status, _, err := h.fake.Post(h.ctx(), old, params, twiliotest.Signature(authToken, old, params)); err != nil || status != http.StatusNoContent {
		t.Fatalf("callback without attempt: HTTP %d, %v", status, err)
	}
	// The fake's own progress callbacks for the call may land after this
	// one: look for the end among the events, not at the last one.
	if v := h.get(id); v.Status != verify.StatusPending || !slices.ContainsFunc(v.Events, func(e viewEvent) bool { return e.Type == verify.EventNoAnswer }) {
		t.Fatalf("status %s (%q), want pending with no_answer recorded", v.Status, v.Reason)
	}
	noAttempt := publicURL + twilio.PathPrefix + twilio.RouteCallStatus + "?" + url.Values{"v": {id}, "m": {"approve"}}.Encode()
	params.Set("CallSid", call.Sid+"-again") // another event key
	if status, _, err := h.fake.Post(h.ctx(), noAttempt, params, twiliotest.Signature(authToken, noAttempt, params)); err != nil || status != http.StatusNoContent {
		t.Fatalf("callback without attempt: HTTP %d, %v", status, err)
	}
	if v := h.get(id); v.Status != verify.StatusFailed || v.Reason != string(verify.EventNoAnswer) {
		t.Fatalf("status %s (%q), want failed (no_answer)", v.Status, v.Reason)
	}
}
