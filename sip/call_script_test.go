package sip

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

// scriptMedia is a callMedia whose prompts "play" at once: each Play
// names its prompt (the fake audio is the prompt's ID) and hands the keys
// pressKeys gives for that prompt to the script, waiting until it took
// them, before it returns.
type scriptMedia struct {
	digits    chan rune
	pressKeys func(prompt string) string
	mu        sync.Mutex
	played    []string
}

func (m *scriptMedia) Play(ctx context.Context, g711 []byte) error {
	m.mu.Lock()
	m.played = append(m.played, string(g711))
	m.mu.Unlock()
	for _, k := range m.pressKeys(string(g711)) {
		select {
		case m.digits <- k:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (m *scriptMedia) Silence(context.Context, time.Duration) error { return nil }
func (m *scriptMedia) Digits() <-chan rune                          { return m.digits }
func (m *scriptMedia) Timeout() <-chan struct{}                     { return nil }
func (m *scriptMedia) Codec() audio.Codec                           { return audio.PCMU }

// idAudio speaks a prompt as its own ID.
type idAudio struct{}

func (idAudio) Audio(_ string, id prompts.ID, _ audio.Codec) ([]byte, error) { return []byte(id), nil }

// reportFunc takes a call's events.
type reportFunc func(ev verify.Event)

func (f reportFunc) Report(_ context.Context, _ string, ev verify.Event) error {
	f(ev)
	return nil
}

// runScript runs one approve-mode call script over m and returns the
// events reported.
func runScript(t *testing.T, m *scriptMedia, maxPrompts int) []verify.EventType {
	t.Helper()
	var mu sync.Mutex
	var got []verify.EventType
	rep := reportFunc(func(ev verify.Event) {
		mu.Lock()
		got = append(got, ev.Type)
		mu.Unlock()
	})
	c := &Caller{opt: Options{Audio: idAudio{}, MaxPrompts: maxPrompts, KeyTimeout: 50 * time.Millisecond}, ctx: context.Background()}
	cl := &call{c: c, rep: rep, id: "c1", v: verify.Call{VerificationID: "v1", Mode: verify.CallModeApprove}, log: slog.New(slog.DiscardHandler)}
	if end := cl.runScript(t.Context(), m); end != endLocal {
		t.Fatalf("script ended %v, want the gateway's hang-up", end)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

// TestScriptTakesKeysOnlyFromThePromptAskingForThem: a '#' heard while
// the greeting plays (one queued since early media, or in flight at the
// answer) neither cuts the greeting short nor approves; a '#' during the
// prompt that asks for it does.
func TestScriptTakesKeysOnlyFromThePromptAskingForThem(t *testing.T) {
	for _, tc := range []struct {
		name    string
		during  prompts.ID
		approve bool
	}{
		{"# during the greeting", prompts.Greeting, false},
		{"# during press-pound", prompts.PressPound, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &scriptMedia{digits: make(chan rune), pressKeys: func(p string) string {
				if p == string(tc.during) {
					return "#"
				}
				return ""
			}}
			got := runScript(t, m, 1)
			if approved := slices.Contains(got, verify.EventCallApproved); approved != tc.approve {
				t.Fatalf("events %v: approved %v, want %v", got, approved, tc.approve)
			}
			if len(m.played) < 2 || m.played[0] != string(prompts.Greeting) || m.played[1] != string(prompts.PressPound) {
				t.Fatalf("prompts %v: the greeting and press-pound must both play", m.played)
			}
		})
	}
}

// TestScriptTakesKeysDuringRepromptOnceAsked: once the call has asked for
// a key, a wrong key's reprompt takes a '#' pressed while it explains
// ("not recognised") as before: the person has heard the question.
func TestScriptTakesKeysDuringRepromptOnceAsked(t *testing.T) {
	asked := 0
	m := &scriptMedia{digits: make(chan rune), pressKeys: func(p string) string {
		switch p {
		case string(prompts.PressPound):
			if asked++; asked == 1 {
				return "1"
			}
		case string(prompts.NotRecognised):
			return "#"
		}
		return ""
	}}
	if got := runScript(t, m, 2); !slices.Contains(got, verify.EventCallApproved) {
		t.Fatalf("events %v (prompts %v), want the # during the reprompt to approve", got, m.played)
	}
}
