package prompts_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/verify"
)

func TestSMSLength(t *testing.T) {
	for _, tc := range []struct {
		body  string
		enc   prompts.Encoding
		units int
		one   bool
	}{
		{"Your code is 123456.", prompts.GSM7, 20, true},
		{"Ihr Bestätigungscode: 123456 (gültig 10 min)", prompts.GSM7, 44, true},
		{"é è ù ì ò Ç Ø å Δ ß ¡ ¿ § ñ ü à", prompts.GSM7, 31, true},
		{"Preis: 5€ [rabatt] {x} ~^|\\", prompts.GSM7, 27 + 9, true}, // nine extension characters, two septets each
		{"Página", prompts.UCS2, 6, true},                            // á is not GSM-7
		{"kod: 123 ✓", prompts.UCS2, 10, true},
		{"🙂", prompts.UCS2, 2, true}, // one surrogate pair
		{strings.Repeat("a", 160), prompts.GSM7, 160, true},
		{strings.Repeat("a", 161), prompts.GSM7, 161, false},
		{strings.Repeat("a", 159) + "€", prompts.GSM7, 161, false},
		{strings.Repeat("ó", 70), prompts.UCS2, 70, true},
		{strings.Repeat("ó", 71), prompts.UCS2, 71, false},
		{"\n\r", prompts.GSM7, 2, true},
		{"\t", prompts.UCS2, 1, true}, // no tab in GSM-7
	} {
		enc, units, one := prompts.SMSLength(tc.body)
		if enc != tc.enc || units != tc.units || one != tc.one {
			t.Errorf("SMSLength(%q) = %s %d %v, want %s %d %v", tc.body, enc, units, one, tc.enc, tc.units, tc.one)
		}
	}
}

// TestSMSBodiesFitOneSegment renders every locale's SMS with every code
// length, with and without the WebOTP and app-hash lines.
func TestSMSBodiesFitOneSegment(t *testing.T) {
	extras := []struct{ domain, hash string }{
		{"", ""},
		{"login.example.com", ""},
		{"", "FA+9qCX9VSu"},
		{"login.example.com", "FA+9qCX9VSu"},
	}
	for _, ex := range extras {
		for n := verify.MinCodeLength; n <= verify.MaxCodeLength; n++ {
			c, err := prompts.Load(prompts.Options{AppName: "Verigate", WebOTPDomain: ex.domain, AppHash: ex.hash, CodeLength: n})
			if err != nil {
				// Start-up refuses what would not fit; the default code
				// length must always fit, and so must every length bare.
				if n <= verify.DefaultCodeLength || ex == extras[0] || !strings.Contains(err.Error(), "segment") {
					t.Errorf("code length %d, %+v: %v", n, ex, err)
				}
				continue
			}
			code := strings.Repeat("7", n)
			for _, l := range c.Locales() {
				body := c.SMSBody(l, code)
				enc, units, one := prompts.SMSLength(body)
				if !one {
					t.Errorf("%s (code %d, %+v): %s %d units, over one segment: %q", l, n, ex, enc, units, body)
				}
				if strings.Count(body, code) != 1+boolInt(ex.domain != "") {
					t.Errorf("%s: body %q does not carry the code as expected", l, body)
				}
				lines := strings.Split(body, "\n")
				if ex.domain != "" && lines[len(lines)-1] != "@login.example.com #"+code {
					t.Errorf("%s: last line %q, want the WebOTP line", l, lines[len(lines)-1])
				}
				if ex.hash != "" && !contains(lines, ex.hash) {
					t.Errorf("%s: no line holds the app hash alone: %q", l, body)
				}
				if !utf8.ValidString(body) {
					t.Errorf("%s: invalid UTF-8", l)
				}
			}
		}
	}
}

// TestSMSKeepsSpellingWhenItFits: accents stay while one UCS-2 segment
// holds the body; they fold to GSM-7 only when it would not.
func TestSMSKeepsSpellingWhenItFits(t *testing.T) {
	plain := load(t, prompts.Options{CodeLength: 6})
	if got := plain.SMSBody("pl", "123456"); !strings.Contains(got, "Twój") {
		t.Errorf("short Polish body lost its accents: %q", got)
	}
	long := load(t, prompts.Options{CodeLength: 6, AppName: "Contoso Konto", WebOTPDomain: "login.contoso.example"})
	got := long.SMSBody("pl", "123456")
	if enc, _, one := prompts.SMSLength(got); enc != prompts.GSM7 || !one || !strings.Contains(got, "Twoj kod") {
		t.Errorf("long Polish body %q (%s), want it folded to one GSM-7 segment", got, enc)
	}
	// Japanese cannot fold: too long a name is refused at start-up, naming the locale.
	_, err := prompts.Load(prompts.Options{AppName: strings.Repeat("Contoso", 8)})
	if err == nil || !strings.Contains(err.Error(), "locale ja") || !strings.Contains(err.Error(), "segment") {
		t.Errorf("Load with a 56-letter app name: %v, want a one-segment error naming ja", err)
	}
}

func TestSMSOptionsValidated(t *testing.T) {
	for _, o := range []prompts.Options{
		{AppHash: "short"},
		{AppHash: "FA+9qCX9VSu!"},
		{WebOTPDomain: "https://example.com"},
		{WebOTPDomain: "Example.COM"},
		{WebOTPDomain: "ex ample.com"},
		{AppName: "{code}"},
	} {
		if _, err := prompts.Load(o); err == nil {
			t.Errorf("Load(%+v) accepted", o)
		}
	}
	if _, err := prompts.Load(prompts.Options{WebOTPDomain: "login.example.com:8443", AppHash: "abcdefghij0", CodeLength: 6}); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}
