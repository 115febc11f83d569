package main

import (
	"context"
	"strings"
	"testing"

	"github.com/verigate/verigate/internal/testbuf"
)

// TestDemo runs `verigate demo` as a person would on a bare machine: both
// flows must end approved and the timeline must show who did what: the
// phone receiving the SMS, answering the call and pressing the key (its
// hooks), the gateway's events (the verification's event stream) and the
// approvals. Nothing of the gateway's log is shown without -v.
func TestDemo(t *testing.T) {
	var out testbuf.Buffer
	if err := run(context.Background(), []string{"demo"}, &out, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"phone    SMS received on +49151*****789: \"Your Verigate verification code is ",
		"gateway  approved\n", "idp      ← 200 status=approved",
		"phone    incoming call", "gateway  ringing provider=sip",
		"phone    answered codec=", "gateway  answered provider=sip",
		"phone    pressed key #", "gateway  key pressed provider=sip detail=#",
		"gateway  call approved", "idp      event stream ended: status=approved",
		"phone    call ended, hung up by the gateway",
		"Both verifications ended approved.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q:\n%s", want, got)
		}
	}
	// The identity server's request carries the number; nothing else may.
	for _, line := range strings.Split(got, "\n") {
		if strings.Contains(line, demoMobile) && !strings.Contains(line, "POST /v1/verifications {") && !strings.HasPrefix(line, "== ") {
			t.Errorf("full number outside the request: %q", line)
		}
		if strings.Contains(line, "level=") || strings.HasPrefix(line, "sms to=") {
			t.Errorf("a log or console line in the timeline: %q", line)
		}
	}
}

func TestCodeIn(t *testing.T) {
	tests := []struct{ body, want string }{
		{"Your Verigate verification code is 213735.", "213735"},
		{"Code 0042 for app 7", "0042"},
		{"Ihr Code: 12 34", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := codeIn(tt.body); got != tt.want {
			t.Errorf("codeIn(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}
