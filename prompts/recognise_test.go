package prompts_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/verigate/verigate/audio"
	"github.com/verigate/verigate/internal/prompttest"
	"github.com/verigate/verigate/prompts"
)

// TestCodeReadingIsRecognised renders the code-reading sequence from the
// catalogue's clips in several locales, passes it through what a phone
// line does to it (the other G.711 law, a lower level, background noise,
// leading and trailing silence), and recognises the digits back, in order,
// by cross-correlating the result with the digit clips.
func TestCodeReadingIsRecognised(t *testing.T) {
	c := load(t, prompts.Options{})
	rng := rand.New(rand.NewPCG(8, 8))
	for _, tc := range []struct {
		locale, code string
		law          audio.Codec
	}{
		{"de-DE", "507193", audio.PCMU},
		{"ja", "246880", audio.PCMA},
		{"zh-CN", "913355", audio.PCMU},
		{"fr", "4827061", audio.PCMA},
		{"en", "3141", audio.PCMU}, // "three" opens with a quiet "th"
	} {
		t.Run(tc.locale, func(t *testing.T) {
			want := prompts.CodeSequence(tc.code)
			rendered, err := c.Render(tc.locale, want, tc.law, 250*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			line := phoneLine(rng, tc.law.Decode(nil, rendered))
			r, err := prompttest.NewRecogniser(c, tc.locale, tc.law)
			if err != nil {
				t.Fatal(err)
			}
			found := r.Recognise(line)
			if got := prompttest.IDs(found); !slices.Equal(got, want) {
				t.Fatalf("recognised %v\nwant       %v", found, want)
			}
			for _, m := range found {
				if m.Score < 0.8 {
					t.Errorf("%s matched with only %.2f", m, m.Score)
				}
			}
		})
	}
}

// TestRecogniserTellsLocalesApart: German digits are not found in a
// Japanese reading, so the test above cannot pass by accident.
func TestRecogniserTellsLocalesApart(t *testing.T) {
	c := load(t, prompts.Options{})
	rendered, err := c.Render("ja", prompts.CodeSequence("135"), audio.PCMU, 250*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	r, err := prompttest.NewRecogniser(c, "de", audio.PCMU)
	if err != nil {
		t.Fatal(err)
	}
	if found := r.Recognise(audio.PCMU.Decode(nil, rendered)); len(found) > 0 {
		t.Fatalf("German templates matched Japanese speech: %v", found)
	}
}

// phoneLine re-encodes pcm through the other law, at 70 % of the level,
// with white noise about 20 dB under the speech and a second of quiet
// before and after.
func phoneLine(rng *rand.Rand, pcm []int16) []int16 {
	pad := make([]int16, 8000)
	in := append(append(append([]int16{}, pad...), pcm...), pad...)
	out := make([]int16, len(in))
	for i, s := range in {
		v := 0.7*float64(s) + rng.NormFloat64()*250
		out[i] = int16(max(-32768, min(32767, v)))
	}
	return audio.PCMA.Decode(nil, audio.PCMA.Encode(nil, audio.PCMU.Decode(nil, audio.PCMU.Encode(nil, out))))
}
