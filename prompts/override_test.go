package prompts_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/internal/prompttest"
	"github.com/verigate/verigate/prompts"
)

func write(t *testing.T, name string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestAudioOverridesAccepted: each accepted format replaces the built-in
// clip with the operator's audio, converted to 8 kHz in both laws.
func TestAudioOverridesAccepted(t *testing.T) {
	tone8 := prompttest.Tone(440, 8000, 0.5, 8000)
	tone16 := prompttest.Tone(440, 16000, 0.5, 8000)
	for _, tc := range []struct {
		name string
		wav  []byte
	}{
		{"pcm 8 kHz", prompttest.WAV(prompttest.WAVFormat{Format: 1, Channels: 1, Rate: 8000, Bits: 16}, audio.AppendPCM(nil, tone8))},
		{"pcm 16 kHz", prompttest.WAV(prompttest.WAVFormat{Format: 1, Channels: 1, Rate: 16000, Bits: 16}, audio.AppendPCM(nil, tone16))},
		{"pcm 8 kHz with LIST chunk", prompttest.WAV(prompttest.WAVFormat{Format: 1, Channels: 1, Rate: 8000, Bits: 16}, audio.AppendPCM(nil, tone8), []byte("INFOodd"))},
		{"extensible pcm", extensible(audio.AppendPCM(nil, tone8))},
		{"µ-law 8 kHz", prompttest.WAV(prompttest.WAVFormat{Format: 7, Channels: 1, Rate: 8000, Bits: 8}, audio.PCMU.Encode(nil, tone8))},
		{"A-law 8 kHz", prompttest.WAV(prompttest.WAVFormat{Format: 6, Channels: 1, Rate: 8000, Bits: 8}, audio.PCMA.Encode(nil, tone8))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "de", "press_pound.wav"), tc.wav)
			write(t, filepath.Join(dir, "de", ".DS_Store"), []byte("ignored"))
			c := load(t, prompts.Options{AudioDir: dir})
			for _, law := range []audio.Codec{audio.PCMU, audio.PCMA} {
				got, err := c.Audio("de-DE", prompts.PressPound, law)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 4000 {
					t.Fatalf("%s: %d samples, want 4000 (0.5 s at 8 kHz)", law, len(got))
				}
				pcm := law.Decode(nil, got)
				if rms := audio.RMS(pcm[100 : len(pcm)-100]); rms < 5000 || rms > 6300 {
					t.Errorf("%s: RMS %.0f, want about 5657 (8000/√2)", law, rms)
				}
			}
			builtin := load(t, prompts.Options{})
			a, _ := c.Audio("de", prompts.Greeting, audio.PCMU)
			b, _ := builtin.Audio("de", prompts.Greeting, audio.PCMU)
			if !slices.Equal(a, b) {
				t.Error("an override of press_pound changed greeting")
			}
		})
	}
}

func extensible(data []byte) []byte {
	// A WAVE_FORMAT_EXTENSIBLE fmt chunk: 40 bytes, sub-format PCM.
	wav := prompttest.WAV(prompttest.WAVFormat{Format: 0xFFFE, Channels: 1, Rate: 8000, Bits: 16}, nil)
	fmtExt := append([]byte{}, wav[20:36]...)
	fmtExt = append(fmtExt, 22, 0, 16, 0, 4, 0, 0, 0)
	fmtExt = append(fmtExt, 1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71)
	body := append([]byte("WAVEfmt "), 40, 0, 0, 0)
	body = append(body, fmtExt...)
	body = append(body, 'd', 'a', 't', 'a', byte(len(data)), byte(len(data)>>8), 0, 0)
	body = append(body, data...)
	out := append([]byte("RIFF"), byte(len(body)), byte(len(body)>>8), 0, 0)
	return append(out, body...)
}

