package verify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/storetest"
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

// TestExpireDueBacklog: more verifications due than one sweep may end are
// ended by consecutive ExpireDue calls, the first reporting that more are
// due; RunExpiry, which sweeps again at once while more are due, ends
// them all.
func TestExpireDueBacklog(t *testing.T) {
	const sweep = verify.ExpiryBatch * verify.ExpiryBatchesSweep
	n := sweep + verify.ExpiryBatch*5
	for _, run := range []bool{false, true} {
		t.Run(map[bool]string{false: "ExpireDue", true: "RunExpiry"}[run], func(t *testing.T) {
			s := verifytest.NewService(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for i := range n {
				v := storetest.NewVerification(t, "t", fmt.Sprintf("+491512%07d", i), s.Clock.Now())
				if _, _, err := s.Store.StartConsumed(ctx, v, "h", s.Clock.Now()); err != nil {
					t.Fatal(err)
				}
			}
			s.Clock.Add(verify.DefaultLifetime + time.Hour)
			if run {
				runCtx, stop := context.WithCancel(ctx)
				defer stop()
				go s.RunExpiry(runCtx)
				for len(s.Notifier.Notices()) < n {
					select {
					case <-ctx.Done():
						t.Fatalf("%d of %d expired by the sweep", len(s.Notifier.Notices()), n)
					case <-time.After(50 * time.Millisecond):
					}
				}
				return
			}
			got, more, err := s.ExpireDue(ctx)
			if err != nil || got != sweep || !more {
				t.Fatalf("first sweep = %d, more %v, %v; want %d and more", got, more, err, sweep)
			}
			k, more, err := s.ExpireDue(ctx)
			if err != nil || got+k != n || more {
				t.Fatalf("second sweep = %d, more %v, %v; want the other %d and no more", k, more, err, n-got)
			}
			if len(s.Notifier.Notices()) != n {
				t.Errorf("%d notices, want %d", len(s.Notifier.Notices()), n)
			}
		})
	}
}

// ExpireDue claims no batch once the Service drains.
func TestExpireDueDraining(t *testing.T) {
	s := verifytest.NewService(t)
	ctx := context.Background()
	if _, err := s.Start(ctx, verify.StartRequest{Tenant: "t", To: "+4915123456789", Channel: verify.ChannelSMS}); err != nil {
		t.Fatal(err)
	}
	s.Clock.Add(verify.DefaultLifetime)
	s.Drain()
	if n, more, err := s.ExpireDue(ctx); n != 0 || more || err != nil {
		t.Fatalf("ExpireDue while draining = %d, %v, %v; want none", n, more, err)
	}
}
