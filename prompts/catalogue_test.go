package prompts_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

// required are the locales the catalogue promises; more are welcome.
var required = []string{"en", "de", "fr", "es", "it", "pt", "nl", "pl", "tr", "sv", "ja", "zh"}

func load(t testing.TB, opts prompts.Options) *prompts.Catalogue {
	t.Helper()
	c, err := prompts.Load(opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestEveryLocaleHasEveryText(t *testing.T) {
	c := load(t, prompts.Options{})
	locales := c.Locales()
	for _, want := range required {
		if !slices.Contains(locales, want) {
			t.Errorf("locale %s missing from %v", want, locales)
		}
	}
	en := c.Negotiate("en")
	for _, l := range locales {
		if got := c.Negotiate(l); got != l {
			t.Errorf("Negotiate(%q) = %q: a catalogue locale must serve itself", l, got)
		}
		if c.SayLanguage(l) == "" || c.SayVoice(l) == "" || c.Name(l) == "" {
			t.Errorf("%s: no say language, say voice or name", l)
		}
		seen := map[string]prompts.ID{}
		for _, id := range prompts.IDs() {
			text := c.Text(l, id)
			if strings.TrimSpace(text) == "" {
				t.Errorf("%s/%s: no text", l, id)
			}
			if strings.Contains(text, "{app}") {
				t.Errorf("%s/%s: {app} left in %q", l, id, text)
			}
			if l != en && id != prompts.Digit0 && text == c.Text(en, id) {
				// zero is "zero" in several languages; nothing else may be English.
				if !(id.Spoken() && strings.HasPrefix(string(id), "digit_")) {
					t.Errorf("%s/%s: still the English %q", l, id, text)
				}
			}
			if prev, dup := seen[text]; dup && strings.HasPrefix(string(id), "digit_") {
				t.Errorf("%s: %s and %s both read %q", l, prev, id, text)
			}
			seen[text] = id
		}
	}
}

// TestEnglishContracts holds the English wording the README, the API and
// the issue quote fixed.
func TestEnglishContracts(t *testing.T) {
	c := load(t, prompts.Options{AppName: "Contoso"})
	for id, want := range map[prompts.ID]string{
		prompts.Greeting:        "Thank you for using our verification system.",
		prompts.PressPound:      "Press the pound key to finish verifying your account.",
		prompts.NotRecognised:   "That key was not recognised.",
		prompts.NoResponse:      "We did not receive your response.",
		prompts.VerifiedGoodbye: "Your account has been verified. Goodbye.",
		prompts.FraudGoodbye:    "Your fraud report has been recorded. Goodbye.",
		prompts.Goodbye:         "Goodbye.",
		prompts.CodeIntro:       "Your verification code is",
		prompts.CodeAgain:       "Again:",
		prompts.SMSBody:         "Your Contoso verification code is {code}.",
	} {
		if got := c.Text("en", id); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if got, want := c.SMSBody("en-GB", "123456"), "Your Contoso verification code is 123456."; got != want {
		t.Errorf("SMSBody = %q, want %q", got, want)
	}
	var f verify.Formatter = c
	if got := f.SMSBody("de", "424242"); !strings.Contains(got, "424242") || !strings.Contains(got, "Bestätigungscode") {
		t.Errorf("German SMS body %q", got)
	}
}

func TestNegotiate(t *testing.T) {
	c := load(t, prompts.Options{})
	for _, tc := range []struct{ in, want string }{
		{"de", "de"},
		{"DE", "de"},
		{"de-AT", "de"},
		{"de_CH", "de"},
		{"de_DE.UTF-8", "de"},
		{"pt-BR", "pt-BR"},
		{"pt_br", "pt-BR"},
		{"PT-br", "pt-BR"},
		{"pt-BR-x-private", "pt-BR"},
		{"pt-PT", "pt"},
		{"pt-AO", "pt"},
		{"pt", "pt"},
		{"zh-Hans-CN", "zh"},
		{"zh-TW", "zh"},
		{"ja-JP", "ja"},
		{"sv-FI", "sv"},
		{"en-GB", "en"},
		{"xx-YY", "en"},
		{"klingon", "en"},
		{"", "en"},
		{"-", "en"},
		{" fr-CA ", "fr"},
	} {
		if got := c.Negotiate(tc.in); got != tc.want {
			t.Errorf("Negotiate(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	fr := load(t, prompts.Options{DefaultLocale: "FR"})
	if got := fr.Negotiate("xx"); got != "fr" {
		t.Errorf("with default_locale FR, Negotiate(xx) = %q", got)
	}
	if got := fr.Text("pt-BR", prompts.Goodbye); got != "Até logo." {
		t.Errorf("pt-BR goodbye = %q", got)
	}
	if _, err := prompts.Load(prompts.Options{DefaultLocale: "xx"}); err == nil || !strings.Contains(err.Error(), "default_locale") {
		t.Errorf("unknown default locale: %v", err)
	}
}

// TestAudioFiles checks every committed audio file: one per locale, spoken
// prompt and law, nothing else, each valid 8 kHz mono G.711 in the law its
// name says, audible and of a sane length, and the two laws the same clip.
func TestAudioFiles(t *testing.T) {
	c := load(t, prompts.Options{})
	want := map[string]bool{}
	for _, l := range c.Locales() {
		for _, id := range prompts.SpokenIDs() {
			var pcm [2][]int16
			for i, law := range []audio.Codec{audio.PCMU, audio.PCMA} {
				name := filepath.Join("audio", l, string(id)+"."+law.Name()+".wav")
				want[name] = true
				data, err := os.ReadFile(name)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				w, err := audio.ReadWAV(bytes.NewReader(data))
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				samples := w.Data
				if got, ok := w.Codec(); !ok || got != law {
					t.Errorf("%s holds %s", name, w)
				}
				embedded, err := c.Audio(l, id, law)
				if err != nil || !slices.Equal(embedded, samples) {
					t.Errorf("%s: Audio returns other samples (err %v)", name, err)
				}
				secs := float64(len(samples)) / 8000
				if secs < 0.15 || secs > 8 {
					t.Errorf("%s: %.2f s long, want 0.15 to 8 s", name, secs)
				}
				pcm[i] = law.Decode(nil, samples)
				if rms := audio.RMS(pcm[i]); rms < 1500 {
					t.Errorf("%s: RMS %.0f, too quiet (want ≥ 1500 of 32767)", name, rms)
				}
				if s := lead(pcm[i], 100); s > 0.03*8000 {
					t.Errorf("%s: %d samples of silence at the start, want it trimmed", name, s)
				}
			}
			if len(pcm[0]) != len(pcm[1]) {
				t.Errorf("%s/%s: µ-law and A-law lengths differ", l, id)
			} else if s := similarity(pcm[0], pcm[1]); s < 0.99 {
				t.Errorf("%s/%s: µ-law and A-law clips differ (correlation %.3f)", l, id, s)
			}
		}
	}
	err := filepath.WalkDir("audio", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !want[path] {
			t.Errorf("stray file %s: no locale or prompt of that name", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// lead counts the samples before the first one louder than level.
func lead(pcm []int16, level int16) int {
	for i, s := range pcm {
		if s > level || s < -level {
			return i
		}
	}
	return len(pcm)
}

func similarity(a, b []int16) float64 {
	var ab, aa, bb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		ab, aa, bb = ab+x*y, aa+x*x, bb+y*y
	}
	return ab / (sqrt(aa*bb) + 1e-9)
}

func sqrt(x float64) float64 {
	z := x / 2
	for range 60 {
		if z == 0 {
			return 0
		}
		z = (z + x/z) / 2
	}
	return z
}

func TestAudioErrors(t *testing.T) {
	c := load(t, prompts.Options{})
	for _, id := range []prompts.ID{prompts.SMSBody, "nonsense"} {
		if _, err := c.Audio("de", id, audio.PCMU); !errors.Is(err, prompts.ErrUnknownPrompt) {
			t.Errorf("Audio(%s) error %v, want ErrUnknownPrompt", id, err)
		}
	}
	if _, err := c.Render("de", []prompts.ID{prompts.Greeting, "nonsense"}, audio.PCMA, 0); !errors.Is(err, prompts.ErrUnknownPrompt) {
		t.Errorf("Render with an unknown prompt: %v", err)
	}
	if c.Text("de", "nonsense") != "" {
		t.Error("Text of an unknown prompt is not empty")
	}
}

func TestRenderJoinsClipsWithSilence(t *testing.T) {
	c := load(t, prompts.Options{})
	for _, law := range []audio.Codec{audio.PCMU, audio.PCMA} {
		a, _ := c.Audio("sv", prompts.Digit4, law)
		b, _ := c.Audio("sv", prompts.Digit2, law)
		got, err := c.Render("sv-SE", []prompts.ID{prompts.Digit4, prompts.Digit2}, law, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(a)+800+len(b) || !slices.Equal(got[:len(a)], a) || !slices.Equal(got[len(a)+800:], b) {
			t.Fatalf("%s: render is not clip, 800 samples, clip", law)
		}
		for _, s := range law.Decode(nil, got[len(a):len(a)+800]) {
			if s > 8 || s < -8 { // A-law has no zero: its quietest code is ±8
				t.Fatalf("%s: gap holds %d, want silence", law, s)
			}
		}
		wav, err := c.WAV("sv", prompts.Digit4, law)
		if err != nil {
			t.Fatal(err)
		}
		back, err := audio.ReadWAV(bytes.NewReader(wav))
		if err != nil {
			t.Fatalf("%s: WAV does not read back: %v", law, err)
		}
		if gotLaw, ok := back.Codec(); !ok || gotLaw != law || !slices.Equal(back.Data, a) {
			t.Fatalf("%s: WAV does not round-trip (holds %s)", law, back)
		}
	}
}