// TestAudioOverridesRejected: anything else stops start-up with an error
// naming the file.
func TestAudioOverridesRejected(t *testing.T) {
	tone := prompttest.Tone(440, 8000, 0.5, 8000)
	for _, tc := range []struct {
		name, file string
		data       []byte
		want       string
	}{
		{"stereo", "de/greeting.wav", prompttest.WAV(prompttest.WAVFormat{Format: 1, Channels: 2, Rate: 8000, Bits: 16}, audio.AppendPCM(nil, tone)), "stereo"},
		{"44.1 kHz", "de/greeting.wav", prompttest.WAV(prompttest.WAVFormat{Format: 1, Channels: 1, Rate: 44100, Bits: 16}, audio.AppendPCM(nil, tone)), "44.1 kHz"},
		{"8-bit pcm", "de/greeting.wav", prompttest.WAV(prompttest.WAVFormat{Format: 1, Channels: 1, Rate: 8000, Bits: 8}, make([]byte, 4000)), "PCM 8-bit"},
		{"float", "de/greeting.wav", prompttest.WAV(prompttest.WAVFormat{Format: 3, Channels: 1, Rate: 8000, Bits: 32}, make([]byte, 16000)), "format 3"},
		{"mp3 renamed", "de/greeting.wav", []byte("ID3\x03\x00\x00\x00\x00\x00\x00"), "not a RIFF/WAVE"},
		{"no data", "de/greeting.wav", prompttest.WAV(prompttest.WAVFormat{Format: 1, Channels: 1, Rate: 8000, Bits: 16}, nil), "no samples"},
		{"too long", "de/greeting.wav", prompttest.WAV(prompttest.WAVFormat{Format: 7, Channels: 1, Rate: 8000, Bits: 8}, make([]byte, 61*8000)), "more than 60 s"},
		{"unknown prompt", "de/greting.wav", prompttest.WAV(prompttest.WAVFormat{Format: 7, Channels: 1, Rate: 8000, Bits: 8}, audio.PCMU.Encode(nil, tone)), "spoken prompt"},
		{"text prompt", "de/sms_body.wav", prompttest.WAV(prompttest.WAVFormat{Format: 7, Channels: 1, Rate: 8000, Bits: 8}, audio.PCMU.Encode(nil, tone)), "spoken prompt"},
		{"not wav", "de/greeting.mp3", []byte("x"), "<prompt>.wav"},
		{"unknown locale", "xx/greeting.wav", prompttest.WAV(prompttest.WAVFormat{Format: 7, Channels: 1, Rate: 8000, Bits: 8}, audio.PCMU.Encode(nil, tone)), "not in the catalogue"},
		{"file at top", "greeting.wav", prompttest.WAV(prompttest.WAVFormat{Format: 7, Channels: 1, Rate: 8000, Bits: 8}, audio.PCMU.Encode(nil, tone)), "directory per locale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			name := write(t, filepath.Join(dir, tc.file), tc.data)
			_, err := prompts.Load(prompts.Options{AudioDir: dir})
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.name == "unknown locale" {
				name = filepath.Dir(name)
			}
			if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to name %s and say %q", err, name, tc.want)
			}
		})
	}
	if _, err := prompts.Load(prompts.Options{AudioDir: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing audio_dir was accepted")
	}
}

