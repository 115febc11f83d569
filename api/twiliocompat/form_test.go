package twiliocompat

import (
	"net/url"
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
