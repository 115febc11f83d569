// Package prompttest helps tests that play or record prompts: it writes
// WAV fixtures, and recognises which prompts a recording holds by
// cross-correlating it with the catalogue's own clips, so a test can
// check that a call read the right digits in the right order.
package prompttest

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/cmplx"
	"sort"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/prompts"
)

// WAVFormat describes a WAV fixture.
type WAVFormat struct {
	Format   uint16 // 1 PCM, 6 A-law, 7 µ-law, 3 IEEE float, 0xFFFE extensible
	Channels int
	Rate     int
	Bits     int
}

// WAV returns a WAV file holding data, with the fmt chunk f describes and
// an optional chunk (such as LIST) before the data chunk, as editors write.
func WAV(f WAVFormat, data []byte, extra ...[]byte) []byte {
	le := binary.LittleEndian
	fmtChunk := le.AppendUint16(nil, f.Format)
	fmtChunk = le.AppendUint16(fmtChunk, uint16(f.Channels))
	fmtChunk = le.AppendUint32(fmtChunk, uint32(f.Rate))
	block := f.Channels * f.Bits / 8
	fmtChunk = le.AppendUint32(fmtChunk, uint32(f.Rate*block))
	fmtChunk = le.AppendUint16(fmtChunk, uint16(block))
	fmtChunk = le.AppendUint16(fmtChunk, uint16(f.Bits))
	chunk := func(b []byte, id string, body []byte) []byte {
		b = append(b, id...)
		b = le.AppendUint32(b, uint32(len(body)))
		b = append(b, body...)
		if len(body)%2 == 1 {
			b = append(b, 0)
		}
		return b
	}
	body := []byte("WAVE")
	body = chunk(body, "fmt ", fmtChunk)
	for _, e := range extra {
		body = chunk(body, "LIST", e)
	}
	body = chunk(body, "data", data)
	return chunk(nil, "RIFF", body)[:8+len(body)]
}

// Tone returns seconds of a sine at freq Hz sampled at rate, amplitude amp.
func Tone(freq float64, rate int, seconds, amp float64) []int16 {
	n := int(seconds * float64(rate))
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return out
}

// Match is one prompt found in a recording.
type Match struct {
	ID     prompts.ID
	Offset int     // sample where it starts
	Score  float64 // normalised cross-correlation, 1 for an exact copy
}

// Recogniser finds the code-reading prompts (intro, digits, "again") of
// one locale in 8 kHz linear recordings.
type Recogniser struct {
	templates []template
	// MinScore is the correlation a match needs; 0.6 unless set.
	MinScore float64
	// Before and After bound where a clip may start around a detected
	// onset, in samples: a quiet opening consonant (the "th" of "three")
	// makes the onset late, so Before is the larger; 1200 (150 ms) and
	// 160 (20 ms) unless set.
	Before, After int
}

type template struct {
	id     prompts.ID
	pcm    []float64
	energy float64
}

// NewRecogniser takes its templates from the catalogue's clips in locale
// and law.
func NewRecogniser(c *prompts.Catalogue, locale string, law audio.Codec) (*Recogniser, error) {
	r := &Recogniser{MinScore: 0.6, Before: 1200, After: 160}
	ids := append([]prompts.ID{prompts.CodeIntro, prompts.CodeAgain}, prompts.CodeSequence("0123456789")[1:11]...)
	for _, id := range ids {
		a, err := c.Audio(locale, id, law)
		if err != nil {
			return nil, err
		}
		t := template{id: id, pcm: make([]float64, len(a))}
		for i, s := range law.Decode(nil, a) {
			t.pcm[i] = float64(s)
			t.energy += float64(s) * float64(s)
		}
		r.templates = append(r.templates, t)
	}
	return r, nil
}

// Recognise returns the prompts found in pcm, in order. It computes, for
// every clip, the normalised cross-correlation with the recording at
// every offset (by FFT); then at every onset of sound after a pause it
// keeps the clip that correlates best within the Before/After window, if
// it scores at least MinScore, and resumes after that clip.
func (r *Recogniser) Recognise(pcm []int16) []Match {
	n := 1
	for n < len(pcm) {
		n <<= 1
	}
	x := make([]complex128, n)
	prefix := make([]float64, len(pcm)+1) // running energy
	for i, s := range pcm {
		x[i] = complex(float64(s), 0)
		prefix[i+1] = prefix[i] + float64(s)*float64(s)
	}
	fft(x, false)
	// Two real templates share one complex transform: with y = t1 + i·t2,
	// IFFT(X·conj(Y)) = corr(x,t1) − i·corr(x,t2).
	scores := make([][]float64, len(r.templates))
	for k := 0; k < len(r.templates); k += 2 {
		pair := r.templates[k:min(k+2, len(r.templates))]
		y := make([]complex128, n)
		for j, t := range pair {
			if len(t.pcm) > len(pcm) {
				continue
			}
			for i, v := range t.pcm {
				if j == 0 {
					y[i] += complex(v, 0)
				} else {
					y[i] += complex(0, v)
				}
			}
		}
		fft(y, false)
		for i := range y {
			y[i] = x[i] * cmplx.Conj(y[i])
		}
		fft(y, true)
		for j, t := range pair {
			if len(t.pcm) > len(pcm) || t.energy == 0 {
				continue
			}
			sc := make([]float64, len(pcm)-len(t.pcm)+1)
			for p := range sc {
				c := real(y[p])
				if j == 1 {
					c = -imag(y[p])
				}
				if e := prefix[p+len(t.pcm)] - prefix[p]; e > 0 {
					sc[p] = c / float64(n) / math.Sqrt(e*t.energy)
				}
			}
			scores[k+j] = sc
		}
	}
	var found []Match
	for _, on := range onsets(pcm) {
		if len(found) > 0 {
			last := found[len(found)-1]
			if on < last.Offset+len(r.template(last.ID).pcm) {
				continue // inside the clip just found
			}
		}
		best := Match{Score: -1}
		for k, t := range r.templates {
			for p := max(0, on-r.Before); p <= on+r.After && p < len(scores[k]); p++ {
				if s := scores[k][p]; s > best.Score {
					best = Match{ID: t.id, Offset: p, Score: s}
				}
			}
		}
		if best.Score >= r.MinScore {
			found = append(found, best)
		}
	}
	return found
}

