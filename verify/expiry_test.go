package verify_test

import (
	"context"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

// RunExpiry marks a verification nobody reads expired and tells its
// callback; it ends with its context, and by itself once the Service drains.
func TestRunExpiry(t *testing.T) {
	s := verifytest.NewService(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := s.Start(ctx, verify.StartRequest{Tenant: "t", To: "+4915123456789", Channel: verify.ChannelSMS, CallbackURL: "https://idp.example/cb"})
	if err != nil {
		t.Fatal(err)
	}
	s.Clock.Add(verify.DefaultLifetime)
	runCtx, stop := context.WithCancel(ctx)
	ended := make(chan struct{})
	go func() { s.RunExpiry(runCtx); close(ended) }()
	for len(s.Notifier.Notices()) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("no expiry notice from the sweep")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if n := s.Notifier.Notices(); len(n) != 1 || n[0].ID != v.ID || n[0].Status != verify.StatusExpired {
		t.Errorf("notices %+v, want %s expired", n, v.ID)
	}
	stop()
	select {
	case <-ended:
	case <-ctx.Done():
		t.Fatal("RunExpiry did not end with its context")
	}

	// Draining: RunExpiry returns by itself at its next turn.
	s.Drain()
	drained := make(chan struct{})
	go func() { s.RunExpiry(ctx); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
		t.Fatal("RunExpiry did not end when the Service drains")
	}
}
