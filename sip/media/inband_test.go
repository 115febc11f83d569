package media

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
)

// throughG711 sends linear audio through a codec and back, as the tones
// reach the gateway.
func throughG711(c audio.Codec, pcm []int16) []int16 { return c.Decode(nil, c.Encode(nil, pcm)) }

func silence(d time.Duration) []int16 { return make([]int16, int(d/samplePeriod)) }

func keysOf(pcm []int16) string {
	var d InbandDetector
	var got []rune
	// Feed in RTP-sized pieces, as the session does.
	for i := 0; i < len(pcm); i += FrameSamples {
		got = d.Feed(got, pcm[i:min(i+FrameSamples, len(pcm))])
	}
	return string(got)
}

func concat(parts ...[]int16) []int16 {
	var out []int16
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestInbandDetectsEveryKeyThroughG711(t *testing.T) {
	for _, c := range []audio.Codec{audio.PCMU, audio.PCMA} {
		var audio []int16
		for _, k := range dtmfLayout {
			audio = concat(audio, DTMFTone(k, 80*time.Millisecond, -10), silence(60*time.Millisecond))
		}
		if got := keysOf(throughG711(c, audio)); got != dtmfLayout {
			t.Errorf("%v: keys %q, want %q", c, got, dtmfLayout)
		}
	}
}

func TestInbandOnePerPressAndRepeats(t *testing.T) {
	long := DTMFTone('#', 2*time.Second, -10)
	if got := keysOf(throughG711(audio.PCMU, long)); got != "#" {
		t.Errorf("2 s press gave %q, want one #", got)
	}
	two := concat(DTMFTone('5', 60*time.Millisecond, -10), silence(50*time.Millisecond), DTMFTone('5', 60*time.Millisecond, -10))
	if got := keysOf(throughG711(audio.PCMU, two)); got != "55" {
		t.Errorf("two presses gave %q, want 55", got)
	}
}

func TestInbandLevelTwistAndDuration(t *testing.T) {
	tone := func(key rune, d time.Duration, lowDB, highDB float64, freqScale float64) []int16 {
		i := 0
		for j, k := range dtmfLayout {
			if k == key {
				i = j
			}
		}
		fr, fc := dtmfRows[i/4]*freqScale, dtmfCols[i%4]*freqScale
		out := make([]int16, int(d/samplePeriod))
		for n := range out {
			x := float64(n) / 8000
			out[n] = int16(dBm0Amplitude*math.Pow(10, lowDB/20)*math.Sin(2*math.Pi*fr*x) +
				dBm0Amplitude*math.Pow(10, highDB/20)*math.Sin(2*math.Pi*fc*x))
		}
		return concat(silence(30*time.Millisecond), throughG711(audio.PCMU, out), silence(30*time.Millisecond))
	}
	for _, tc := range []struct {
		name     string
		pcm      []int16
		detected bool
	}{
		{"typical -10 dBm0", tone('1', 100*time.Millisecond, -10, -10, 1), true},
		{"quiet -25 dBm0", tone('1', 100*time.Millisecond, -25, -25, 1), true},
		{"too quiet -40 dBm0", tone('1', 100*time.Millisecond, -40, -40, 1), false},
		{"normal twist 6 dB", tone('9', 100*time.Millisecond, -8, -14, 1), true},
		{"normal twist 12 dB", tone('9', 100*time.Millisecond, -6, -18, 1), false},
		{"reverse twist 3 dB", tone('9', 100*time.Millisecond, -13, -10, 1), true},
		{"reverse twist 8 dB", tone('9', 100*time.Millisecond, -18, -10, 1), false},
		{"frequency +1.5 %", tone('0', 100*time.Millisecond, -10, -10, 1.015), true},
		{"frequency -1.5 %", tone('0', 100*time.Millisecond, -10, -10, 0.985), true},
		{"frequency +5 % (not DTMF)", tone('0', 100*time.Millisecond, -10, -10, 1.05), false},
		{"45 ms key", tone('#', 45*time.Millisecond, -10, -10, 1), true},
		{"10 ms blip", tone('#', 10*time.Millisecond, -15, -15, 1), false},
		{"single tone", tone('1', 200*time.Millisecond, -10, -80, 1), false},
	} {
		got := keysOf(tc.pcm)
		if (got != "") != tc.detected || len(got) > 1 {
			t.Errorf("%s: keys %q, detected want %v", tc.name, got, tc.detected)
		}
	}
}

// TestInbandIgnoresSpeechAndNoise feeds audio that must never be a key:
// the prompt speech (the gateway's own voice, as a PBX echoes it back),
// noise, and the call-progress tones of a line.
func TestInbandIgnoresSpeechAndNoise(t *testing.T) {
	speech := readFixture(t, "espeak_prompt_ulaw.wav").PCM()
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]int16, 8000*5)
	for i := range noise {
		noise[i] = int16(rng.NormFloat64() * 3000)
	}
	// Speech-like noise: noise bursts shaped like syllables (4 Hz envelope)
	// through a crude formant resonance around 500 Hz and 1500 Hz.
	babble := make([]int16, 8000*5)
	var y1, y2, z1, z2 float64
	for i := range babble {
		env := 0.5 + 0.5*math.Sin(2*math.Pi*4*float64(i)/8000)
		x := rng.NormFloat64() * 2000 * env
		y := x + 1.8*math.Cos(2*math.Pi*500/8000)*0.95*y1 - 0.95*0.95*y2
		z := x + 1.8*math.Cos(2*math.Pi*1500/8000)*0.95*z1 - 0.95*0.95*z2
		y2, y1, z2, z1 = y1, y, z1, z
		babble[i] = int16(max(-32768, min(32767, 0.1*(y+z))))
	}
	pair := func(f1, f2 float64, d time.Duration) []int16 {
		out := make([]int16, int(d/samplePeriod))
		for i := range out {
			x := float64(i) / 8000
			out[i] = int16(7000 * (math.Sin(2*math.Pi*f1*x) + math.Sin(2*math.Pi*f2*x)))
		}
		return out
	}
	for name, pcm := range map[string][]int16{
		"espeak prompt":     speech,
		"prompt, louder":    scale(speech, 2.5),
		"white noise":       noise,
		"speech-like noise": babble,
		"dial tone 350+440": pair(350, 440, 2*time.Second),
		"ringback 440+480":  pair(440, 480, 2*time.Second),
		"busy 480+620":      pair(480, 620, 2*time.Second),
		"prompt over noise": mix(speech, noise),
	} {
		if got := keysOf(throughG711(audio.PCMU, pcm)); got != "" {
			t.Errorf("%s: detected %q", name, got)
		}
	}
	// And a key pressed while the prompt plays is still heard.
	withKey := mix(speech, concat(silence(time.Second), DTMFTone('#', 100*time.Millisecond, -5)))
	if got := keysOf(throughG711(audio.PCMU, withKey)); got != "#" {
		t.Errorf("key over the prompt: %q, want #", got)
	}
}

