package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/ratelimit"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/sms"
	"github.com/verigate/verigate/store"
	"github.com/verigate/verigate/verify"
)

// countingSender counts sends and keeps the last code it was given.
type countingSender struct {
	sent atomic.Int64
	mu   sync.Mutex
	last map[string]string // number → body
}

func (s *countingSender) Send(_ context.Context, m verify.Message) (string, error) {
	s.sent.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]string{}
	}
	s.last[m.To] = m.Body
	return "ref", nil
}

func (s *countingSender) code(t testing.TB, to string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.last[to]
	if len(b) < 7 {
		t.Fatalf("no SMS to %s", to)
	}
	return b[len(b)-7 : len(b)-1] // "... is 123456."
}

// redisService is a verify.Service on Redis state and limits, as serve
// wires it, with a sender that counts.
func redisService(t testing.TB, c redis.UniversalClient, prefix string) (*verify.Service, *countingSender) {
	t.Helper()
	return redisServiceWith(t, c, prefix, ratelimit.DefaultPolicies())
}

// redisServiceWith is redisService enforcing policies.
func redisServiceWith(t testing.TB, c redis.UniversalClient, prefix string, policies []ratelimit.Policy) (*verify.Service, *countingSender) {
	t.Helper()
	lim, err := ratelimit.NewRedis(c, policies, ratelimit.RedisOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	h, err := verify.NewHasher([]byte("fault-test-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	sender := &countingSender{}
	svc, err := verify.NewService(verify.Config{
		Store: store.NewRedis(c, store.RedisOptions{Prefix: prefix, Limits: lim}), Limiter: lim,
		Parser: route.Classifier{}, Router: route.Defaults{}, Formatter: sms.Template{}, Hasher: h,
		Senders: map[string]verify.Sender{"console": sender}, DefaultSender: "console",
		CheckLock: verify.CheckLock{Max: 10, Window: time.Hour},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc, sender
}

// TestRedisOutage stops Redis under a running Service: starts and checks
// fail closed with ErrUnavailable and nothing is sent; when Redis is back
// the same client serves again by itself.
func TestRedisOutage(t *testing.T) {
	for _, pipelined := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "auto-pipelined"}[pipelined], func(t *testing.T) {
			testRedisOutage(t, pipelined)
		})
	}
}

func testRedisOutage(t *testing.T, pipelined bool) {
	srv := redistest.StartServer(t)
	c, err := store.OpenRedis(srv.URL() + "?dial_timeout=500ms")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmds := c
	if pipelined {
		cmds = autoPipelined(t, c)
	}
	svc, sender := redisService(t, cmds, "vg:")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	v, err := svc.Start(ctx, verify.StartRequest{Tenant: "t1", To: "+4915112345001", Channel: verify.ChannelSMS})
	if err != nil {
		t.Fatalf("start with Redis up: %v", err)
	}
	if sender.sent.Load() != 1 {
		t.Fatalf("sent %d, want 1", sender.sent.Load())
	}

	srv.Stop()
	for i := range 3 {
		_, err := svc.Start(ctx, verify.StartRequest{Tenant: "t1", To: fmt.Sprintf("+491511234510%d", i), Channel: verify.ChannelSMS})
		if !errors.Is(err, verify.ErrUnavailable) {
			t.Errorf("start with Redis down: err = %v, want ErrUnavailable", err)
		}
		if verify.ErrorCode(err) != verify.CodeUnavailable {
			t.Errorf("error code %s, want %s", verify.ErrorCode(err), verify.CodeUnavailable)
		}
	}
	if _, err := svc.Check(ctx, "t1", v.ID, "123456"); !errors.Is(err, verify.ErrUnavailable) {
		t.Errorf("check with Redis down: err = %v, want ErrUnavailable", err)
	}
	if _, err := svc.CheckByNumber(ctx, "t1", "+4915112345001", "123456"); !errors.Is(err, verify.ErrUnavailable) {
		t.Errorf("check by number with Redis down: err = %v, want ErrUnavailable", err)
	}
	if n := sender.sent.Load(); n != 1 {
		t.Errorf("sent %d with Redis down, want none after the first", n-1)
	}

	srv.Restart() // empty: this server keeps nothing on disk
	// go-redis stops dialling a server that refused PoolSize dials and
	// probes it once a second; the same Service recovers without help.
	var v2 *verify.Verification
	for {
		v2, err = svc.Start(ctx, verify.StartRequest{Tenant: "t1", To: "+4915112345002", Channel: verify.ChannelSMS})
		if err == nil {
			break
		}
		if !errors.Is(err, verify.ErrUnavailable) || ctx.Err() != nil {
			t.Fatalf("start after Redis came back: %v", err)
		}
		if n := sender.sent.Load(); n != 1 {
			t.Fatalf("sent %d while Redis was unavailable", n-1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := sender.sent.Load(); n != 2 {
		t.Errorf("sent %d in all, want 2", n)
	}
	got, err := svc.Check(ctx, "t1", v2.ID, sender.code(t, "+4915112345002"))
	if err != nil || got.Status != verify.StatusApproved {
		t.Fatalf("check after Redis came back: %v %v", got, err)
	}
}

// TestRedisKeysExpire makes 10,000 verifications with short lifetimes
// (some approved, some failed, limits consumed, a block) on a private
// Redis and waits until every key is gone: nothing grows without bound.
func TestRedisKeysExpire(t *testing.T) {
	const n = 10000
	srv := redistest.StartServer(t)
	c := srv.Client(t)
	lim, err := ratelimit.NewRedis(c, []ratelimit.Policy{
		{Name: "number", Scope: ratelimit.ScopeNumber, Limit: 5, Window: time.Second},
		{Name: "tenant", Scope: ratelimit.ScopeTenant, Limit: n, Window: time.Second},
	}, ratelimit.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewRedis(c, store.RedisOptions{Retention: 2 * time.Second, Limits: lim})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lock := verify.CheckLock{Max: 10, Window: time.Second}
	work := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				to := fmt.Sprintf("+4915%09d", i)
				now := time.Now()
				v := &verify.Verification{ID: fmt.Sprintf("VE%032d", i), Tenant: "t", To: to, Channel: verify.ChannelSMS,
					Status: verify.StatusPending, MaxAttempts: 3, Sends: 1, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(100 * time.Millisecond)}
				if _, _, err := st.Start(ctx, verify.SendSubject{Tenant: "t", To: to, Channel: verify.ChannelSMS}, v, "h"+to, now); err != nil {
					errs <- err
					return
				}
				var err error
				switch i % 3 {
				case 0:
					_, err = st.Check(ctx, verify.CheckQuery{Tenant: "t", ID: v.ID, Hash: "h" + to, Now: now, Lock: lock})
				case 1:
					_, err = st.Check(ctx, verify.CheckQuery{Tenant: "t", To: to, Hash: "wrong", Now: now, Lock: lock})
				}
				if err == nil && i%100 == 0 {
					_, err = st.AddEvent(ctx, v.ID, verify.Event{Type: verify.EventDelivered, At: now, Key: "d"})
					if err == nil {
						err = lim.Block(ctx, to, 200*time.Millisecond)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	go func() {
		defer close(work)
		for i := range n {
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	before, err := c.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if before == 0 {
		t.Fatalf("DBSIZE 0 right after %d verifications: nothing was stored", n)
	}
	// Every key has a TTL: none is left to grow without bound.
	var keys []string
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) && len(keys) < 200 {
		keys = append(keys, iter.Val())
	}
	for _, k := range keys {
		if ttl, err := c.PTTL(ctx, k).Result(); err == nil && ttl == -1*time.Nanosecond {
			t.Errorf("key %s has no TTL", k)
		}
	}
	for {
		size, err := c.DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if size == 0 {
			break
		}
		select {
		case <-ctx.Done():
			left, _, _ := c.Scan(context.Background(), 0, "*", 20).Result()
			t.Fatalf("%d keys left (e.g. %v)", size, left)
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Logf("%d keys after %d verifications, all expired", before, n)
}
