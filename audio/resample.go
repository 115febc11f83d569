package audio

import "math"

// halfband is a 31-tap low-pass FIR (windowed sinc, cut-off at a quarter
// of the input rate) that keeps 16 kHz speech from aliasing when every
// second sample is dropped.
var halfband = func() [31]float64 {
	var h [31]float64
	var sum float64
	for i := range h {
		n := float64(i - 15)
		s := 0.5
		if n != 0 {
			s = math.Sin(math.Pi*n/2) / (math.Pi * n)
		}
		w := 0.54 - 0.46*math.Cos(2*math.Pi*float64(i)/30) // Hamming
		h[i] = s * w
		sum += h[i]
	}
	for i := range h {
		h[i] /= sum
	}
	return h
}()

// Downsample halves the sample rate (16 kHz to 8 kHz): low-pass, then
// decimate by two. Dropping every second sample alone would fold what 8 kHz
// cannot carry (above 4 kHz) back into the speech band as noise.
func Downsample(in []int16) []int16 {
	out := make([]int16, (len(in)+1)/2)
	for o := range out {
		c := 2 * o
		var acc float64
		for k, hk := range halfband {
			if j := c + k - 15; j >= 0 && j < len(in) {
				acc += hk * float64(in[j])
			}
		}
		out[o] = int16(max(-32768, min(32767, acc)))
	}
	return out
}
