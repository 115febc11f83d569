package verify_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

// approveCall starts an approve-mode call verification on s.
func approveCall(t *testing.T, s *verifytest.Service) *verify.Verification {
	t.Helper()
	return startCall(t, s, verify.ChannelCall, verify.CallModeApprove)
}

// readStore tells of each Get of the store it holds, and hides that
// store's Changes: the Service polls unless Config.Changes is set.
type readStore struct {
	verify.Store
	read chan struct{}
}

func (r readStore) Get(ctx context.Context, tenant, id string) (*verify.Verification, error) {
	v, err := r.Store.Get(ctx, tenant, id)
	select {
	case r.read <- struct{}{}:
	default:
	}
	return v, err
}

func TestWait(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(read chan struct{}) verifytest.Option
	}{
		{"told of changes", func(read chan struct{}) verifytest.Option {
			return verifytest.WithConfig(func(c *verify.Config) { c.Changes, c.Store = c.Store.(verify.Changes), readStore{c.Store, read} })
		}},
		{"polling", func(read chan struct{}) verifytest.Option {
			return verifytest.WithConfig(func(c *verify.Config) { c.Store = readStore{c.Store, read} })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("returns on approval", func(t *testing.T) {
				read := make(chan struct{}, 1)
				s := verifytest.NewService(t, tc.opts(read))
				v := approveCall(t, s)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				var wg sync.WaitGroup
				var got *verify.Verification
				var err error
				wg.Go(func() { got, err = s.Wait(ctx, "acme", v.ID, time.Hour) })
				<-read // the waiter has read it pending
				if err := s.Report(ctx, v.ID, verify.Event{Type: verify.EventCallApproved, Channel: verify.ChannelCall, Attempt: 1, Outcome: &verify.Outcome{Status: verify.StatusApproved}}); err != nil {
					t.Fatal(err)
				}
				wg.Wait()
				if err != nil || got.Status != verify.StatusApproved {
					t.Fatalf("Wait = %v, %v; want approved before the hour", got, err)
				}
			})
			t.Run("answers pending when the wait ends", func(t *testing.T) {
				s := verifytest.NewService(t, tc.opts(make(chan struct{}, 1)))
				v := approveCall(t, s)
				got, err := s.Wait(context.Background(), "acme", v.ID, 50*time.Millisecond)
				if err != nil || got.Status != verify.StatusPending || got.ID != v.ID {
					t.Fatalf("Wait = %+v, %v; want it pending", got, err)
				}
			})
			t.Run("not found", func(t *testing.T) {
				s := verifytest.NewService(t, tc.opts(make(chan struct{}, 1)))
				v := approveCall(t, s)
				for _, q := range []struct{ tenant, id string }{{"other", v.ID}, {"acme", "nope"}} {
					if _, err := s.Wait(context.Background(), q.tenant, q.id, time.Second); !errors.Is(err, verify.ErrNotFound) {
						t.Errorf("Wait(%s, %s) err = %v, want ErrNotFound", q.tenant, q.id, err)
					}
				}
			})
			t.Run("caller gone", func(t *testing.T) {
				s := verifytest.NewService(t, tc.opts(make(chan struct{}, 1)))
				v := approveCall(t, s)
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(20*time.Millisecond, cancel)
				if _, err := s.Wait(ctx, "acme", v.ID, time.Hour); !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want context.Canceled", err)
				}
			})
		})
	}
}

// TestWaitSeesExpiry: nothing in the store changes when a verification's
// lifetime ends, yet a waiter learns that it expired then.
func TestWaitSeesExpiry(t *testing.T) {
	s := verifytest.NewService(t, verifytest.WithConfig(func(c *verify.Config) {
		c.Now, c.Lifetime = time.Now, 100*time.Millisecond
	}))
	v := approveCall(t, s)
	got, err := s.Wait(context.Background(), "acme", v.ID, time.Minute)
	if err != nil || got.Status != verify.StatusExpired {
		t.Fatalf("Wait = %+v, %v; want expired", got, err)
	}
}

// TestFollow: a follower sees the verification as it was, its call's
// progress, and the final status, then Follow returns.
func TestFollow(t *testing.T) {
	s := verifytest.NewService(t)
	v := approveCall(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := make(chan *verify.Verification, 16)
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(ctx, "acme", v.ID, func(v *verify.Verification) error { seen <- v; return nil })
	}()
	first := <-seen
	if first.Status != verify.StatusPending {
		t.Fatalf("first state %s, want pending", first.Status)
	}
	for _, ev := range []verify.EventType{verify.EventRinging, verify.EventAnswered} {
		if err := s.Report(ctx, v.ID, verify.Event{Type: ev, Channel: verify.ChannelCall, Attempt: 1}); err != nil {
			t.Fatal(err)
		}
		got := <-seen
		if last := got.Events[len(got.Events)-1]; last.Type != ev || got.Status != verify.StatusPending {
			t.Fatalf("after %s: status %s, last event %s", ev, got.Status, last.Type)
		}
	}
	if err := s.Report(ctx, v.ID, verify.Event{Type: verify.EventCallApproved, Channel: verify.ChannelCall, Attempt: 1, Outcome: &verify.Outcome{Status: verify.StatusApproved}}); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got.Status != verify.StatusApproved {
		t.Fatalf("final status %s, want approved", got.Status)
	}
	if err := <-done; err != nil {
		t.Fatalf("Follow = %v after the final status, want nil", err)
	}
	// A final verification is seen once and Follow returns at once.
	n := 0
	if err := s.Follow(ctx, "acme", v.ID, func(*verify.Verification) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("Follow of an ended verification: %d calls, err %v", n, err)
	}
	// fn's error ends it.
	other := verifytest.NewService(t)
	w := approveCall(t, other)
	stop := errors.New("stop")
	if err := other.Follow(ctx, "acme", w.ID, func(*verify.Verification) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Follow = %v, want fn's error", err)
	}
}
