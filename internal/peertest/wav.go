package peertest

import (
	"bytes"
	"fmt"
	"math"
	"os"

	"github.com/verigate/verigate/audio"
)

// ToneWAV returns a 16-bit mono PCM WAV at rate Hz: tone of freq Hz for
// toneSeconds at about -12 dBFS, then silence for silenceSeconds. baresip's
// aufile source hangs up when its file ends, so phones get a minute of
// padding.
func ToneWAV(rate int, freq float64, toneSeconds, silenceSeconds float64) []byte {
	n := int(float64(rate) * (toneSeconds + silenceSeconds))
	toneN := int(float64(rate) * toneSeconds)
	samples := make([]int16, n)
	for i := range toneN {
		samples[i] = int16(8192 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return audio.EncodePCMWAV(rate, samples)
}

// PCM is a phone's recording as 8 kHz linear samples.
type PCM struct {
	Samples []int16
}

// Duration is how long the audio lasts, in seconds.
func (p PCM) Duration() float64 { return float64(len(p.Samples)) / audio.SampleRate }

// RMS is the root mean square of the samples, in 16-bit sample units
// (silence is 0; a full-scale sine about 23170).
func (p PCM) RMS() float64 { return audio.RMS(p.Samples) }

// ReadWAV reads a WAV file a phone recorded (baresip's sndfile writes
// 16-bit mono PCM at the call's 8 kHz) as 8 kHz samples.
func ReadWAV(path string) (PCM, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return PCM{}, fmt.Errorf("read wav: %w", err)
	}
	w, err := audio.ReadWAV(bytes.NewReader(b))
	if err != nil {
		return PCM{}, fmt.Errorf("read wav %s: %w", path, err)
	}
	return PCM{Samples: w.PCM()}, nil
}
