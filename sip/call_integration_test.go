package sip_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/testbuf"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// call places one approve-mode call from a fresh gateway to phone and
// waits until the gateway reports how it ended.
func placeCall(t *testing.T, phone *siptest.Phone, o sip.Options, vc verify.Call, end verify.EventType) *reporter {
	t.Helper()
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "phone", Address: phone.Addr().String()}, o)
	if vc.VerificationID == "" {
		vc.VerificationID = "v1"
	}
	if vc.To == "" {
		vc.To = "+4915123456789"
	}
	if vc.Mode == "" {
		vc.Mode = verify.CallModeApprove
	}
	if _, err := caller.Call(context.Background(), vc); err != nil {
		t.Fatalf("Call: %v", err)
	}
	rep.waitFor(t, vc.VerificationID, end, 30*time.Second)
	return rep
}

func keys(evs []verify.Event) string {
	var s string
	for _, ev := range evs {
		if ev.Type == verify.EventKeyPressed {
			s += ev.Detail
		}
	}
	return s
}

func detail(evs []verify.Event, t verify.EventType) (string, bool) {
	for _, ev := range evs {
		if ev.Type == t {
			return ev.Detail, true
		}
	}
	return "", false
}

func TestWrongKeyThenPound(t *testing.T) {
	phone, ended := newPhone(t, siptest.PhoneConfig{Press: "5#", After: pressAfter, KeyGap: 1500 * time.Millisecond})
	rep := placeCall(t, phone, sip.Options{}, verify.Call{}, verify.EventCompleted)
	waitCall(t, ended, 5*time.Second)
	evs := rep.all("v1")
	if got := keys(evs); got != "5#" {
		t.Errorf("keys reported %q, want 5#", got)
	}
	if !hasInOrder(rep.types("v1"), verify.EventAnswered, verify.EventKeyPressed, verify.EventKeyPressed, verify.EventCallApproved) {
		t.Errorf("events %v, want approval after two keys", rep.types("v1"))
	}
}

func TestFraudReport(t *testing.T) {
	phone, ended := newPhone(t, siptest.PhoneConfig{Press: "0#", After: pressAfter, KeyGap: 300 * time.Millisecond})
	rep := placeCall(t, phone, sip.Options{}, verify.Call{}, verify.EventCompleted)
	waitCall(t, ended, 5*time.Second)
	types := rep.types("v1")
	if !slices.Contains(types, verify.EventFraudReported) || slices.Contains(types, verify.EventCallApproved) {
		t.Fatalf("events %v, want fraud_reported and no call_approved", types)
	}
	if got := keys(rep.all("v1")); got != "0#" {
		t.Errorf("keys reported %q, want 0#", got)
	}
}

func TestHangUpBeforePound(t *testing.T) {
	// The prompts (2 × 400 ms) are over; the gateway waits for a key.
	phone, ended := newPhone(t, siptest.PhoneConfig{HangupAfter: 1500 * time.Millisecond})
	rep := placeCall(t, phone, sip.Options{KeyTimeout: 5 * time.Second}, verify.Call{}, verify.EventCompleted)
	pc := waitCall(t, ended, 5*time.Second)
	if pc.HungUpBy != "phone" || pc.Err != nil {
		t.Errorf("phone says %q hung up (%v)", pc.HungUpBy, pc.Err)
	}
	evs := rep.all("v1")
	if d, _ := detail(evs, verify.EventCompleted); d != "hung up by the phone" {
		t.Errorf("completed detail %q, want hung up by the phone", d)
	}
	for _, ev := range evs {
		if ev.Type == verify.EventCallApproved || ev.Type == verify.EventKeyPressed {
			t.Errorf("unexpected %s after a hang-up without keys: %v", ev.Type, rep.types("v1"))
		}
	}
}

func TestByeMidPrompt(t *testing.T) {
	// A 3 s greeting; the phone hangs up 300 ms into it.
	phone, ended := newPhone(t, siptest.PhoneConfig{HangupAfter: 300 * time.Millisecond})
	rep := placeCall(t, phone, sip.Options{Audio: tones{dur: 3 * time.Second}}, verify.Call{}, verify.EventCompleted)
	pc := waitCall(t, ended, 5*time.Second)
	// Heard is in 20 ms frames: the whole greeting would be 150.
	if pc.HungUpBy != "phone" || pc.Heard == 0 || pc.Heard >= 150 {
		t.Errorf("phone: %+v, want it to hang up after hearing part of the greeting", pc)
	}
	if d, _ := detail(rep.all("v1"), verify.EventCompleted); d != "hung up by the phone" {
		t.Errorf("completed detail %q, want hung up by the phone", d)
	}
	if slices.Contains(rep.types("v1"), verify.EventCallApproved) {
		t.Errorf("approved although the phone hung up: %v", rep.types("v1"))
	}
}

func TestSilenceRepromptsThenFails(t *testing.T) {
	phone, ended := newPhone(t, siptest.PhoneConfig{})
	rep := placeCall(t, phone, sip.Options{KeyTimeout: 300 * time.Millisecond, Audio: tones{dur: 100 * time.Millisecond}},
		verify.Call{}, verify.EventCompleted)
	waitCall(t, ended, 5*time.Second)
	if d, ok := detail(rep.all("v1"), verify.EventFailed); !ok || d != "not_confirmed" {
		t.Errorf("events %v, failed detail %q: want failed (not_confirmed) after 3 prompts", rep.types("v1"), d)
	}
}

