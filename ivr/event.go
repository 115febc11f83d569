package ivr

import (
	"time"

	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

// Event is something the transport saw happen on the call: Answered,
// Input or Silence. How a call ended (hung up, not answered) is no event
// of the script: the transport asks Ended what it meant.
type Event interface{ isEvent() }

// Answered: the person picked up.
type Answered struct{}

// Input: a gather ended with keys. Digits are the keys gathered before the
// finish key, without it; Finished reports that the finish key ended the
// gather (a lone '#' is Input{Digits: "", Finished: true}). Without
// Finished the gather ended because MaxDigits keys came, or because the
// key timeout passed after at least one key.
type Input struct {
	Digits   string
	Finished bool
}

// Silence: a gather's key timeout passed with no key at all.
type Silence struct{}

func (Answered) isEvent() {}
func (Input) isEvent()    {}
func (Silence) isEvent()  {}

// Action is something the transport must do, in the order returned: Play,
// Gather, Hangup or Report.
type Action interface{ isAction() }

// Play speaks the prompts in order, in the verification's locale.
type Play struct {
	Prompts []prompts.ID
}

// Gather waits for keys. It ends on FinishOnKey (not included in the
// digits), after MaxDigits keys (0: no limit), or when Timeout passes
// without a further key. A transport may let keys pressed during the Play
// just before it count (barge-in).
type Gather struct {
	FinishOnKey string
	Timeout     time.Duration
	MaxDigits   int
}

// Hangup ends the call after what was played before it.
type Hangup struct{}

// Report tells the verify.Service what happened: the transport reports an
// event of type Event, with Detail, carrying Outcome. Outcome is what the
// call meant for the verification (approved on '#'; denied, reason
// "fraud_reported", on "0#"; failed, reason ReasonNotConfirmed, after
// MaxPrompts prompts), or nil when the call decides nothing (a code-mode
// call, which the client's check decides). The transport reports it before
// it executes the actions that follow.
type Report struct {
	Event   verify.EventType
	Detail  string
	Outcome *verify.Outcome
}

func (Play) isAction()   {}
func (Gather) isAction() {}
func (Hangup) isAction() {}
func (Report) isAction() {}
