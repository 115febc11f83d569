package sip_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// trunkRouter sends the n-th call over trunks[n] (the last one after that).
type trunkRouter struct {
	trunks []string
	n      atomic.Int32
}

func (r *trunkRouter) Route(context.Context, verify.RouteRequest) (verify.Route, error) {
	i := min(int(r.n.Add(1))-1, len(r.trunks)-1)
	return verify.Route{Channel: verify.ChannelCall, Trunk: r.trunks[i]}, nil
}

// TestLateNoAnswerOfAnEarlierCallOverSIP: the first approve-mode call
// rings, the verification is resent (a second call, to a phone that
// answers), the first call is then canceled unanswered, and the person
// presses # on the second call: approved. The reporter orders the events:
// call 1's no_answer waits for the resend, call 2's # for that no_answer.
func TestLateNoAnswerOfAnEarlierCallOverSIP(t *testing.T) {
	ringing, _ := newPhone(t, siptest.PhoneConfig{Ring: time.Minute})
	answering, _ := newPhone(t, siptest.PhoneConfig{Press: "#", After: pressAfter})
	slow, fast := ringing.LoopbackTrunk(), answering.LoopbackTrunk()
	slow.Name, fast.Name = "ringing", "answering"

	resent, noAnswer := make(chan struct{}), make(chan struct{})
	releaseResent, releaseNoAnswer := sync.OnceFunc(func() { close(resent) }), sync.OnceFunc(func() { close(noAnswer) })
	var svc *verifytest.Service
	rep := verifytest.ReporterFunc(func(ctx context.Context, id string, ev verify.Event) error {
		wait := map[verify.EventType]chan struct{}{verify.EventNoAnswer: resent, verify.EventCallApproved: noAnswer}[ev.Type]
		if wait != nil {
			select {
			case <-wait:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := svc.Report(ctx, id, ev)
		if ev.Type == verify.EventNoAnswer {
			releaseNoAnswer()
		}
		return err
	})
	caller, err := sip.NewCaller(sip.Config{
		Listen: "127.0.0.1:0", RTPPorts: rtpRange(t), DefaultTrunk: slow.Name, Trunks: []sip.Trunk{slow, fast},
	}, sip.Options{
		Audio: tones{dur: 400 * time.Millisecond}, Logger: testLogger(t).With("side", "gateway"),
		RingTimeout: time.Second, KeyTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { caller.Close() })
	caller.ReportTo(rep)
	t.Cleanup(func() { releaseResent(); releaseNoAnswer() }) // runs first: no report stays blocked
	svc = verifytest.NewService(t, verifytest.WithConfig(func(c *verify.Config) {
		c.Callers = map[string]verify.Caller{sip.Provider: caller}
		c.DefaultCaller = sip.Provider
		c.Router = &trunkRouter{trunks: []string{slow.Name, fast.Name}}
	}))

	v := startCall(t, svc, verify.CallModeApprove)
	if again := startCall(t, svc, verify.CallModeApprove); again.ID != v.ID || again.Sends != 2 {
		t.Fatalf("second start: id %s sends %d, want a resend of %s", again.ID, again.Sends, v.ID)
	}
	releaseResent()

	got := waitStatus(t, svc, v.ID, verify.StatusApproved)
	var late, approved *verify.Event
	for i, ev := range got.Events {
		switch ev.Type {
		case verify.EventNoAnswer:
			late = &got.Events[i]
		case verify.EventCallApproved:
			approved = &got.Events[i]
		}
	}
	if late == nil || approved == nil || late.Attempt != 1 || approved.Attempt != 2 || late.ProviderRef == approved.ProviderRef {
		t.Errorf("no_answer %+v and call_approved %+v: want call 1's (attempt 1) and call 2's (attempt 2)", late, approved)
	}
}
