package media

import (
	"math"
	"time"
)

// DTMF frequencies (ITU-T Q.23): a key is one low-group (row) tone plus one
// high-group (column) tone.
var (
	dtmfRows = [4]float64{697, 770, 852, 941}
	dtmfCols = [4]float64{1209, 1336, 1477, 1633}
)

const dtmfLayout = "123A456B789C*0#D"

// In-band detection parameters. A block of 102 samples (12.75 ms at 8 kHz,
// the block spandsp uses) gives 78 Hz wide Goertzel bins: wide enough that a
// tone off by the ±1.5 % Q.24 lets senders drift loses only ~1.5 dB, and
// narrow enough that each DTMF frequency falls near the first null of its
// neighbours' filters (the closest pair is 73 Hz apart).
const (
	inbandBlock = 102
	// dBm0 reference: a sine of this 16-bit amplitude is 0 dBm0 in G.711
	// (3.17 dB below the codec's overload point).
	dBm0Amplitude = 22706.0
	// minToneLevel rejects tones quieter than -30 dBm0 each (Q.24 asks
	// receivers to work down to about -25 dBm0).
	minToneLevel = -30.0
	// Twist: the high-group tone may be up to 8 dB weaker (normal twist, as
	// lines attenuate high frequencies) or 4 dB stronger (reverse twist)
	// than the low-group tone.
	maxNormalTwist  = 8.0
	maxReverseTwist = 4.0
	// relativePeak: the strongest tone of each group must stand this far
	// above the other three of its group, which speech harmonics rarely do.
	relativePeak = 6.0
	// minToneShare: the two tones must hold this share of the block's
	// energy; speech and noise spread theirs across the band. It allows for
	// the ±1.5 % frequency tolerance and the G.711 quantisation noise.
	minToneShare = 0.55
	// minBlocks consecutive blocks with the same key make a press: three
	// blocks (38 ms) need a tone of about 40 ms, what Q.24 requires
	// receivers to accept; blips shorter than two blocks never count.
	minBlocks = 3
)

// goertzelCoef holds 2·cos(2πf/8000) for the eight DTMF frequencies.
var goertzelCoef = func() (c [8]float64) {
	for i, f := range append(dtmfRows[:], dtmfCols[:]...) {
		c[i] = 2 * math.Cos(2*math.Pi*f/8000)
	}
	return c
}()

// InbandDetector finds DTMF keys in 8 kHz linear audio with the Goertzel
// algorithm: per 12.75 ms block it measures the power of the eight DTMF
// frequencies and accepts a key only when one row and one column tone are
// loud enough (level), balanced (twist), clearly above their neighbours
// (relative peak), hold most of the block's energy (which rejects speech,
// music and noise), and persist for three blocks (minimum duration). A key is
// reported once per press; it can repeat after a block without it.
//
// An InbandDetector is not safe for concurrent use.
type InbandDetector struct {
	s1, s2 [8]float64 // Goertzel state per frequency
	energy float64    // Σx² of the block
	n      int        // samples in the current block
	cand   rune       // key seen in the previous blocks
	count  int        // consecutive blocks with cand
	sent   bool       // cand was already reported
}

// Feed runs samples through the detector and appends each new key press to
// dst, which it returns.
func (d *InbandDetector) Feed(dst []rune, pcm []int16) []rune {
	for _, v := range pcm {
		x := float64(v)
		d.energy += x * x
		for i := range d.s1 {
			s := x + goertzelCoef[i]*d.s1[i] - d.s2[i]
			d.s2[i], d.s1[i] = d.s1[i], s
		}
		d.n++
		if d.n == inbandBlock {
			dst = d.endBlock(dst)
		}
	}
	return dst
}

func (d *InbandDetector) endBlock(dst []rune) []rune {
	var p [8]float64
	for i := range p {
		// |X|² of the Goertzel filter, scaled to the power (A²/2) of a sine
		// of amplitude A at that frequency.
		mag := d.s1[i]*d.s1[i] + d.s2[i]*d.s2[i] - goertzelCoef[i]*d.s1[i]*d.s2[i]
		p[i] = 2 * mag / (inbandBlock * inbandBlock)
	}
	total := d.energy / inbandBlock
	d.s1, d.s2, d.energy, d.n = [8]float64{}, [8]float64{}, 0, 0

	key := classify(p, total)
	switch {
	case key == 0:
		d.cand, d.count, d.sent = 0, 0, false
	case key == d.cand:
		d.count++
	default:
		d.cand, d.count, d.sent = key, 1, false
	}
	if d.cand != 0 && !d.sent && d.count >= minBlocks {
		d.sent = true
		dst = append(dst, d.cand)
	}
	return dst
}

// classify returns the key whose tones the block holds, or 0.
func classify(p [8]float64, total float64) rune {
	r, c := 0, 4
	for i := 1; i < 4; i++ {
		if p[i] > p[r] {
			r = i
		}
		if p[4+i] > p[c] {
			c = 4 + i
		}
	}
	minPower := dBm0Amplitude * dBm0Amplitude / 2 * math.Pow(10, minToneLevel/10)
	if p[r] < minPower || p[c] < minPower {
		return 0
	}
	twist := 10 * math.Log10(p[c]/p[r]) // > 0: high group louder
	if twist > maxReverseTwist || twist < -maxNormalTwist {
		return 0
	}
	peak := math.Pow(10, relativePeak/10)
	for i := range 4 {
		if i != r && p[i]*peak > p[r] {
			return 0
		}
		if 4+i != c && p[4+i]*peak > p[c] {
			return 0
		}
	}
	if p[r]+p[c] < minToneShare*total {
		return 0
	}
	return rune(dtmfLayout[r*4+(c-4)])
}

// DTMFTone returns the in-band tone of a key as 8 kHz linear samples:
// both frequencies at level dBm0 each (-10 is a typical telephone's),
// for duration, with 5 ms ramps so the edges do not splatter. It returns
// nil for a rune that is not a key. Encode it with audio.Codec.Encode and send it
// with Session.Play; leave at least 40 ms between keys.
func DTMFTone(key rune, duration time.Duration, level float64) []int16 {
	if key >= 'a' && key <= 'd' {
		key -= 'a' - 'A'
	}
	idx := -1
	for i, k := range dtmfLayout {
		if k == key {
			idx = i
		}
	}
	if idx < 0 {
		return nil
	}
	fr, fc := dtmfRows[idx/4], dtmfCols[idx%4]
	amp := dBm0Amplitude * math.Pow(10, level/20)
	n := int(duration / samplePeriod)
	ramp := 40 // 5 ms
	out := make([]int16, n)
	for i := range out {
		t := float64(i) / 8000
		g := 1.0
		if i < ramp {
			g = float64(i) / float64(ramp)
		} else if n-1-i < ramp {
			g = float64(n-1-i) / float64(ramp)
		}
		v := g * amp * (math.Sin(2*math.Pi*fr*t) + math.Sin(2*math.Pi*fc*t))
		out[i] = int16(max(-32768, min(32767, v)))
	}
	return out
}
