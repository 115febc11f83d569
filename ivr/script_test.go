package ivr_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/verigate/verigate/ivr"
	p "github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

func play(ids ...p.ID) ivr.Action { return ivr.Play{Prompts: ids} }

var (
	ask    = ivr.Gather{FinishOnKey: "#", Timeout: 10 * time.Second, MaxDigits: 1}
	hangup = ivr.Hangup{}
)

func report(t verify.EventType, status verify.Status, reason string) ivr.Action {
	return ivr.Report{Event: t, Detail: reason, Outcome: &verify.Outcome{Status: status, Reason: reason}}
}

type step struct {
	ev    ivr.Event
	want  []ivr.Action
	phase ivr.Phase
}

// run starts the script and feeds it the steps, checking every step's
// actions and phase, and that every state survives Encode/DecodeState.
func run(t *testing.T, s ivr.Script, first []ivr.Action, steps []step) {
	t.Helper()
	st, got := ivr.Start(s)
	if !reflect.DeepEqual(got, first) {
		t.Fatalf("start: actions\n got %#v\nwant %#v", got, first)
	}
	for i, sp := range steps {
		dec, err := ivr.DecodeState(st.Encode())
		if err != nil || dec != st {
			t.Fatalf("step %d: state %+v encoded %q decoded %+v, %v", i, st, st.Encode(), dec, err)
		}
		st, got = ivr.Step(s, dec, sp.ev)
		if !reflect.DeepEqual(got, sp.want) {
			t.Fatalf("step %d (%#v): actions\n got %#v\nwant %#v", i, sp.ev, got, sp.want)
		}
		if st.Phase != sp.phase {
			t.Fatalf("step %d (%#v): phase %v, want %v", i, sp.ev, st.Phase, sp.phase)
		}
	}
}

func TestApproveScript(t *testing.T) {
	approve := ivr.Script{Mode: verify.CallModeApprove}
	greet := []ivr.Action{play(p.Greeting, p.PressPound), ask}
	approved := []ivr.Action{report(verify.EventCallApproved, verify.StatusApproved, ""), play(p.VerifiedGoodbye), hangup}
	fraud := []ivr.Action{report(verify.EventFraudReported, verify.StatusDenied, "fraud_reported"), play(p.FraudGoodbye), hangup}
	again := func(why p.ID) []ivr.Action { return []ivr.Action{play(why, p.PressPound), ask} }
	giveUp := func(why p.ID) []ivr.Action {
		return []ivr.Action{report(verify.EventFailed, verify.StatusFailed, ivr.ReasonNotConfirmed), play(why, p.Goodbye), hangup}
	}
	pound := ivr.Input{Finished: true}
	const asking, done = ivr.PhaseAsking, ivr.PhaseDone

	tests := []struct {
		name  string
		steps []step
	}{
		{"pound approves", []step{{pound, approved, done}}},
		{"zero pound in one gather reports fraud", []step{{ivr.Input{Digits: "0", Finished: true}, fraud, done}}},
		{"zero then pound, one key per gather, reports fraud", []step{
			{ivr.Input{Digits: "0"}, []ivr.Action{ask}, asking},
			{pound, fraud, done},
		}},
		{"wrong key then pound", []step{
			{ivr.Input{Digits: "5"}, again(p.NotRecognised), asking},
			{pound, approved, done},
		}},
		{"wrong keys before pound", []step{
			{ivr.Input{Digits: "12", Finished: true}, again(p.NotRecognised), asking},
			{pound, approved, done},
		}},
		{"zero then wrong key", []step{
			{ivr.Input{Digits: "0"}, []ivr.Action{ask}, asking},
			{ivr.Input{Digits: "3"}, again(p.NotRecognised), asking},
			{pound, approved, done},
		}},
		{"zero zero pound is not fraud", []step{
			{ivr.Input{Digits: "00", Finished: true}, again(p.NotRecognised), asking},
		}},
		{"zero then silence is a wrong entry", []step{
			{ivr.Input{Digits: "0"}, []ivr.Action{ask}, asking},
			{ivr.Silence{}, again(p.NotRecognised), asking},
			{pound, approved, done},
		}},
		{"silence then pound", []step{
			{ivr.Silence{}, again(p.NoResponse), asking},
			{pound, approved, done},
		}},
		{"silence three times gives up", []step{
			{ivr.Silence{}, again(p.NoResponse), asking},
			{ivr.Silence{}, again(p.NoResponse), asking},
			{ivr.Silence{}, giveUp(p.NoResponse), done},
			{pound, nil, done},
		}},
		{"wrong keys three times give up", []step{
			{ivr.Input{Digits: "1"}, again(p.NotRecognised), asking},
			{ivr.Silence{}, again(p.NoResponse), asking},
			{ivr.Input{Digits: "9", Finished: true}, giveUp(p.NotRecognised), done},
		}},
		{"pound on the last prompt approves", []step{
			{ivr.Silence{}, again(p.NoResponse), asking},
			{ivr.Silence{}, again(p.NoResponse), asking},
			{pound, approved, done},
		}},
		{"non-keypad input is not recognised", []step{
			{ivr.Input{Digits: "x"}, again(p.NotRecognised), asking},
		}},
		{"second answered changes nothing", []step{
			{ivr.Answered{}, nil, asking},
			{pound, approved, done},
		}},
		{"events after approval change nothing", []step{
			{pound, approved, done},
			{ivr.Silence{}, nil, done},
			{ivr.Input{Digits: "0", Finished: true}, nil, done},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, approve, greet, tt.steps) })
	}
}

