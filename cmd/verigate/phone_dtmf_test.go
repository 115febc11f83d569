package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/verigate/verigate/sip"
)

// TestPhoneCommandDTMFModes runs `verigate phone --dtmf info|inband`
// against a gateway trunk set to the same mode, and the trunk on auto.
func TestPhoneCommandDTMFModes(t *testing.T) {
	for i, tc := range []struct{ phone, trunk string }{
		{"info", "info"}, {"inband", "inband"}, {"info", "auto"}, {"inband", "auto"},
	} {
		t.Run(tc.phone+"/"+tc.trunk, func(t *testing.T) {
			// Port ranges stay below the kernel's ephemeral ports (32768 up).
			phonePorts := fmt.Sprintf("%d-%d", 30400+200*i, 30499+200*i)
			addr, out, errOut := startPhoneCommand(t, "--press", "#", "--dtmf", tc.phone, "--after", "4s", "--ring", "100ms", "--rtp-ports", phonePorts)
			if !strings.Contains(out.String(), "by "+tc.phone) {
				t.Fatalf("phone printed %q, want its dtmf mode", out.String())
			}
			callUntilApproved(t, sip.Trunk{DTMF: tc.trunk}, addr, fmt.Sprintf("%d-%d", 30500+200*i, 30599+200*i), out, errOut)
		})
	}
}

func TestPhoneCommandRefusesDTMFMode(t *testing.T) {
	for _, mode := range []string{"auto", "rfc2833"} {
		err := runPhone(context.Background(), []string{"--listen", "127.0.0.1:0", "--dtmf", mode}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--dtmf") {
			t.Errorf("--dtmf %s: %v, want an error naming --dtmf", mode, err)
		}
	}
}