// TestCodeModeReadsDigits checks what the person hears in code mode: the
// phone's recording holds the embedded clips of the code's digits, twice,
// in order.
func TestCodeModeReadsDigits(t *testing.T) {
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatalf("prompts: %v", err)
	}
	rec := filepath.Join(t.TempDir(), "heard.wav")
	phone, ended := newPhone(t, siptest.PhoneConfig{Record: rec})
	const code = "4071"
	var logs testbuf.Buffer
	placeCall(t, phone, sip.Options{Audio: sip.PromptAudio{Catalogue: cat},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))},
		verify.Call{Mode: verify.CallModeCode, Code: code, Locale: "en"}, verify.EventCompleted)
	pc := waitCall(t, ended, 5*time.Second)
	if l := logs.String(); strings.Contains(l, code) || strings.Contains(l, "digit_") || strings.Contains(l, "4915123456789") {
		t.Errorf("the gateway's log shows the code or the number:\n%s", l)
	}
	f, err := os.Open(pc.Recording)
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	defer f.Close()
	w, err := audio.ReadWAV(f)
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	heard := w.PCM()

	want := []prompts.ID{prompts.Greeting, prompts.CodeIntro}
	for i := range code {
		want = append(want, prompts.Digit(code[i]))
	}
	want = append(want, prompts.CodeAgain)
	for i := range code {
		want = append(want, prompts.Digit(code[i]))
	}
	want = append(want, prompts.Goodbye)
	pos := 0
	for _, id := range want {
		clip, err := cat.Audio("en", id, audio.PCMU)
		if err != nil {
			t.Fatal(err)
		}
		at := findClip(heard, audio.PCMU.Decode(nil, clip), pos)
		if at < 0 {
			t.Fatalf("prompt %s not heard after sample %d (recording %d samples)", id, pos, len(heard))
		}
		pos = at + len(clip)
	}
}

// findClip returns where clip starts in heard at or after from, or -1.
// Playback starts every prompt on a 20 ms frame, so frame offsets are
// tried first, then every sample.
func findClip(heard, clip []int16, from int) int {
	n := min(len(clip), 1600)
	if n == 0 {
		return -1
	}
	var energy int64
	for _, s := range clip[:n] {
		energy += abs(int64(s))
	}
	match := func(at int) bool {
		var diff int64
		for i := range n {
			diff += abs(int64(heard[at+i]) - int64(clip[i]))
		}
		return diff*20 < energy // within 5 %
	}
	for step := range []int{160, 1} {
		s := []int{160, 1}[step]
		for at := from - from%s; at+n <= len(heard); at += s {
			if at >= from && match(at) {
				return at
			}
		}
	}
	return -1
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestCloseEndsCalls shows the Caller owns its calls: Close hangs up the
// active call, reports it, and returns only when the call is over.
func TestCloseEndsCalls(t *testing.T) {
	phone, ended := newPhone(t, siptest.PhoneConfig{})
	rep := newReporter()
	caller := newCaller(t, rep, phone.LoopbackTrunk(), sip.Options{KeyTimeout: time.Minute})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventAnswered, 10*time.Second)
	if err := caller.Close(); err != nil {
		t.Fatal(err)
	}
	if n := caller.ActiveCalls(); n != 0 {
		t.Errorf("%d calls active after Close", n)
	}
	if d, ok := detail(rep.all("v1"), verify.EventFailed); !ok || d != "gateway shutting down" {
		t.Errorf("events %v, want failed (gateway shutting down)", rep.types("v1"))
	}
	if pc := waitCall(t, ended, 5*time.Second); pc.HungUpBy != "caller" {
		t.Errorf("phone: %+v, want the gateway's BYE", pc)
	}
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v2", To: "+4915123456789"}); err == nil {
		t.Error("a closed Caller placed a call")
	}
}

// TestDrainWaitsThenRefuses: Drain returns when the call in progress has
// ended by itself (the phone pressed #), 0 left, and new calls are
// refused from then on; with a call that does not end, it returns 1 when its context
// ends, and the call goes on for Close to end.
func TestDrainWaitsThenRefuses(t *testing.T) {
	phone, _ := newPhone(t, siptest.PhoneConfig{Press: "#", After: pressAfter})
	rep := newReporter()
	caller := newCaller(t, rep, phone.LoopbackTrunk(), sip.Options{KeyTimeout: time.Minute})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep.waitFor(t, "v1", verify.EventAnswered, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if left := caller.Drain(ctx); left != 0 {
		t.Fatalf("Drain left %d calls, want 0", left)
	}
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v2", To: "+4915123456789"}); !errors.Is(err, verify.ErrDraining) {
		t.Fatalf("Call after Drain: %v, want ErrDraining", err)
	}
	rep.waitFor(t, "v1", verify.EventCallApproved, 5*time.Second)

	silent, _ := newPhone(t, siptest.PhoneConfig{})
	rep2 := newReporter()
	c2 := newCaller(t, rep2, silent.LoopbackTrunk(), sip.Options{KeyTimeout: time.Minute})
	if _, err := c2.Call(context.Background(), verify.Call{VerificationID: "v3", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	rep2.waitFor(t, "v3", verify.EventAnswered, 10*time.Second)
	short, stop := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer stop()
	if left := c2.Drain(short); left != 1 {
		t.Fatalf("Drain of an unending call left %d, want 1", left)
	}
}
