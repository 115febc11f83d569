package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/verify"
)

// TestRedisServicesShareState runs two Services, each with its own Redis
// client (two gateways), on one Redis: what one starts the other checks,
// and limits count the sends of both.
func TestRedisServicesShareState(t *testing.T) {
	prefix := redistest.Prefix(t)
	a, sender := redisService(t, redistest.Client(t), prefix) // each its own client and pool
	b, _ := redisService(t, redistest.Client(t), prefix)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const to = "+4915112347001"

	v, err := a.Start(ctx, verify.StartRequest{Tenant: "t", To: to})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "t", v.ID); err != nil {
		t.Fatalf("gateway b cannot see gateway a's verification: %v", err)
	}
	got, err := b.Check(ctx, "t", v.ID, sender.code(t, to))
	if err != nil || got.Status != verify.StatusApproved {
		t.Fatalf("check on gateway b: %v %v", got, err)
	}
	if _, err := a.Check(ctx, "t", v.ID, sender.code(t, to)); !errors.Is(err, verify.ErrNotPending) {
		t.Errorf("second check on gateway a: %v, want not pending", err)
	}
	// 5 SMS per number per 10 minutes, whichever gateway sends them.
	for i := range 4 {
		svc := a
		if i%2 == 1 {
			svc = b
		}
		if _, err := svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to}); err != nil {
			t.Fatalf("send %d: %v", i+2, err)
		}
	}
	if _, err := b.Start(ctx, verify.StartRequest{Tenant: "t", To: to}); !errors.Is(err, verify.ErrRateLimited) {
		t.Errorf("6th send across both gateways: %v, want rate limited", err)
	}
}

// TestRedisServiceRaces starts one number 100 times at once: exactly the 5
// the default policy allows are sent, all in one verification; then 50
// concurrent checks with the right code approve it exactly once.
func TestRedisServiceRaces(t *testing.T) {
	c := redistest.Client(t)
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
	}{{"plain", c}, {"auto-pipelined", autoPipelined(t, c)}} {
		t.Run(tc.name, func(t *testing.T) { testRedisServiceRaces(t, tc.client) })
	}
}

func testRedisServiceRaces(t *testing.T, c redis.UniversalClient) {
	svc, sender := redisService(t, c, redistest.Prefix(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const to = "+4915112347002"

	var wg sync.WaitGroup
	type result struct {
		v   *verify.Verification
		err error
	}
	starts := make(chan result, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := svc.Start(ctx, verify.StartRequest{Tenant: "t", To: to})
			starts <- result{v, err}
		}()
	}
	wg.Wait()
	close(starts)
	ids := map[string]bool{}
	for r := range starts {
		switch {
		case r.err == nil:
			ids[r.v.ID] = true
		case !errors.Is(r.err, verify.ErrRateLimited):
			t.Errorf("start: %v", r.err)
		}
	}
	if n := sender.sent.Load(); n != 5 {
		t.Errorf("%d SMS sent for 100 concurrent starts, want 5", n)
	}
	if len(ids) != 1 {
		t.Fatalf("%d verifications for one number, want 1", len(ids))
	}
	var id string
	for id = range ids {
	}

	code := sender.code(t, to)
	approved := make(chan bool, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := svc.Check(ctx, "t", id, code)
			if err != nil && !errors.Is(err, verify.ErrNotPending) {
				t.Errorf("check: %v", err)
			}
			approved <- err == nil && v.Status == verify.StatusApproved
		}()
	}
	wg.Wait()
	close(approved)
	n := 0
	for ok := range approved {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d of 50 concurrent checks approved, want exactly 1", n)
	}
}

// TestRedisGatewayRestart closes a gateway's client after a start, as a
// restart does, and checks the code on a fresh Service and client: the
// verification survives; and so does the send count for the number.
func TestRedisGatewayRestart(t *testing.T) {
	prefix := redistest.Prefix(t)
	first := redistest.Client(t)
	before, sender := redisService(t, first, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const to = "+4915112347003"
	v, err := before.Start(ctx, verify.StartRequest{Tenant: "t", To: to})
	if err != nil {
		t.Fatal(err)
	}
	first.Close()

	after, _ := redisService(t, redistest.Client(t), prefix)
	for i := range 4 {
		if _, err := after.Start(ctx, verify.StartRequest{Tenant: "t", To: to}); err != nil {
			t.Fatalf("resend %d after restart: %v", i+1, err)
		}
	}
	if _, err := after.Start(ctx, verify.StartRequest{Tenant: "t", To: to}); !errors.Is(err, verify.ErrRateLimited) {
		t.Errorf("6th send, 1 before the restart and 4 after: %v, want rate limited", err)
	}
	// The code sent before the restart is still valid.
	got, err := after.Check(ctx, "t", v.ID, sender.code(t, to))
	if err != nil || got.Status != verify.StatusApproved || got.Sends != 5 {
		t.Fatalf("check after restart: %+v %v, want approved after 5 sends", got, err)
	}
}
