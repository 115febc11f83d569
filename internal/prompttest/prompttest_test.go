package prompttest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/verigate/verigate/prompts"
)

// TestFFTCorrelationMatchesDirect: the FFT scores equal the normalised
// cross-correlation computed by definition.
func TestFFTCorrelationMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// A second of quiet, so the noise has an onset, then the noise.
	pcm := make([]int16, 11000)
	for i := 8000; i < len(pcm); i++ {
		pcm[i] = int16(rng.NormFloat64() * 3000)
	}
	r := &Recogniser{MinScore: 0.99, Before: 3000, After: 3000}
	for k, off := range []int{8200, 9700, 10400} {
		tp := template{id: "t", pcm: make([]float64, 300)}
		for i := range tp.pcm {
			tp.pcm[i] = float64(pcm[off+i])
			tp.energy += tp.pcm[i] * tp.pcm[i]
		}
		tp.id = []prompts.ID{"a", "b", "c"}[k]
		r.templates = append(r.templates, tp)
	}
	x := make([]float64, len(pcm))
	for i, s := range pcm {
		x[i] = float64(s)
	}
	// With the window covering everything, the one onset finds the best
	// clip anywhere; check the winning score against the definition.
	found := r.Recognise(pcm)
	if len(found) != 1 {
		t.Fatalf("found %v, want one match", found)
	}
	m := found[0]
	direct := nccDirect(x[m.Offset:m.Offset+300], r.template(m.ID).pcm)
	if math.Abs(direct-m.Score) > 1e-9 || math.Abs(m.Score-1) > 1e-9 {
		t.Fatalf("match %v: FFT score %.12f, direct %.12f, want both 1", m, m.Score, direct)
	}
	if want := map[string]int{"a": 8200, "b": 9700, "c": 10400}[string(m.ID)]; m.Offset != want {
		t.Fatalf("%s found at %d, want %d", m.ID, m.Offset, want)
	}
}

func nccDirect(x, t []float64) float64 {
	var d, ex, et float64
	for i := range x {
		d += x[i] * t[i]
		ex += x[i] * x[i]
		et += t[i] * t[i]
	}
	return d / math.Sqrt(ex*et)
}

// TestPeakFindsClip: Peak finds a clip copied into noise where it was put,
// with score 1, and scores match the definition.
func TestPeakFindsClip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pcm := make([]int16, 5000)
	for i := range pcm {
		pcm[i] = int16(rng.NormFloat64() * 2000)
	}
	clip := append([]int16(nil), pcm[3111:3111+400]...)
	off, score := Peak(pcm, clip)
	if off != 3111 || math.Abs(score-1) > 1e-9 {
		t.Fatalf("Peak = %d, %.12f; want 3111, 1", off, score)
	}
	// An unrelated clip scores what the definition gives at its peak.
	other := make([]int16, 400)
	for i := range other {
		other[i] = int16(rng.NormFloat64() * 2000)
	}
	off, score = Peak(pcm, other)
	x, c := make([]float64, len(pcm)), make([]float64, len(other))
	for i, s := range pcm {
		x[i] = float64(s)
	}
	for i, s := range other {
		c[i] = float64(s)
	}
	best := math.Inf(-1)
	for p := 0; p+len(c) <= len(x); p++ {
		best = max(best, nccDirect(x[p:p+len(c)], c))
	}
	if d := nccDirect(x[off:off+len(c)], c); math.Abs(d-score) > 1e-9 || math.Abs(best-score) > 1e-9 {
		t.Fatalf("Peak score %.12f at %d, direct %.12f there, best %.12f", score, off, d, best)
	}
	if score > 0.5 {
		t.Fatalf("unrelated noise scores %.2f", score)
	}
	if off, _ := Peak(pcm, make([]int16, 10)); off != -1 {
		t.Fatalf("a silent clip was found at %d", off)
	}
}