func TestApproveScriptLimits(t *testing.T) {
	s := ivr.Script{Mode: verify.CallModeApprove, MaxPrompts: 1, KeyTimeout: 4 * time.Second}
	g := ivr.Gather{FinishOnKey: "#", Timeout: 4 * time.Second, MaxDigits: 1}
	run(t, s, []ivr.Action{play(p.Greeting, p.PressPound), g}, []step{
		{ivr.Silence{}, []ivr.Action{report(verify.EventFailed, verify.StatusFailed, ivr.ReasonNotConfirmed), play(p.NoResponse, p.Goodbye), hangup}, ivr.PhaseDone},
	})
}

func TestScriptBeforeAnswer(t *testing.T) {
	s := ivr.Script{Mode: verify.CallModeApprove}
	for _, ev := range []ivr.Event{ivr.Input{Finished: true}, ivr.Silence{}} {
		st, acts := ivr.Step(s, ivr.State{}, ev)
		if st != (ivr.State{}) || acts != nil {
			t.Errorf("%#v before answer: %+v %#v, want no change", ev, st, acts)
		}
	}
}

func TestEnded(t *testing.T) {
	approve, code := ivr.Script{Mode: verify.CallModeApprove}, ivr.Script{Mode: verify.CallModeCode}
	failed := func(reason string) *verify.Outcome {
		return &verify.Outcome{Status: verify.StatusFailed, Reason: reason}
	}
	tests := []struct {
		s    ivr.Script
		how  verify.EventType
		want *verify.Outcome
	}{
		{approve, verify.EventNoAnswer, failed("no_answer")},
		{approve, verify.EventBusy, failed("busy")},
		{approve, verify.EventRejected, failed("rejected")},
		{approve, verify.EventInvalidNumber, failed("invalid_number")},
		{approve, verify.EventFailed, failed("failed")},
		{approve, verify.EventCompleted, failed("completed")},
		{ivr.Script{}, verify.EventCompleted, failed("completed")}, // approve is the default mode
		{approve, verify.EventRinging, nil},
		{approve, verify.EventAnswered, nil},
		{approve, verify.EventKeyPressed, nil},
		{code, verify.EventNoAnswer, nil},
		{code, verify.EventCompleted, nil},
	}
	for _, tt := range tests {
		if got := ivr.Ended(tt.s, tt.how); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Ended(%s, %s) = %+v, want %+v", tt.s.Mode, tt.how, got, tt.want)
		}
	}
}

func TestCodeScript(t *testing.T) {
	// The call cannot read the code, and decides nothing: the client checks codes.
	noCode := ivr.Report{Event: verify.EventFailed, Detail: ivr.ReasonNoCode}
	tests := []struct {
		name  string
		code  string
		first []ivr.Action
	}{
		{"reads the code twice", "407129", []ivr.Action{play(
			p.Greeting, p.CodeIntro,
			p.Digit4, p.Digit0, p.Digit7, p.Digit1, p.Digit2, p.Digit9,
			p.CodeAgain,
			p.Digit4, p.Digit0, p.Digit7, p.Digit1, p.Digit2, p.Digit9,
			p.Goodbye), hangup}},
		{"leading zeros are read", "0038", []ivr.Action{play(
			p.Greeting, p.CodeIntro, p.Digit0, p.Digit0, p.Digit3, p.Digit8,
			p.CodeAgain, p.Digit0, p.Digit0, p.Digit3, p.Digit8, p.Goodbye), hangup}},
		{"no code", "", []ivr.Action{noCode, play(p.Goodbye), hangup}},
		{"not digits", "12a4", []ivr.Action{noCode, play(p.Goodbye), hangup}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run(t, ivr.Script{Mode: verify.CallModeCode, Code: tt.code}, tt.first, []step{
				{ivr.Input{Finished: true}, nil, ivr.PhaseDone},
				{ivr.Silence{}, nil, ivr.PhaseDone},
			})
		})
	}
}

func TestCodeNeverInState(t *testing.T) {
	st, _ := ivr.Start(ivr.Script{Mode: verify.CallModeCode, Code: "918273"})
	if enc := st.Encode(); len(enc) > 12 || st.Keys != "" {
		t.Fatalf("state %q carries more than the phase", enc)
	}
}

func TestDecodeState(t *testing.T) {
	good := []ivr.State{
		{}, {Phase: ivr.PhaseAsking, Tries: 1}, {Phase: ivr.PhaseAsking, Tries: 3, Keys: "0"},
		{Phase: ivr.PhaseDone, Tries: 99, Keys: "0123456*"},
	}
	for _, st := range good {
		got, err := ivr.DecodeState(st.Encode())
		if err != nil || got != st {
			t.Errorf("DecodeState(%q) = %+v, %v; want %+v", st.Encode(), got, err, st)
		}
	}
	bad := []string{"", "ask", "ask.1", "ask.1.0.0", "talk.1.", "ask.-1.", "ask.100.", "ask.01.",
		"ask.+1.", "ask.1.#", "ask.1.012345678", "ask.x.", "ask.1.A"}
	for _, s := range bad {
		if st, err := ivr.DecodeState(s); !errors.Is(err, ivr.ErrBadState) {
			t.Errorf("DecodeState(%q) = %+v, %v; want ErrBadState", s, st, err)
		}
	}
}

func FuzzDecodeState(f *testing.F) {
	for _, s := range []string{"new.0.", "ask.2.0", "done.3.", "ask.1.*9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ivr.DecodeState(s)
		if err != nil {
			return
		}
		if again, err := ivr.DecodeState(st.Encode()); err != nil || again != st {
			t.Fatalf("%q decoded to %+v, which re-encodes to %q: %+v, %v", s, st, st.Encode(), again, err)
		}
	})
}
