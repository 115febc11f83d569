package store_test

import (
	"context"
	"testing"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/verify"
)

// TestRoundTrips counts the round trips to Redis of each call of a
// Service on Redis state and limits: one per check, one per start (the
// store's start script consumes the limits too). It runs on a private
// Redis, which holds no script at first, and counts on a second pass: the
// first call of each script loads it (EVALSHA, then EVAL).
func TestRoundTrips(t *testing.T) {
	c := redistest.StartServer(t).Client(t)
	rt := &redistest.RoundTrips{}
	c.AddHook(rt)
	svc, sender := redisService(t, c, redistest.Prefix(t))
	ctx := context.Background()
	for pass, to := range [][]string{
		{"+4915112340001", "+4915112340002"}, // loads the scripts
		{"+4915112340003", "+4915112340004"},
	} {
		var v *verify.Verification
		steps := []struct {
			name string
			do   func() error
			want int64
		}{
			{"start", func() (err error) { v, err = svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to[0]}); return err }, 1},
			{"resend", func() (err error) { _, err = svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to[0]}); return err }, 1},
			{"wrong check by id", func() (err error) { _, err = svc.Check(ctx, "t", v.ID, "000000"); return err }, 1},
			{"check by id", func() (err error) { _, err = svc.Check(ctx, "t", v.ID, sender.code(t, to[0])); return err }, 1},
			{"start 2", func() (err error) { _, err = svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to[1]}); return err }, 1},
			{"check by number", func() (err error) { _, err = svc.CheckByNumber(ctx, "t", to[1], sender.code(t, to[1])); return err }, 1},
			{"get", func() (err error) { _, err = svc.Get(ctx, "t", v.ID); return err }, 1},
		}
		for _, s := range steps {
			rt.Reset()
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if got := rt.Count(); pass > 0 && got != s.want {
				t.Errorf("%s: %d round trips, want %d", s.name, got, s.want)
			}
		}
	}
}
