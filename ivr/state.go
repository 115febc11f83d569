package ivr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Phase is where a call's script stands.
type Phase uint8

// Phases. A call starts in PhaseNew (ringing), spends the approve prompt
// rounds in PhaseAsking and ends in PhaseDone.
const (
	PhaseNew Phase = iota
	PhaseAsking
	PhaseDone
)

var phaseNames = [...]string{PhaseNew: "new", PhaseAsking: "ask", PhaseDone: "done"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "phase(" + strconv.Itoa(int(p)) + ")"
}

// State is a call's place in the script: small enough to travel in a
// webhook URL. It never holds the code.
type State struct {
	Phase Phase
	// Tries is how many times the prompt has been played.
	Tries int
	// Keys are the keys gathered in this round that are on the way to an
	// answer ("0" before the '#' of "0#").
	Keys string
}

// ErrBadState is returned by DecodeState for a string Encode did not make.
var ErrBadState = errors.New("ivr: malformed state")

// maxTries bounds Tries in a decoded State.
const maxTries = 99

// Encode renders st as a short URL-safe string, e.g. "ask.2.0".
func (st State) Encode() string {
	return st.Phase.String() + "." + strconv.Itoa(st.Tries) + "." + st.Keys
}

// DecodeState parses a string made by State.Encode. It rejects anything
// else with ErrBadState, so a tampered URL cannot put the script in a
// state it could not reach (the webhook signature is checked first anyway).
func DecodeState(s string) (State, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return State{}, fmt.Errorf("%w: %q", ErrBadState, s)
	}
	var st State
	found := false
	for p, name := range phaseNames {
		if parts[0] == name {
			st.Phase, found = Phase(p), true
		}
	}
	tries, err := strconv.Atoi(parts[1])
	if !found || err != nil || tries < 0 || tries > maxTries || parts[1] != strconv.Itoa(tries) ||
		len(parts[2]) > maxKeys || !validKeys(parts[2]) {
		return State{}, fmt.Errorf("%w: %q", ErrBadState, s)
	}
	st.Tries, st.Keys = tries, parts[2]
	return st, nil
}
