package verify

import (
	"context"
	"errors"
	"time"
)

// Changes tells waiters that a verification may have changed: the store's
// half of Service.Wait and Service.Follow. store.Memory implements it in
// process; store.RedisChanges over Redis pub/sub, so that a change made
// through any gateway on the same Redis reaches the waiters of every one.
type Changes interface {
	// Subscribe registers interest in verification id until cancel is
	// called. The registration is in force when Subscribe returns: every
	// change the store's Check, Transition, AddEvent or Expire makes after that
	// (a resend need not) sends on c, including one made between
	// Subscribe and the caller's next read. Sends coalesce (c holds one)
	// and may be spurious: after a lost connection every waiter is woken,
	// since changes may have been missed.
	Subscribe(ctx context.Context, id string) (c <-chan struct{}, cancel func(), err error)
}

// pollInterval is how often Follow reads a verification when neither
// Config.Changes nor the Store tells of changes.
const pollInterval = time.Second

// Follow calls fn with verification id as the tenant's Get sees it now,
// and again after each change (of status, events, attempts or sends),
// until it is final: then it returns nil once fn has seen the final state.
// A pending verification is read again when its lifetime ends, so its
// expiry is seen although nothing in the store changes then.
//
// Errors: fn's; ctx's; and Get's (ErrNotFound, ErrUnavailable).
func (s *Service) Follow(ctx context.Context, tenant, id string, fn func(*Verification) error) error {
	// Subscribe before the first read: no change falls between the two.
	var changed <-chan struct{}
	var poll *time.Ticker
	if s.changes != nil {
		c, cancel, err := s.changes.Subscribe(ctx, id)
		if err != nil {
			return unavailableUnless(err)
		}
		defer cancel()
		changed = c
	} else {
		poll = time.NewTicker(pollInterval)
		defer poll.Stop()
	}
	var last *Verification
	expiry := time.NewTimer(0)
	defer expiry.Stop()
	<-expiry.C
	for {
		v, err := s.Get(ctx, tenant, id)
		if err != nil {
			return err
		}
		if last == nil || differs(last, v) {
			if err := fn(v); err != nil {
				return err
			}
		}
		if v.Status.Final() {
			return nil
		}
		last = v
		// Service.Get reports expired from this moment on.
		expiry.Reset(max(v.ExpiresAt.Sub(s.cfg.Now()), 0) + time.Millisecond)
		var tick <-chan time.Time
		if poll != nil {
			tick = poll.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-tick:
		case <-expiry.C:
		}
		if !expiry.Stop() {
			select {
			case <-expiry.C:
			default:
			}
		}
	}
}

// differs reports whether b tells a follower something a did not.
func differs(a, b *Verification) bool {
	return a.Status != b.Status || a.Reason != b.Reason || len(a.Events) != len(b.Events) ||
		a.Attempts != b.Attempts || a.Sends != b.Sends
}

// Wait returns verification id as soon as it is no longer pending, or as it
// stands when d has passed (still pending then). d <= 0 reads it once.
// Errors: Get's, and ctx's when it ends first.
func (s *Service) Wait(ctx context.Context, tenant, id string, d time.Duration) (*Verification, error) {
	if d <= 0 {
		return s.Get(ctx, tenant, id)
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var last *Verification
	err := s.Follow(wctx, tenant, id, func(v *Verification) error { last = v; return nil })
	switch {
	case err == nil:
		return last, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case last != nil && errors.Is(wctx.Err(), context.DeadlineExceeded):
		// The wait is over: what was last read is the current state, since
		// no change has been told of since.
		return last, nil
	}
	return nil, err
}
