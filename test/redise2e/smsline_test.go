package redise2e

import (
	"regexp"
	"testing"
)

// smsRegexp is what smsLine replaces, kept as its oracle.
var smsRegexp = regexp.MustCompile(`^sms to=(\S+) body=.*?(\d{6})\.`)

var smsLines = []string{
	"sms to=+49151*****789 body=Your Verigate verification code is 123456.",
	"sms to=+49151*****789 body=Your Verigate verification code is 123456. extra",
	"sms to=+1*********1 body=Code 1234567. Or 654321.",
	"sms to=+33*******12 body=v1.2 says 12345. then 987654.",
	"sms to=+49151*****789 body=no code here.",
	"sms to=+49151*****789 body=123456",
	`time=2025-03-01T12:00:00Z level=WARN msg="sms to=+49151*****789 body=is 123456."`,
	"sms to= body=is 123456.",
	"",
}

func TestSMSLine(t *testing.T) {
	for _, line := range smsLines {
		to, code, ok := smsLine([]byte(line))
		m := smsRegexp.FindStringSubmatch(line)
		if ok != (m != nil) || (ok && (string(to) != m[1] || code != m[2])) {
			t.Errorf("smsLine(%q) = %q, %q, %v; regexp: %q", line, to, code, ok, m)
		}
	}
}

// BenchmarkSMSLine: the parser against the regexp it replaced, on a line
// each pair of the HTTP benchmarks prints.
func BenchmarkSMSLine(b *testing.B) {
	line := []byte(smsLines[0])
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			if _, _, ok := smsLine(line); !ok {
				b.Fatal(line)
			}
		}
	})
	b.Run("regexp", func(b *testing.B) {
		for b.Loop() {
			if m := smsRegexp.FindSubmatch(line); m == nil {
				b.Fatal(line)
			}
		}
	})
}