func TestTextOverrides(t *testing.T) {
	dir := t.TempDir()
	ok := write(t, filepath.Join(dir, "ok.yaml"), []byte(`
de:
  texts:
    press_pound: "Bitte drücken Sie jetzt die Raute."
    sms_body: "{code} ist Ihr {app}-Code."
en_GB:
  name: British English
  say: en-GB
  texts:
    press_pound: "Press the hash key to finish verifying your account."
`))
	c := load(t, prompts.Options{TextFile: ok, AppName: "Contoso", CodeLength: 6})
	if got := c.Text("de", prompts.PressPound); got != "Bitte drücken Sie jetzt die Raute." {
		t.Errorf("overridden text %q", got)
	}
	if got := c.SMSBody("de", "123456"); got != "123456 ist Ihr Contoso-Code." {
		t.Errorf("overridden SMS %q", got)
	}
	if got := c.Text("de", prompts.Greeting); got != "Vielen Dank, dass Sie unser Verifizierungssystem nutzen." {
		t.Errorf("a text not overridden changed: %q", got)
	}
	if got := c.Text("en-GB", prompts.PressPound); !strings.Contains(got, "hash key") {
		t.Errorf("en-GB override %q", got)
	}
	if got := c.Text("en-US", prompts.PressPound); !strings.Contains(got, "pound key") {
		t.Errorf("en-US got %q", got)
	}
	if got := c.SayLanguage("en-gb"); got != "en-GB" {
		t.Errorf("en-GB say language %q", got)
	}
	// en's voice (Polly.Joanna) speaks en-US: a variant with its own
	// language does not inherit it; one without does.
	if got := c.SayVoice("en-GB"); got != "" {
		t.Errorf("en-GB say voice %q, want Twilio's default", got)
	}
	if got := c.SayVoice("de-AT"); got != "Polly.Vicki" {
		t.Errorf("de-AT say voice %q", got)
	}
	// What en-GB does not define, it inherits from en.
	if got := c.Text("en-GB", prompts.Goodbye); got != c.Text("en", prompts.Goodbye) || got == "" {
		t.Errorf("en-GB goodbye %q", got)
	}
	gb, _ := c.Audio("en-GB", prompts.Digit3, audio.PCMU)
	en, _ := c.Audio("en", prompts.Digit3, audio.PCMU)
	if len(gb) == 0 || !slices.Equal(gb, en) {
		t.Error("en-GB does not speak en's digit_3")
	}

	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown prompt", "de:\n  texts:\n    press_pund: x\n", `unknown prompt "press_pund"`},
		{"unknown field", "de:\n  txts:\n    press_pound: x\n", "txts"},
		{"sms without code", "fr:\n  texts:\n    sms_body: \"Votre code {app}\"\n", "{code} exactly once"},
		{"sms code twice", "fr:\n  texts:\n    sms_body: \"{code} {code}\"\n", "{code} exactly once"},
		{"stray placeholder", "fr:\n  texts:\n    greeting: \"Bonjour {name}\"\n", "unknown placeholder"},
		{"empty text", "fr:\n  texts:\n    goodbye: \"  \"\n", "empty text"},
		{"bad tag", "de DE:\n  texts:\n    goodbye: x\n", "language tag"},
		{"incomplete new locale", "sw:\n  name: Kiswahili\n  texts:\n    goodbye: Kwaheri.\n", "locale sw: no text for greeting"},
		{"not yaml", "de: [\n", "text_file"},
		{"sms too long", "de:\n  texts:\n    sms_body: \"" + strings.Repeat("Sehr ", 40) + "{code}\"\n", "locale de: sms_body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := write(t, filepath.Join(t.TempDir(), "texts.yaml"), []byte(tc.yaml))
			_, err := prompts.Load(prompts.Options{TextFile: name})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), name) && tc.name != "incomplete new locale" && tc.name != "sms too long" {
				t.Fatalf("error %v does not name %s", err, name)
			}
		})
	}
}

// TestNewLocaleNeedsEverything: a locale added by the operator needs every
// text and every recording; with them it is negotiated like the others.
func TestNewLocaleNeedsEverything(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("fi:\n  name: Suomi\n  say: fi-FI\n  texts:\n")
	for _, id := range prompts.IDs() {
		text := "Suomeksi " + string(id)
		for _, ph := range id.Placeholders() {
			text += " " + ph
		}
		if id == prompts.SMSBody {
			text = "{app}-vahvistuskoodisi on {code}."
		}
		b.WriteString("    " + string(id) + ": \"" + text + "\"\n")
	}
	texts := write(t, filepath.Join(dir, "texts.yaml"), []byte(b.String()))
	audioDir := filepath.Join(dir, "audio")
	clip := prompttest.WAV(prompttest.WAVFormat{Format: 1, Channels: 1, Rate: 16000, Bits: 16}, audio.AppendPCM(nil, prompttest.Tone(300, 16000, 0.3, 6000)))
	for _, id := range prompts.SpokenIDs()[1:] {
		write(t, filepath.Join(audioDir, "fi", string(id)+".wav"), clip)
	}
	_, err := prompts.Load(prompts.Options{TextFile: texts, AudioDir: audioDir})
	if err == nil || !strings.Contains(err.Error(), "locale fi: no audio for greeting") {
		t.Fatalf("without fi/greeting.wav: %v", err)
	}
	write(t, filepath.Join(audioDir, "fi", "greeting.wav"), clip)
	c := load(t, prompts.Options{TextFile: texts, AudioDir: audioDir})
	if got := c.Negotiate("fi-FI"); got != "fi" {
		t.Fatalf("Negotiate(fi-FI) = %q", got)
	}
	if got := c.SMSBody("fi_FI", "1234"); got != "Verigate-vahvistuskoodisi on 1234." {
		t.Errorf("SMS %q", got)
	}
	if a, err := c.Audio("fi", prompts.Digit7, audio.PCMA); err != nil || len(a) != 2400 {
		t.Errorf("fi digit_7: %d samples, %v", len(a), err)
	}
}
