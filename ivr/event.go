package ivr

import (
	"time"

	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

// Event is something the transport saw happen on the call: Answered,
// Input, Silence or HangUp.
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

// HangUp: the person (or the network) ended the call.
type HangUp struct{}

func (Answered) isEvent() {}
func (Input) isEvent()    {}
func (Silence) isEvent()  {}
func (HangUp) isEvent()   {}

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

// Report tells the verify.Service the outcome of the call: Event is
// verify.EventCallApproved (approves), verify.EventFraudReported (denies
// and blocks the number) or verify.EventFailed (not approved); Reason says
// why in a few words (ReasonNotConfirmed, ReasonNoCode, "fraud_reported").
// The transport reports it before it executes the actions that follow.
type Report struct {
	Event  verify.EventType
	Reason string
}

func (Play) isAction()   {}
func (Gather) isAction() {}
func (Hangup) isAction() {}
func (Report) isAction() {}
