package main

import (
	"context"
	"strings"
	"testing"
)

// TestDemo runs `verigate demo` as a person would on a bare machine: both
// flows must end approved and the timeline must show the call's steps.
func TestDemo(t *testing.T) {
	var out lockedBuffer
	if err := run(context.Background(), []string{"demo"}, &out, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"SMS received on +49151*****789",
		"call ringing", "call answered", "call prompt prompt=greeting", "call key pressed key=#",
		"verification approved", "Both verifications ended approved.",
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
	}
}
