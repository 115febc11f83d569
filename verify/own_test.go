package verify_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/verify"
)

// TestOwnStartNeverAdoptsAnotherSignIn: two sign-ins for one number (an
// attacker's with the password, the person's own) each get their own
// verification, so the code of one does not approve the other; a sign-in
// resends its own; the superseded start costs the person no send.
func TestOwnStartNeverAdoptsAnotherSignIn(t *testing.T) {
	ctx := context.Background()
	s := verifytest.NewService(t, verifytest.WithPolicies(
		ratelimit.Policy{Name: "two", Scope: ratelimit.ScopeNumber, Channel: verify.ChannelSMS, Limit: 2, Window: time.Hour}))
	const to = "+4915123456789"
	start := func(resend string) (*verify.Verification, error) {
		return s.Start(ctx, verify.StartRequest{Tenant: "entra", To: to, Channel: verify.ChannelSMS, Own: true, ResendID: resend})
	}
	attacker, err := start("")
	if err != nil {
		t.Fatal(err)
	}
	person, err := start("")
	if err != nil {
		t.Fatalf("the second sign-in (within a limit of 2 sends, the superseded one refunded): %v", err)
	}
	if person.ID == attacker.ID {
		t.Fatal("the second sign-in adopted the first one's verification")
	}
	if v, err := s.Get(ctx, "entra", attacker.ID); err != nil || v.Status != verify.StatusCanceled || v.Reason != "superseded" {
		t.Fatalf("the superseded verification: %+v, %v", v, err)
	}
	// The person types the code they were sent: their sign-in is approved,
	// the attacker's is not.
	code := s.Sender.LastCode(t, to)
	if v, err := s.Check(ctx, "entra", person.ID, code); err != nil || v.Status != verify.StatusApproved {
		t.Fatalf("the person's check: %+v, %v", v, err)
	}
	if _, err := s.Check(ctx, "entra", attacker.ID, code); err == nil {
		t.Error("the code approved the superseded verification too")
	}
	if v, _ := s.Get(ctx, "entra", attacker.ID); v.Status == verify.StatusApproved {
		t.Error("the attacker's verification is approved")
	}

	// Two sends were made, not three: the next start meets the limit.
	if _, err := start(""); !errors.As(err, new(*verify.LimitError)) {
		t.Errorf("a third sign-in within a limit of 2: %v, want a limit error", err)
	}
}

// TestOwnStartResendsItsOwn: a sign-in that names its verification resends
// it, with its code.
func TestOwnStartResendsItsOwn(t *testing.T) {
	ctx := context.Background()
	s := verifytest.NewService(t)
	req := verify.StartRequest{Tenant: "radius", To: "+4915123456789", Channel: verify.ChannelSMS, Own: true}
	first, err := s.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	req.ResendID = first.ID
	again, err := s.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || again.Sends != 2 {
		t.Errorf("resend: %s sends %d, want %s sends 2", again.ID, again.Sends, first.ID)
	}
}

// TestStartWithoutOwnResends: the REST API's behaviour is unchanged: a
// start for a number with a pending verification resends it.
func TestStartWithoutOwnResends(t *testing.T) {
	ctx := context.Background()
	s := verifytest.NewService(t)
	req := verify.StartRequest{Tenant: "t", To: "+4915123456789", Channel: verify.ChannelSMS}
	a, err := s.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || b.Sends != 2 {
		t.Errorf("resend: %s sends %d, want %s sends 2", b.ID, b.Sends, a.ID)
	}
}
