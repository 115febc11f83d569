package store_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/verify"
)

// TestRoundTrips counts the round trips to Redis of each call of a
// Service on Redis state and limits: one per check, one per start (the
// store's start script consumes the limits too).
func TestRoundTrips(t *testing.T) {
	opt, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	rt := &redistest.RoundTrips{}
	c.AddHook(rt)
	svc, sender := redisService(t, c, redistest.Prefix(t))
	ctx := context.Background()
	to := []string{"+4915112340001", "+4915112340002", "+4915112340003"}
	// The first calls load the scripts (EVALSHA, then EVAL); count after.
	if _, err := svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to[0]}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CheckByNumber(ctx, "t", to[0], sender.code(t, to[0])); err != nil {
		t.Fatal(err)
	}

	var v *verify.Verification
	steps := []struct {
		name string
		do   func() error
		want int64
	}{
		{"start", func() (err error) { v, err = svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to[1]}); return err }, 1},
		{"resend", func() (err error) { _, err = svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to[1]}); return err }, 1},
		{"wrong check by id", func() (err error) { _, err = svc.Check(ctx, "t", v.ID, "000000"); return err }, 1},
		{"check by id", func() (err error) { _, err = svc.Check(ctx, "t", v.ID, sender.code(t, to[1])); return err }, 1},
		{"start 2", func() (err error) { _, err = svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to[2]}); return err }, 1},
		{"check by number", func() (err error) { _, err = svc.CheckByNumber(ctx, "t", to[2], sender.code(t, to[2])); return err }, 1},
		{"get", func() (err error) { _, err = svc.Get(ctx, "t", v.ID); return err }, 1},
	}
	for _, s := range steps {
		rt.Reset()
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := rt.Count(); got != s.want {
			t.Errorf("%s: %d round trips, want %d", s.name, got, s.want)
		}
	}
}
