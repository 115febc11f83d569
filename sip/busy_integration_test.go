package sip_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/sip"
	"github.com/verigate/verigate/sip/media"
	"github.com/verigate/verigate/verify"
)

// TestCallerBusyWhenRTPPortsRunOut: with every RTP port in a call, the
// next call is refused with verify.ErrBusy, which the Service refunds and
// the API answers as "busy", instead of an error that counts a send.
func TestCallerBusyWhenRTPPortsRunOut(t *testing.T) {
	// A phone that rings for a while holds the first call's port.
	phone, _ := newPhone(t, siptest.PhoneConfig{Ring: 5 * time.Second})
	lo, _ := strconv.Atoi(strings.Split(rtpRange(t), "-")[0])
	lo += lo % 2
	trunk := sip.Trunk{Name: "phone", Address: phone.Addr().String()}
	rep := verifytest.ReporterFunc(func(context.Context, string, verify.Event) error { return nil })
	c, err := sip.NewCaller(sip.Config{
		Listen: "127.0.0.1:0", RTPPorts: strconv.Itoa(lo) + "-" + strconv.Itoa(lo+1),
		DefaultTrunk: trunk.Name, Trunks: []sip.Trunk{trunk},
	}, sip.Options{Audio: silentAudio{}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.ReportTo(rep)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call := verify.Call{VerificationID: "VE1", Tenant: "acme", To: "+4915123456789", Locale: "en", Mode: verify.CallModeApprove, Attempt: 1}
	if _, err := c.Call(ctx, call); err != nil {
		t.Fatalf("first call: %v", err)
	}
	if n := c.RTPPortsInUse(); n != 1 {
		t.Fatalf("%d RTP ports in use, want the range's one", n)
	}
	call.VerificationID = "VE2"
	_, err = c.Call(ctx, call)
	if !errors.Is(err, verify.ErrBusy) || !errors.Is(err, media.ErrNoPorts) {
		t.Fatalf("second call: %v, want ErrBusy (no free RTP port)", err)
	}
}
