package verify

import (
	"context"
	"log/slog"
	"time"
)

// Expirer is a Store that finds, by itself, the verifications left pending
// past their lifetime. Without a sweep, a verification nobody reads again
// would never be marked expired: its status callback would never fire and
// the metrics would never count its end.
type Expirer interface {
	// Expire marks expired (the transition a check past the lifetime
	// makes: EventExpired at ExpiresAt, the number's pending pointer
	// cleared, the change published) at most limit verifications that
	// are still pending at now and past their ExpiresAt, and returns them
	// as marked. Each expiry is returned by one call only, even when
	// several gateways sweep one store at once. more reports that more
	// may be due. Relayed messages (KindMessage) are not swept.
	Expire(ctx context.Context, now time.Time, limit int) (expired []*Verification, more bool, err error)
}

// Expiry sweep defaults: how often RunExpiry sweeps, how many
// verifications one store call may expire, and how many such batches one
// sweep runs before it leaves the rest to the next one, so that a backlog
// (a gateway back after an outage) is worked off in bounded steps.
const (
	ExpirySweepEvery   = 2 * time.Second
	ExpiryBatch        = 100
	ExpiryBatchesSweep = 10
)

// ExpireDue runs one sweep: it ends, as expired, the verifications the
// store finds pending past their lifetime, at most ExpiryBatchesSweep
// batches of ExpiryBatch, and tells the client's callback and the
// lifecycle observer of each, as a check that finds one expired does. It
// returns how many it ended, and more when its last batch was full (more
// may be due: RunExpiry sweeps again at once). It claims no batch once
// the Service drains or ctx ends, so that no expiry is claimed by a
// gateway about to stop. A Store that is not an Expirer ends none.
func (s *Service) ExpireDue(ctx context.Context) (n int, more bool, err error) {
	x, ok := s.cfg.Store.(Expirer)
	if !ok {
		return 0, false, nil
	}
	for range ExpiryBatchesSweep {
		if s.Draining() || ctx.Err() != nil {
			return n, false, nil
		}
		var expired []*Verification
		expired, more, err = x.Expire(ctx, s.cfg.Now(), ExpiryBatch)
		for _, v := range expired {
			n++
			if s.log.Enabled(ctx, slog.LevelInfo) {
				s.log.Info("verification expired", "verification", v.ID, "tenant", v.Tenant, "to", MaskNumber(v.To))
			}
			s.notify(v)
			s.ended(v, lastEvent(v))
		}
		if err != nil {
			return n, false, unavailableUnless(err)
		}
		if !more {
			return n, false, nil
		}
	}
	return n, true, nil
}

// RunExpiry sweeps every ExpirySweepEvery, and again at once while a
// sweep leaves more due (a backlog is worked off as fast as the store
// allows, not ExpiryBatchesSweep batches a tick), until ctx ends or the
// Service drains: a draining gateway is on its way out and leaves the
// sweep to the gateways that share its store (or to itself restarted), so
// that no expiry is claimed by a process about to stop before its
// callback is queued. A failing store is logged once until it recovers,
// and retried at the next tick.
func (s *Service) RunExpiry(ctx context.Context) {
	if _, ok := s.cfg.Store.(Expirer); !ok {
		return
	}
	t := time.NewTicker(ExpirySweepEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for more := true; more; {
			if s.Draining() {
				return
			}
			var err error
			_, more, err = s.ExpireDue(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil && !failing:
				s.log.Warn("expiry sweep failed", "err", err)
			case err == nil && failing:
				s.log.Info("expiry sweep recovered")
			}
			failing = err != nil
		}
	}
}
