package verify_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

func TestSealCode(t *testing.T) {
	h, _ := verify.NewHasher([]byte("0123456789abcdef"))
	other, _ := verify.NewHasher([]byte("0123456789abcdeF"))
	sealed, err := h.SealCode(rand.Reader, "acme", "VE1", "123456")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "123456") {
		t.Fatalf("sealed code %q shows the code", sealed)
	}
	if again, _ := h.SealCode(rand.Reader, "acme", "VE1", "123456"); again == sealed {
		t.Error("two seals of one code are equal: the nonce is not fresh")
	}
	if code, err := h.OpenCode("acme", "VE1", sealed); err != nil || code != "123456" {
		t.Fatalf("OpenCode = %q, %v; want 123456", code, err)
	}
	flipped := []byte(sealed)
	flipped[len(flipped)/2] ^= 1
	for name, open := range map[string]func() (string, error){
		"other tenant":       func() (string, error) { return h.OpenCode("globex", "VE1", sealed) },
		"other verification": func() (string, error) { return h.OpenCode("acme", "VE2", sealed) },
		"other secret":       func() (string, error) { return other.OpenCode("acme", "VE1", sealed) },
		"tampered":           func() (string, error) { return h.OpenCode("acme", "VE1", string(flipped)) },
		"truncated":          func() (string, error) { return h.OpenCode("acme", "VE1", sealed[:10]) },
		"not base64":         func() (string, error) { return h.OpenCode("acme", "VE1", "!!") },
		"empty":              func() (string, error) { return h.OpenCode("acme", "VE1", "") },
	} {
		if code, err := open(); !errors.Is(err, verify.ErrUnsealable) || code != "" {
			t.Errorf("%s: OpenCode = %q, %v; want ErrUnsealable", name, code, err)
		}
	}
}

// TestResendsSendOneCode: every resend of a verification, by SMS or by a
// code-mode call, delivers the same code, and no other code approves it.
// Resends once each carried a fresh code, all valid at once: five SMS and
// five calls made ten valid codes and every guess ten times likelier.
func TestResendsSendOneCode(t *testing.T) {
	svc := verifytest.NewService(t)
	ctx := context.Background()
	const to = "+4915123456789"
	var id string
	for i := range 10 {
		req := verify.StartRequest{Tenant: "acme", To: to, Channel: verify.ChannelSMS}
		if i%2 == 1 {
			req.Channel, req.CallMode = verify.ChannelCall, verify.CallModeCode
		}
		v, err := svc.Start(ctx, req)
		if err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
		if id == "" {
			id = v.ID
		} else if v.ID != id {
			t.Fatalf("send %d started %s, want a resend of %s", i+1, v.ID, id)
		}
		if len(v.CodeHashes) != 1 {
			t.Errorf("send %d: %d code hashes stored, want 1", i+1, len(v.CodeHashes))
		}
	}
	codes := map[string]int{}
	for _, m := range svc.Sender.Messages() {
		codes[verifytest.CodeOf(t, m.Body)]++
	}
	for _, c := range svc.Caller.Calls() {
		codes[c.Code]++
	}
	if len(codes) != 1 {
		t.Fatalf("%d distinct codes delivered (%v), want 1", len(codes), codes)
	}
	var code string
	for c, n := range codes {
		code = c
		if n != 10 {
			t.Fatalf("code delivered %d times, want 10", n)
		}
	}
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	if v, err := svc.Check(ctx, "acme", id, wrong); err != nil || v.Status != verify.StatusPending {
		t.Fatalf("wrong code: %v, %v", v, err)
	}
	if v, err := svc.Check(ctx, "acme", id, code); err != nil || v.Status != verify.StatusApproved {
		t.Fatalf("the code: %v, %v", v, err)
	}
}

// TestBusyProviderCountsNoSend: a call the provider has no room for (every
// RTP port in a call) answers ErrBusy and is refunded, so retrying as told
// never locks the person out; sends that did happen still count.
func TestBusyProviderCountsNoSend(t *testing.T) {
	svc := verifytest.NewService(t)
	ctx := context.Background()
	req := verify.StartRequest{Tenant: "acme", To: "+4915123456789", Channel: verify.ChannelCall}
	svc.Caller.Fail(fmt.Errorf("rtp port: no free rtp port: %w", verify.ErrBusy))
	for i := range 8 { // more than the 5 calls per number the limits allow
		_, err := svc.Start(ctx, req)
		if !errors.Is(err, verify.ErrBusy) || !errors.Is(err, verify.ErrUnavailable) {
			t.Fatalf("busy start %d: %v, want ErrBusy (and ErrUnavailable)", i+1, err)
		}
	}
	svc.Caller.Fail(nil)
	for i := range 5 {
		if _, err := svc.Start(ctx, req); err != nil {
			t.Fatalf("call %d once there is room: %v", i+1, err)
		}
	}
	if _, err := svc.Start(ctx, req); !errors.Is(err, verify.ErrRateLimited) {
		t.Fatalf("a sixth placed call: %v, want the limit", err)
	}
}

// TestResendOfAnEarlierVersionsVerification: a verification stored by the
// previous version (no sealed code) is resent as that version did, with
// each resend's code added, however often it is resent during a rolling
// upgrade.
func TestResendOfAnEarlierVersionsVerification(t *testing.T) {
	svc := verifytest.NewService(t)
	ctx := context.Background()
	const to = "+4915123456789"
	now := svc.Clock.Now()
	old := &verify.Verification{
		ID: "VE00000000000000000000000000000001", Tenant: "acme", To: to, Country: "DE",
		Channel: verify.ChannelSMS, CallMode: verify.CallModeApprove, Locale: "en",
		Status: verify.StatusPending, MaxAttempts: 5, Sends: 1,
		Route: verify.Route{Channel: verify.ChannelSMS}, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(verify.DefaultLifetime),
	}
	h, _ := verify.NewHasher([]byte(verifytest.Secret))
	if _, _, err := svc.Store.StartConsumed(ctx, old, h.Hash("acme", "111111"), now); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		v, err := svc.Start(ctx, verify.StartRequest{Tenant: "acme", To: to})
		if err != nil {
			t.Fatalf("resend %d of an earlier version's verification: %v", i+1, err)
		}
		if v.ID != old.ID {
			t.Fatalf("resend %d started %s, want %s", i+1, v.ID, old.ID)
		}
	}
	code := svc.Sender.LastCode(t, to)
	if v, err := svc.Check(ctx, "acme", old.ID, code); err != nil || v.Status != verify.StatusApproved {
		t.Fatalf("the last code sent: %v, %v", v, err)
	}
}