func (r *Recogniser) template(id prompts.ID) template {
	for _, t := range r.templates {
		if t.id == id {
			return t
		}
	}
	return template{}
}

// fft transforms a in place (radix 2; len(a) a power of two); inverse
// leaves the result unscaled.
func fft(a []complex128, inverse bool) {
	n := len(a)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j |= bit
		if i < j {
			a[i], a[j] = a[j], a[i]
		}
	}
	sign := -1.0
	if inverse {
		sign = 1
	}
	// One table of twiddle factors, computed directly rather than by
	// repeated multiplication, which drifts over 2^18 points.
	tw := make([]complex128, n/2)
	for k := range tw {
		tw[k] = cmplx.Rect(1, sign*2*math.Pi*float64(k)/float64(n))
	}
	for size := 2; size <= n; size <<= 1 {
		half, stride := size/2, n/size
		for start := 0; start < n; start += size {
			for k := range half {
				u, v := a[start+k], a[start+k+half]*tw[k*stride]
				a[start+k], a[start+k+half] = u+v, u-v
			}
		}
	}
}

// onsets returns the samples where sound starts after at least 60 ms of
// quiet, measured in 5 ms frames against a threshold 40 dB under the
// loudest frame or 9 dB over the noise floor (the tenth percentile frame),
// whichever is higher.
func onsets(pcm []int16) []int {
	const frame, quietFrames = 40, 12
	n := len(pcm) / frame
	e := make([]float64, n)
	var peak float64
	for f := range n {
		for _, s := range pcm[f*frame : (f+1)*frame] {
			e[f] += float64(s) * float64(s)
		}
		peak = max(peak, e[f])
	}
	sorted := append([]float64(nil), e...)
	sort.Float64s(sorted)
	thr := peak * 1e-4
	if n > 0 {
		thr = max(thr, 8*sorted[n/10])
	}
	var out []int
	quiet := quietFrames
	for f := range n {
		if e[f] <= thr {
			quiet++
			continue
		}
		if quiet >= quietFrames {
			out = append(out, f*frame)
		}
		quiet = 0
	}
	return out
}

// IDs returns the IDs of ms, for comparing with prompts.CodeSequence.
func IDs(ms []Match) []prompts.ID {
	ids := make([]prompts.ID, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

// String formats a match for failure messages.
func (m Match) String() string {
	return fmt.Sprintf("%s@%.2fs(%.2f)", m.ID, float64(m.Offset)/8000, m.Score)
}

// Peak returns where clip correlates best with pcm and how well: the
// highest normalised cross-correlation of clip with any stretch of pcm
// (1 for an exact copy), computed by FFT. A test uses it to show which of
// two clips (say one prompt in two languages) a recording holds; offset
// is -1 when clip is empty, silent or longer than pcm.
func Peak(pcm, clip []int16) (offset int, score float64) {
	if len(clip) == 0 || len(clip) > len(pcm) {
		return -1, 0
	}
	n := 1
	for n < len(pcm) {
		n <<= 1
	}
	x, y := make([]complex128, n), make([]complex128, n)
	prefix := make([]float64, len(pcm)+1)
	for i, s := range pcm {
		x[i] = complex(float64(s), 0)
		prefix[i+1] = prefix[i] + float64(s)*float64(s)
	}
	var energy float64
	for i, s := range clip {
		y[i] = complex(float64(s), 0)
		energy += float64(s) * float64(s)
	}
	if energy == 0 {
		return -1, 0
	}
	fft(x, false)
	fft(y, false)
	for i := range x {
		x[i] *= cmplx.Conj(y[i])
	}
	fft(x, true)
	offset, score = -1, math.Inf(-1)
	for p := 0; p+len(clip) <= len(pcm); p++ {
		e := prefix[p+len(clip)] - prefix[p]
		if e <= 0 {
			continue
		}
		if s := real(x[p]) / float64(n) / math.Sqrt(e*energy); s > score {
			offset, score = p, s
		}
	}
	if offset < 0 {
		return -1, 0
	}
	return offset, score
}