func scale(pcm []int16, g float64) []int16 {
	out := make([]int16, len(pcm))
	for i, v := range pcm {
		out[i] = int16(max(-32768, min(32767, float64(v)*g)))
	}
	return out
}

func mix(a, b []int16) []int16 {
	out := make([]int16, max(len(a), len(b)))
	for i := range out {
		var v int
		if i < len(a) {
			v += int(a[i])
		}
		if i < len(b) {
			v += int(b[i])
		}
		out[i] = int16(max(-32768, min(32767, v)))
	}
	return out
}

func BenchmarkInbandDetector(b *testing.B) {
	speech := readFixture(&testing.T{}, "espeak_prompt_ulaw.wav").PCM()
	var d InbandDetector
	var dst []rune
	b.SetBytes(int64(2 * len(speech)))
	b.ResetTimer()
	for range b.N {
		dst = d.Feed(dst[:0], speech)
	}
	b.ReportMetric(float64(b.N)*float64(len(speech))/b.Elapsed().Seconds(), "samples/s")
}

// TestInbandMinimumDurationAtEveryAlignment moves a key across the block
// grid: 50 ms keys (with their 5 ms ramps) must always count, 25 ms blips
// never.
func TestInbandMinimumDurationAtEveryAlignment(t *testing.T) {
	for off := range inbandBlock {
		lead := silence(time.Duration(off) * samplePeriod)
		long := concat(lead, DTMFTone('#', 50*time.Millisecond, -10), silence(50*time.Millisecond))
		if got := keysOf(throughG711(audio.PCMU, long)); got != "#" {
			t.Errorf("50 ms key at offset %d: %q", off, got)
		}
		short := concat(lead, DTMFTone('#', 25*time.Millisecond, -10), silence(50*time.Millisecond))
		if got := keysOf(throughG711(audio.PCMU, short)); got != "" {
			t.Errorf("25 ms blip at offset %d: %q", off, got)
		}
	}
}
