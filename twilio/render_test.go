package twilio

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/ivr"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

type testTexts struct{}

func (testTexts) Text(locale string, id prompts.ID) string { return locale + ":" + string(id) }
func (testTexts) SayLanguage(locale string) string         { return locale + "-XX" }
func (testTexts) SayVoice(string) string                   { return "not used: speech carries the voice" }

func TestRender(t *testing.T) {
	sp := speech{texts: testTexts{}, locale: "de", voice: "Polly.Vicki"}
	const head = `<?xml version="1.0" encoding="UTF-8"?><Response>`
	tests := []struct {
		name string
		acts []ivr.Action
		want string
	}{
		{"prompt nested in a one-key gather, then the silence redirect",
			[]ivr.Action{
				ivr.Play{Prompts: []prompts.ID{prompts.Greeting, prompts.PressPound}},
				ivr.Gather{FinishOnKey: "#", Timeout: 10 * time.Second, MaxDigits: 1},
			},
			head + `<Gather action="https://g/gather?a=1&amp;b=2" finishOnKey="" input="dtmf" method="POST" numDigits="1" timeout="10">` +
				`<Say language="de-XX" voice="Polly.Vicki">de:greeting</Say><Say language="de-XX" voice="Polly.Vicki">de:press_pound</Say>` +
				`</Gather><Redirect method="POST">https://g/silence</Redirect></Response>`},
		{"report left out, goodbye and hangup",
			[]ivr.Action{
				ivr.Report{Event: verify.EventCallApproved},
				ivr.Play{Prompts: []prompts.ID{prompts.VerifiedGoodbye}},
				ivr.Hangup{},
			},
			head + `<Say language="de-XX" voice="Polly.Vicki">de:verified_goodbye</Say><Hangup/></Response>`},
		{"timeout rounds up to whole seconds",
			[]ivr.Action{ivr.Gather{FinishOnKey: "#", Timeout: 1500 * time.Millisecond, MaxDigits: 1}},
			head + `<Gather action="https://g/gather?a=1&amp;b=2" finishOnKey="" input="dtmf" method="POST" numDigits="1" timeout="2"/>` +
				`<Redirect method="POST">https://g/silence</Redirect></Response>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := render(sp, tt.acts, "https://g/gather?a=1&b=2", "https://g/silence")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestRenderRefusesOtherGathers(t *testing.T) {
	sp := speech{texts: testTexts{}}
	for _, g := range []ivr.Gather{{FinishOnKey: "#", MaxDigits: 4}, {FinishOnKey: "*", MaxDigits: 1}, {MaxDigits: 1}} {
		if _, err := render(sp, []ivr.Action{g}, "a", "b"); !errors.Is(err, errGatherShape) {
			t.Errorf("render %+v: %v, want errGatherShape", g, err)
		}
	}
}

func TestInputEvent(t *testing.T) {
	tests := []struct {
		digits string
		want   ivr.Event
	}{
		{"#", ivr.Input{Finished: true}},
		{"0", ivr.Input{Digits: "0"}},
		{"*", ivr.Input{Digits: "*"}},
		{"12#", ivr.Input{Digits: "12", Finished: true}},
		{"", ivr.Silence{}},
	}
	for _, tt := range tests {
		if got := inputEvent(tt.digits); got != tt.want {
			t.Errorf("inputEvent(%q) = %#v, want %#v", tt.digits, got, tt.want)
		}
	}
}

func TestSeal(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, err := newSealer("a server secret of enough length")
	if err != nil {
		t.Fatal(err)
	}
	cc := callContext{ID: "v123", Mode: verify.CallModeCode, Locale: "fr", Code: "048213", Expires: now.Add(time.Hour).Unix()}
	tok, err := s.seal(cc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.open(tok, now)
	if err != nil || got != cc {
		t.Fatalf("open = %+v, %v; want %+v", got, err, cc)
	}
	other, _ := newSealer("another server secret, as long")
	flipped := []byte(tok)
	flipped[len(flipped)/2] ^= 1
	for name, try := range map[string]func() (callContext, error){
		"expired":       func() (callContext, error) { return s.open(tok, now.Add(2*time.Hour)) },
		"other secret":  func() (callContext, error) { return other.open(tok, now) },
		"flipped bit":   func() (callContext, error) { return s.open(string(flipped), now) },
		"not base64":    func() (callContext, error) { return s.open("!!!", now) },
		"short":         func() (callContext, error) { return s.open("AAAA", now) },
		"empty context": func() (callContext, error) { return s.open("", now) },
	} {
		if _, err := try(); !errors.Is(err, ErrBadContext) {
			t.Errorf("%s: %v, want ErrBadContext", name, err)
		}
	}
	again, _ := s.seal(cc)
	if again == tok {
		t.Error("two seals of one context are equal: the nonce is not fresh")
	}
	if _, err := newSealer("short"); err == nil {
		t.Error("a short secret was accepted")
	}
}

func TestStatusMapping(t *testing.T) {
	sms := []struct {
		status string
		want   verify.EventType
		ok     bool
	}{
		{"queued", verify.EventQueued, true},
		{"sent", verify.EventSent, true},
		{"delivered", verify.EventDelivered, true},
		{"undelivered", verify.EventUndelivered, true},
		{"failed", verify.EventFailed, true},
		{"read", verify.EventDelivered, true},
		{"canceled", verify.EventSendFailed, true},
		{"sending", "", false},
		{"accepted", "", false},
		{"", "", false},
	}
	for _, tt := range sms {
		if got, ok := SMSEvent(tt.status); got != tt.want || ok != tt.ok {
			t.Errorf("SMSEvent(%q) = %q, %v; want %q, %v", tt.status, got, ok, tt.want, tt.ok)
		}
	}
	calls := []struct {
		status string
		want   verify.EventType
		ok     bool
	}{
		{"queued", verify.EventQueued, true},
		{"initiated", verify.EventSent, true},
		{"ringing", verify.EventRinging, true},
		{"in-progress", verify.EventAnswered, true},
		{"completed", verify.EventCompleted, true},
		{"busy", verify.EventBusy, true},
		{"no-answer", verify.EventNoAnswer, true},
		{"failed", verify.EventFailed, true},
		{"canceled", verify.EventFailed, true},
		{"answered", "", false},
	}
	for _, tt := range calls {
		if got, ok := CallEvent(tt.status); got != tt.want || ok != tt.ok {
			t.Errorf("CallEvent(%q) = %q, %v; want %q, %v", tt.status, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzInputEvent(f *testing.F) {
	for _, s := range []string{"#", "0", "12#", "", "##", "*#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, digits string) {
		switch ev := inputEvent(digits).(type) {
		case ivr.Silence:
			if digits != "" {
				t.Fatalf("%q became silence", digits)
			}
		case ivr.Input:
			if ev.Finished && ev.Digits+ivr.FinishKey != digits || !ev.Finished && ev.Digits != digits {
				t.Fatalf("%q became %#v", digits, ev)
			}
		default:
			t.Fatalf("%q became %#v", digits, ev)
		}
	})
}

func FuzzOpenContext(f *testing.F) {
	s, err := newSealer("a server secret of enough length")
	if err != nil {
		f.Fatal(err)
	}
	// A fixed nonce, so the seed token is the same in every fuzz worker.
	s.random = zeros{}
	now := time.Unix(1_700_000_000, 0)
	tok, _ := s.seal(callContext{ID: "v1", Mode: verify.CallModeApprove, Expires: now.Unix() + 60})
	f.Add(tok)
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, token string) {
		cc, err := s.open(token, now)
		if err == nil && token != tok {
			t.Fatalf("forged token %q opened to %+v", token, cc)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// testAudio serves a clip for every prompt: its ID as bytes.
type testAudio struct{}

func (testAudio) Path(locale string, id prompts.ID, law audio.Codec) string {
	return locale + "/" + string(id) + "." + law.Name() + ".wav"
}

func (testAudio) WAV(_ string, id prompts.ID, law audio.Codec) ([]byte, error) {
	if !id.Spoken() {
		return nil, prompts.ErrUnknownPrompt
	}
	return audio.EncodeWAV([]byte(id), law), nil
}

func TestRenderPlay(t *testing.T) {
	sp := speech{texts: testTexts{}, locale: "de", voice: "unused", clips: newClips(testAudio{}, "https://gw/twilio")}
	got, err := render(sp, []ivr.Action{
		ivr.Play{Prompts: []prompts.ID{prompts.Greeting}},
		ivr.Gather{FinishOnKey: "#", Timeout: 10 * time.Second, MaxDigits: 1},
	}, "https://g/gather", "https://g/silence")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := sp.clips.url("de", prompts.Greeting)
	want := `<?xml version="1.0" encoding="UTF-8"?><Response>` +
		`<Gather action="https://g/gather" finishOnKey="" input="dtmf" method="POST" numDigits="1" timeout="10">` +
		`<Play>` + u + `</Play></Gather><Redirect method="POST">https://g/silence</Redirect></Response>`
	if got != want || !strings.HasPrefix(u, "https://gw/twilio/audio/de/greeting.ulaw.wav?v=") {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := render(sp, []ivr.Action{ivr.Play{Prompts: []prompts.ID{prompts.SMSBody}}}, "a", "b"); !errors.Is(err, prompts.ErrUnknownPrompt) {
		t.Fatalf("a prompt without audio: %v, want ErrUnknownPrompt", err)
	}
}
