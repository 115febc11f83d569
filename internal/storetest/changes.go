package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/verigate/verigate/verify"
)

// NewChanges returns an empty store for one test and the feeds that tell
// of its changes: one per gateway that would share it (the Redis feed is
// running and subscribed when it is returned).
type NewChanges func(t *testing.T) (verify.Store, []verify.Changes)

// signalWait bounds how long a change may take to reach a waiter: a
// Redis message crosses a socket and the subscriber's goroutine.
const signalWait = 10 * time.Second

// RunChanges runs the contract of verify.Changes: each change the store's
// Check, Transition, AddEvent, Expire and a resending Start make wakes every waiter of that
// verification, on every feed, and a cancelled waiter is not woken.
func RunChanges(t *testing.T, newChanges NewChanges) {
	changes := []struct {
		name string
		do   func(f fixture, v *verify.Verification) error
	}{
		{"check approves", func(f fixture, v *verify.Verification) error {
			_, err := f.s.Check(f.ctx, verify.CheckQuery{Tenant: v.Tenant, ID: v.ID, Hash: hash(v.Tenant, "111111"), Now: T0.Add(time.Second)})
			return err
		}},
		{"check fails", func(f fixture, v *verify.Verification) error {
			_, err := f.s.Check(f.ctx, verify.CheckQuery{Tenant: v.Tenant, To: v.To, Hash: hash(v.Tenant, "999999"), Now: T0.Add(time.Second)})
			return err
		}},
		{"check finds it expired", func(f fixture, v *verify.Verification) error {
			_, err := f.s.Check(f.ctx, verify.CheckQuery{Tenant: v.Tenant, ID: v.ID, Hash: hash(v.Tenant, "111111"), Now: T0.Add(lifetime)})
			return err
		}},
		{"transition", func(f fixture, v *verify.Verification) error {
			_, err := f.s.Transition(f.ctx, "", v.ID, verify.StatusApproved, "", verify.Event{Type: verify.EventCallApproved, At: T0.Add(time.Second)})
			return err
		}},
		{"transition finds it expired", func(f fixture, v *verify.Verification) error {
			_, err := f.s.Transition(f.ctx, "", v.ID, verify.StatusApproved, "", verify.Event{Type: verify.EventCallApproved, At: T0.Add(lifetime)})
			wantNotPending(f.t, err, verify.StatusExpired)
			return nil
		}},
		{"sweep expires it", func(f fixture, v *verify.Verification) error {
			x, ok := f.s.(verify.Expirer)
			if !ok {
				f.t.Fatalf("%T is not a verify.Expirer", f.s)
			}
			_, _, err := x.Expire(f.ctx, T0.Add(lifetime), 10)
			return err
		}},
		{"resend", func(f fixture, v *verify.Verification) error {
			// A resend (an SMS↔call fallback is one too) adds an event.
			in := NewVerification(f.t, v.Tenant, v.To, T0.Add(time.Second))
			in.SealedCode = sealed(f.t, v.Tenant, in.ID, "111111")
			_, resent, err := f.s.Start(f.ctx, Subject(in), in, hash(v.Tenant, "111111"), T0.Add(time.Second))
			if err == nil && !resent {
				f.t.Fatal("the second start did not resend")
			}
			return err
		}},
		{"event", func(f fixture, v *verify.Verification) error {
			_, err := f.s.AddEvent(f.ctx, v.ID, verify.Event{Type: verify.EventRinging, At: T0.Add(time.Second)})
			return err
		}},
	}
	for _, tc := range changes {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, feeds := newChanges(t)
			f := fixture{t: t, s: s, ctx: ctx}
			v, _ := f.start(tenantA, Number(t), "111111", T0)
			other, _ := f.start(tenantA, Number(t), "111111", T0)
			var waiters []<-chan struct{}
			for _, feed := range feeds {
				for range 2 {
					c, stop, err := feed.Subscribe(ctx, v.ID)
					if err != nil {
						t.Fatal(err)
					}
					defer stop()
					waiters = append(waiters, c)
				}
			}
			// A waiter of another verification beside them.
			for _, feed := range feeds {
				_, stop, err := feed.Subscribe(ctx, other.ID)
				if err != nil {
					t.Fatal(err)
				}
				defer stop()
			}
			if err := tc.do(f, v); err != nil {
				t.Fatal(err)
			}
			for i, c := range waiters {
				select {
				case <-c:
				case <-time.After(signalWait):
					t.Fatalf("waiter %d not woken by the change", i)
				}
			}
		})
	}
	t.Run("cancelled waiter", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, feeds := newChanges(t)
		f := fixture{t: t, s: s, ctx: ctx}
		v, _ := f.start(tenantA, Number(t), "111111", T0)
		for _, feed := range feeds {
			gone, stop, err := feed.Subscribe(ctx, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			stop()
			stop() // twice is harmless
			if _, err := f.s.AddEvent(ctx, v.ID, verify.Event{Type: verify.EventRinging, At: T0.Add(time.Second)}); err != nil {
				t.Fatal(err)
			}
			// A later waiter woken by a later change: the earlier change
			// has been handed out by then, in order.
			later, stop, err := feed.Subscribe(ctx, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			if _, err := f.s.AddEvent(ctx, v.ID, verify.Event{Type: verify.EventAnswered, At: T0.Add(2 * time.Second)}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-later:
			case <-time.After(signalWait):
				t.Fatal("later waiter not woken")
			}
			select {
			case <-gone:
				t.Fatal("a cancelled waiter was woken")
			default:
			}
		}
	})
}
