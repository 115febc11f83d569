package route_test

import (
	"errors"
	"testing"

	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/verify"
)

// FuzzParseNumber: any input either classifies to a number whose E.164
// form classifies to itself, or is refused with ErrInvalidNumber; never a
// panic or another error.
func FuzzParseNumber(f *testing.F) {
	for _, n := range numbers {
		f.Add(n.e164)
	}
	for _, s := range []string{"", "+", "00", "0151 23456789", "+49 (0) 151-234 567 89", "+1-800-FLOWERS", "\x00+49", "+٤٩١٥١٢٣٤٥٦٧٨٩"} {
		f.Add(s)
	}
	c := route.NewClassifier(route.ClassifierOptions{DefaultRegion: "DE", Carrier: true, CacheSize: 64})
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := c.ParseNumber(raw)
		if err != nil {
			if !errors.Is(err, verify.ErrInvalidNumber) {
				t.Fatalf("%q: %v is not ErrInvalidNumber", raw, err)
			}
			return
		}
		again, err := c.ParseNumber(n.E164)
		if err != nil || again.E164 != n.E164 || again.LineType != n.LineType || again.Region != n.Region {
			t.Fatalf("%q → %+v, which classifies as %+v (%v)", raw, n, again, err)
		}
	})
}
