package audio_test

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/internal/prompttest"
)

// TestDownsampleFilters: a 16 kHz recording keeps its speech band and
// loses what 8 kHz cannot carry instead of folding it back as noise.
func TestDownsampleFilters(t *testing.T) {
	for _, tc := range []struct {
		freq     float64
		min, max float64 // RMS after conversion, of an input at 5657
	}{
		{1000, 5300, 6000},
		{3000, 4000, 6000},
		{6000, 0, 400},
		{7500, 0, 400},
	} {
		pcm := prompttest.Tone(tc.freq, 16000, 0.5, 8000)
		w, err := audio.ReadWAV(bytes.NewReader(audio.EncodePCMWAV(16000, pcm)))
		if err != nil {
			t.Fatal(err)
		}
		got := w.PCM()
		if len(got) != len(pcm)/2 {
			t.Fatalf("%d samples at 16 kHz → %d at 8 kHz", len(pcm), len(got))
		}
		if rms := audio.RMS(got[50 : len(got)-50]); rms < tc.min || rms > tc.max {
			t.Errorf("%g Hz at 16 kHz → RMS %.0f at 8 kHz, want %g..%g", tc.freq, rms, tc.min, tc.max)
		}
	}
}

func TestWAVParsing(t *testing.T) {
	tone := audio.PCMA.Encode(nil, prompttest.Tone(500, 8000, 0.1, 5000))
	// An odd-sized chunk before data is padded; the walker must skip the pad.
	withList := prompttest.WAV(prompttest.WAVFormat{Format: 6, Channels: 1, Rate: 8000, Bits: 8}, tone, []byte("odd"))
	w, err := audio.ReadWAV(bytes.NewReader(withList))
	if err != nil {
		t.Fatalf("WAV with LIST chunk: %v", err)
	}
	if c, ok := w.Codec(); !ok || c != audio.PCMA || !bytes.Equal(w.Data, tone) {
		t.Fatalf("WAV with LIST chunk: %d samples, %v %v", len(w.Data), c, ok)
	}
	pcm16 := audio.AppendPCM(nil, prompttest.Tone(440, 8000, 0.1, 8000))
	for _, tc := range []struct {
		name string
		b    []byte
		want string // what the error must say
	}{
		{"empty", nil, "not a RIFF/WAVE"},
		{"truncated fmt", withList[:20], "fmt chunk"},
		{"no data", withList[:36], "data chunk"},
		{"RIFF not WAVE", append([]byte("RIFF\x04\x00\x00\x00AVI "), tone...), "not a RIFF/WAVE"},
		{"16 kHz µ-law", prompttest.WAV(prompttest.WAVFormat{Format: 7, Channels: 1, Rate: 16000, Bits: 8}, tone), "16 kHz mono µ-law"},
		{"stereo", prompttest.WAV(prompttest.WAVFormat{Format: 1, Channels: 2, Rate: 8000, Bits: 16}, pcm16), "8 kHz stereo PCM 16-bit"},
		{"44.1 kHz", prompttest.WAV(prompttest.WAVFormat{Format: 1, Channels: 1, Rate: 44100, Bits: 16}, pcm16), "44.1 kHz mono"},
		{"8-bit pcm", prompttest.WAV(prompttest.WAVFormat{Format: 1, Channels: 1, Rate: 8000, Bits: 8}, tone), "PCM 8-bit"},
		{"float", prompttest.WAV(prompttest.WAVFormat{Format: 3, Channels: 1, Rate: 8000, Bits: 32}, make([]byte, 64)), "format 3"},
	} {
		_, err := audio.ReadWAV(bytes.NewReader(tc.b))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to say %q", tc.name, err, tc.want)
		}
	}
	for _, c := range []audio.Codec{audio.PCMU, audio.PCMA} {
		w, err := audio.ReadWAV(bytes.NewReader(audio.EncodeWAV(tone[:7], c)))
		if err != nil {
			t.Fatalf("odd-length EncodeWAV %v: %v", c, err)
		}
		if got, ok := w.Codec(); !ok || got != c || !bytes.Equal(w.Data, tone[:7]) || w.SampleRate != 8000 {
			t.Errorf("EncodeWAV %v read back as %v (%v), %d Hz, %d bytes", c, got, ok, w.SampleRate, len(w.Data))
		}
	}
}

func TestPCMWAVRoundTripAndRMS(t *testing.T) {
	pcm := append(prompttest.Tone(1000, 8000, 0.5, 8192), make([]int16, 4000)...)
	w, err := audio.ReadWAV(bytes.NewReader(audio.EncodePCMWAV(8000, pcm)))
	if err != nil {
		t.Fatal(err)
	}
	got := w.PCM()
	if w.SampleRate != 8000 || w.Channels != 1 || len(got) != 8000 {
		t.Fatalf("decoded rate %d channels %d samples %d", w.SampleRate, w.Channels, len(got))
	}
	tone, silence := audio.RMS(got[:4000]), audio.RMS(got[4000:])
	if want := 8192 / math.Sqrt2; math.Abs(tone-want) > 50 || silence != 0 {
		t.Errorf("tone RMS %.0f (want about %.0f), silence RMS %.0f", tone, want, silence)
	}
	if audio.RMS(nil) != 0 {
		t.Error("RMS of nothing is not 0")
	}
	if _, err := audio.ReadWAV(bytes.NewReader([]byte("RIFF....WAVEjunk"))); err == nil {
		t.Error("a file without data decoded")
	}
}
