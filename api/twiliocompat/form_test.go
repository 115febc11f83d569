package twiliocompat

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzCountParams: the bound is never under-counted, whatever the body:
// countParams counts at least as many parameters as url.ParseQuery yields
// values, so MaxParams holds for what the handlers see.
func FuzzCountParams(f *testing.F) {
	for _, s := range []string{"", "a=1", "To=%2B49&Channel=sms", "a&b;c=&&=", "%zz=1&a=2", ";;;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		v, _ := url.ParseQuery(q)
		n := 0
		for _, vs := range v {
			n += len(vs)
		}
		if c := countParams(q); c < n {
			t.Fatalf("countParams(%q) = %d, but ParseQuery yields %d values", q, c, n)
		}
	})
}

// TestRefuseNamesFirstSorted: a request with several refused parameters
// always hears of the same one, the first by name.
func TestRefuseNamesFirstSorted(t *testing.T) {
	f := url.Values{}
	for name := range refusedStart {
		f.Set(name, "x")
	}
	for range 50 {
		var e *Error
		if err := refuse(f, refusedStart); !errors.As(err, &e) || !strings.Contains(e.Message, "Amount") {
			t.Fatalf("refuse = %v, want Amount named", err)
		}
	}
}
