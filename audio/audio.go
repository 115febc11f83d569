// Package audio holds 8 kHz telephone audio: the G.711 codecs (ITU-T G.711
// µ-law and A-law) and WAV files.
//
// Every other package that plays, records or checks audio (sip's media
// session and phone, the prompt catalogue, the test peers) uses this one,
// so that a prompt, a recording and a test fixture agree to the bit.
package audio

import "math"

// SampleRate is the rate of telephone audio, in samples per second: what
// G.711 carries, what the prompts are recorded at and what a WAV reader
// hands back.
const SampleRate = 8000

// RMS returns the root mean square of samples, in 16-bit sample units:
// silence is 0, a full-scale sine about 23170. Tests use it to tell a
// prompt from silence.
func RMS(samples []int16) float64 {
	if len(samples) == 0 {
		return 0
	}
	var sum float64
	for _, s := range samples {
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum / float64(len(samples)))
}
