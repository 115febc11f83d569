package sip_test

import (
	"context"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/testbuf"

	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

// TestByeRefusedIsLogged: the phone answers the gateway's BYE with 478
// (a PBX that cannot reach the Contact's transport says so). The hang-up
// did not happen, so the gateway must say so in its log, with the status,
// where an operator looks: above debug.
func TestByeRefusedIsLogged(t *testing.T) {
	phone := newBarePhone(t, 101)
	phone.byeStatus.Store(478)
	var logs testbuf.Buffer
	rep := newReporter()
	caller := newCaller(t, rep, sip.Trunk{Name: "phone", Address: phone.addr.String()},
		sip.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatalf("Call: %v", err)
	}
	phone.answered(t)
	// Close hangs the call up with a BYE and waits for its answer.
	caller.Close()
	want := regexp.MustCompile(`level=WARN msg="call bye refused" .*status=478`)
	deadline := time.Now().Add(5 * time.Second)
	for !want.MatchString(logs.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning with the BYE's status 478 in the log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
