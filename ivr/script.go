package ivr

import (
	"strings"
	"time"

	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

// Defaults for Script fields left zero (DESIGN.md §3: the prompt is
// repeated 3 times, 10 s for a key).
const (
	DefaultMaxPrompts = 3
	DefaultKeyTimeout = 10 * time.Second
)

// FinishKey is the key that ends a gather.
const FinishKey = "#"

// FraudKeys are the keys that, followed by FinishKey, report fraud ("0#").
const FraudKeys = "0"

// maxKeys bounds the keys a State carries, so an encoded State stays short.
const maxKeys = 8

// Reasons carried by Report actions that end a call without approval.
const (
	// ReasonNotConfirmed: MaxPrompts prompts went by without '#'.
	ReasonNotConfirmed = "not_confirmed"
	// ReasonNoCode: a code-mode call had no valid code to read.
	ReasonNoCode = "no_code"
	// ReasonFraudReported: the person pressed "0#".
	ReasonFraudReported = "fraud_reported"
)

// Script is what one verification call does. The zero MaxPrompts and
// KeyTimeout take their defaults.
type Script struct {
	Mode verify.CallMode
	// Code is the code in clear, for code mode only. The transport holds it
	// for the length of the call and never logs or stores it in clear.
	Code string
	// MaxPrompts is how many times the approve prompt is played before
	// the call gives up.
	MaxPrompts int
	// KeyTimeout is how long a gather waits for a key.
	KeyTimeout time.Duration
}

func (s Script) withDefaults() Script {
	if s.MaxPrompts <= 0 {
		s.MaxPrompts = DefaultMaxPrompts
	}
	if s.KeyTimeout <= 0 {
		s.KeyTimeout = DefaultKeyTimeout
	}
	if s.Mode == "" {
		s.Mode = verify.CallModeApprove
	}
	return s
}

// Start is the script's first step, taken when the call is answered. It
// is Step(s, State{}, Answered{}).
func Start(s Script) (State, []Action) {
	return Step(s, State{}, Answered{})
}

// Step applies ev to st and returns the next state and the actions to
// execute, in order. Events that do not apply in st's phase (a key after
// the call is over, a second Answered) change nothing and return no
// actions.
func Step(s Script, st State, ev Event) (State, []Action) {
	s = s.withDefaults()
	switch st.Phase {
	case PhaseNew:
		if _, ok := ev.(Answered); !ok {
			return st, nil
		}
		if s.Mode == verify.CallModeCode {
			return readCode(s)
		}
		return State{Phase: PhaseAsking, Tries: 1}, []Action{
			Play{Prompts: []prompts.ID{prompts.Greeting, prompts.PressPound}},
			gather(s),
		}
	case PhaseAsking:
		switch ev := ev.(type) {
		case Input:
			return input(s, st, ev)
		case Silence:
			if st.Keys != "" {
				// A key was pressed and never finished: a wrong entry.
				return reprompt(s, st, prompts.NotRecognised)
			}
			return reprompt(s, st, prompts.NoResponse)
		}
	}
	return st, nil
}

// input handles keys gathered in approve mode.
func input(s Script, st State, ev Input) (State, []Action) {
	keys := st.Keys + ev.Digits
	if !validKeys(ev.Digits) || len(keys) > maxKeys {
		return reprompt(s, st, prompts.NotRecognised)
	}
	if !ev.Finished {
		if keys != "" && strings.HasPrefix(FraudKeys, keys) {
			// On the way to "0#": gather the next key without a prompt.
			return State{Phase: PhaseAsking, Tries: st.Tries, Keys: keys}, []Action{gather(s)}
		}
		return reprompt(s, st, prompts.NotRecognised)
	}
	done := State{Phase: PhaseDone, Tries: st.Tries}
	switch keys {
	case "":
		return done, []Action{
			Report{Event: verify.EventCallApproved, Outcome: &verify.Outcome{Status: verify.StatusApproved}},
			Play{Prompts: []prompts.ID{prompts.VerifiedGoodbye}},
			Hangup{},
		}
	case FraudKeys:
		return done, []Action{
			Report{
				Event: verify.EventFraudReported, Detail: ReasonFraudReported,
				Outcome: &verify.Outcome{Status: verify.StatusDenied, Reason: ReasonFraudReported},
			},
			Play{Prompts: []prompts.ID{prompts.FraudGoodbye}},
			Hangup{},
		}
	}
	return reprompt(s, st, prompts.NotRecognised)
}

// reprompt plays why the last round failed and asks again, or gives up
// after MaxPrompts prompts.
func reprompt(s Script, st State, why prompts.ID) (State, []Action) {
	if st.Tries >= s.MaxPrompts {
		return State{Phase: PhaseDone, Tries: st.Tries}, []Action{
			Report{
				Event: verify.EventFailed, Detail: ReasonNotConfirmed,
				Outcome: &verify.Outcome{Status: verify.StatusFailed, Reason: ReasonNotConfirmed},
			},
			Play{Prompts: []prompts.ID{why, prompts.Goodbye}},
			Hangup{},
		}
	}
	return State{Phase: PhaseAsking, Tries: st.Tries + 1}, []Action{
		Play{Prompts: []prompts.ID{why, prompts.PressPound}},
		gather(s),
	}
}

// readCode speaks the code digit by digit, twice, and hangs up.
func readCode(s Script) (State, []Action) {
	done := State{Phase: PhaseDone, Tries: 1}
	if s.Code == "" || strings.Trim(s.Code, "0123456789") != "" {
		return done, []Action{
			// The code is the client's to check: the call leaves the
			// verification pending.
			Report{Event: verify.EventFailed, Detail: ReasonNoCode},
			Play{Prompts: []prompts.ID{prompts.Goodbye}},
			Hangup{},
		}
	}
	ids := append([]prompts.ID{prompts.Greeting}, prompts.CodeSequence(s.Code)...)
	ids = append(ids, prompts.Goodbye)
	return done, []Action{Play{Prompts: ids}, Hangup{}}
}

// Ended returns what a call of s that ended before its script decided
// meant: how is the event that reports the end (verify.EventNoAnswer,
// EventBusy, EventRejected, EventInvalidNumber, EventFailed or
// EventCompleted, hung up). An approve-mode call so ended was not
// approved: it fails, with how as the reason. A code-mode call decides
// nothing (the client checks the code), nor does any other event: nil.
// The transport reports how with this Outcome whether or not the script
// had decided first; the Service records only the first outcome of a
// verification.
func Ended(s Script, how verify.EventType) *verify.Outcome {
	s = s.withDefaults()
	if s.Mode != verify.CallModeApprove {
		return nil
	}
	switch how {
	case verify.EventNoAnswer, verify.EventBusy, verify.EventRejected, verify.EventInvalidNumber,
		verify.EventFailed, verify.EventCompleted:
		return &verify.Outcome{Status: verify.StatusFailed, Reason: string(how)}
	}
	return nil
}

// gather asks for one key: '#' to approve, or the first key of "0#".
func gather(s Script) Gather {
	return Gather{FinishOnKey: FinishKey, Timeout: s.KeyTimeout, MaxDigits: 1}
}

// validKeys reports whether d holds only keypad keys other than the
// finish key (a State carries no others).
func validKeys(d string) bool {
	return strings.Trim(d, keypad) == ""
}

const keypad = "0123456789*"
