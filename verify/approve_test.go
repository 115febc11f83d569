package verify_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

// TestApprove: the client approves a pending verification without a
// code, once; another tenant's verification is not found; the callback
// is told.
func TestApprove(t *testing.T) {
	svc := verifytest.NewService(t)
	ctx := context.Background()
	v, err := svc.Start(ctx, verify.StartRequest{Tenant: "acme", To: "+4915123456789", CallbackURL: "https://idp.example.com/cb"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, "globex", v.ID); !errors.Is(err, verify.ErrNotFound) {
		t.Fatalf("another tenant: %v, want ErrNotFound", err)
	}
	got, err := svc.Approve(ctx, "acme", v.ID)
	if err != nil || got.Status != verify.StatusApproved {
		t.Fatalf("Approve = %+v, %v", got, err)
	}
	last := got.Events[len(got.Events)-1]
	if last.Type != verify.EventApproved || !strings.Contains(last.Detail, "without a code") {
		t.Errorf("last event %+v: want approved without a code", last)
	}
	var np *verify.NotPendingError
	if _, err := svc.Approve(ctx, "acme", v.ID); !errors.As(err, &np) || np.Status != verify.StatusApproved {
		t.Errorf("second Approve: %v, want not pending (approved)", err)
	}
	if n := svc.Notifier.Notices(); len(n) != 1 || n[0].Status != verify.StatusApproved {
		t.Errorf("notices %+v: want one, approved", n)
	}
}

// TestStartAppNameAndCodeLength: a start may name the app in its SMS and
// ask for another code length; a resend keeps the verification's code.
func TestStartAppNameAndCodeLength(t *testing.T) {
	svc := verifytest.NewService(t)
	ctx := context.Background()
	const to = "+4915123456789"
	req := verify.StartRequest{Tenant: "acme", To: to, AppName: "Acme Bank", CodeLength: 8}
	if _, err := svc.Start(ctx, req); err != nil {
		t.Fatal(err)
	}
	msgs := svc.Sender.Messages()
	if body := msgs[0].Body; !strings.HasPrefix(body, "Your Acme Bank verification code is ") {
		t.Errorf("SMS %q: want the app name asked for", body)
	}
	code := svc.Sender.LastCode(t, to)
	if len(code) != 8 {
		t.Errorf("code %q: want 8 digits", code)
	}
	req.CodeLength, req.AppName = 4, ""
	if _, err := svc.Start(ctx, req); err != nil {
		t.Fatal(err)
	}
	if again := svc.Sender.LastCode(t, to); again != code {
		t.Errorf("resend sent %q, want the verification's code %q", again, code)
	}
	for _, n := range []int{3, 11, -1} {
		if _, err := svc.Start(ctx, verify.StartRequest{Tenant: "acme", To: "+4915123456780", CodeLength: n}); !errors.Is(err, verify.ErrInvalidRequest) {
			t.Errorf("code length %d: %v, want ErrInvalidRequest", n, err)
		}
	}
}
