package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/testbuf"

	"github.com/verigate/verigate/prompts"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/verify"
)

type approvals struct{ ch chan verify.Event }

func (a approvals) Report(_ context.Context, _ string, ev verify.Event) error {
	a.ch <- ev
	return nil
}

// startPhoneCommand runs `verigate phone` with args until the test ends
// and returns the address it listens on and what it printed.
func startPhoneCommand(t *testing.T, args ...string) (addr string, out, errOut *testbuf.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut = &testbuf.Buffer{}, &testbuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- runPhone(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), out, errOut) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("phone: %v", err)
		}
	})
	for i := 0; !strings.Contains(out.String(), "listening") && i < 200; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	addr, _, _ = strings.Cut(strings.TrimPrefix(out.String(), "phone listening on "), " ")
	return addr, out, errOut
}

// callUntilApproved places an approve-mode call from a gateway Caller to
// the phone at addr through trunk (its Address is filled in) and waits for
// call_approved.
func callUntilApproved(t *testing.T, trunk sip.Trunk, addr, rtpPorts string, out, errOut *testbuf.Buffer) {
	t.Helper()
	cat, err := prompts.Load(prompts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	trunk.Name, trunk.Address = "phone", addr
	evs := approvals{ch: make(chan verify.Event, 32)}
	caller, err := sip.NewCaller(sip.Config{Listen: "127.0.0.1:0", RTPPorts: rtpPorts, Trunks: []sip.Trunk{trunk}},
		sip.Options{Audio: sip.PromptAudio{Catalogue: cat}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// Closed when the test ends, not on approval: the phone is still
	// finishing its key's RFC 4733 event then.
	t.Cleanup(func() { caller.Close() })
	caller.ReportTo(evs)
	if _, err := caller.Call(context.Background(), verify.Call{VerificationID: "v1", To: "+4915123456789", Mode: verify.CallModeApprove}); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for approved := false; !approved; {
		select {
		case ev := <-evs.ch:
			approved = ev.Type == verify.EventCallApproved
		case <-timeout:
			t.Fatalf("no approval; phone printed:\n%s\n%s", out.String(), errOut.String())
		}
	}
}

func TestPhoneCommandAnswersAndPresses(t *testing.T) {
	addr, out, errOut := startPhoneCommand(t, "--press", "#", "--after", "4s", "--ring", "100ms", "--rtp-ports", "30000-30099")
	callUntilApproved(t, sip.Trunk{}, addr, "30100-30199", out, errOut)
	for i := 0; !strings.Contains(out.String(), "call ") && i < 1000; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(out.String(), `pressed "#"`) {
		t.Errorf("phone printed:\n%s", out.String())
	}
	if strings.Contains(errOut.String(), "4915123456789") {
		t.Errorf("phone logged the full number:\n%s", errOut.String())
	}
}
