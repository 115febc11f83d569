package radius

import (
	"testing"

	"layeh.com/radius"
)

// FuzzScreen: the screening that runs on every datagram before it is
// parsed (length, Message-Authenticator) never panics, and what it lets
// through parses.
func FuzzScreen(f *testing.F) {
	p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
	b, err := encodeSigned(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:20])
	f.Add([]byte{1, 2, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 80, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := packetLength(b)
		if err != nil {
			return
		}
		b = b[:n]
		if checkRequestAuth(b, []byte(testSecret)) != nil {
			return
		}
		if _, err := radius.Parse(b, []byte(testSecret)); err != nil {
			t.Fatalf("screened packet does not parse: %v", err)
		}
	})
}
