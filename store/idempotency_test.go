package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/store"
)

// idemStore is api.IdempotencyStore, restated so this test does not import api.
type idemStore interface {
	Reserve(ctx context.Context, tenant, key string, value []byte, ttl time.Duration) ([]byte, bool, error)
	Save(ctx context.Context, tenant, key string, value []byte, ttl time.Duration) error
	Release(ctx context.Context, tenant, key string, value []byte) error
}

// idemImpl builds a fresh store; wait lets time pass for it (the memory
// store's clock moves, Redis is given real time to expire a key).
type idemImpl struct {
	name string
	make func(t *testing.T) (s idemStore, wait func(time.Duration))
}

func idemImpls() []idemImpl {
	return []idemImpl{
		{"memory", func(t *testing.T) (idemStore, func(time.Duration)) {
			clock := verifytest.NewClock(verifytest.Epoch)
			return store.NewIdempotencyMemory(clock.Now), clock.Add
		}},
		{"redis", func(t *testing.T) (idemStore, func(time.Duration)) {
			return store.NewIdempotencyRedis(redistest.Client(t)), time.Sleep
		}},
	}
}

// idemTenant keeps tests apart on a Redis shared with other tests.
func idemTenant(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

func TestIdempotencyStoreContract(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, s idemStore, wait func(time.Duration), tenant string)
	}{
		{"first reserve wins, second reads it", func(t *testing.T, s idemStore, _ func(time.Duration), tenant string) {
			got, ok, err := s.Reserve(ctx, tenant, "k1", []byte("first"), time.Minute)
			if err != nil || !ok || got != nil {
				t.Fatalf("first Reserve = %q, %v, %v; want reserved", got, ok, err)
			}
			got, ok, err = s.Reserve(ctx, tenant, "k1", []byte("second"), time.Minute)
			if err != nil || ok || string(got) != "first" {
				t.Fatalf("second Reserve = %q, %v, %v; want \"first\", not reserved", got, ok, err)
			}
		}},
		{"keys are per tenant", func(t *testing.T, s idemStore, _ func(time.Duration), tenant string) {
			if _, ok, err := s.Reserve(ctx, tenant, "k", []byte("a"), time.Minute); !ok || err != nil {
				t.Fatalf("Reserve: %v %v", ok, err)
			}
			if _, ok, err := s.Reserve(ctx, tenant+"x", "k", []byte("b"), time.Minute); !ok || err != nil {
				t.Fatalf("another tenant's Reserve of the same key = %v, %v; want reserved", ok, err)
			}
		}},
		{"save replaces and is read back", func(t *testing.T, s idemStore, _ func(time.Duration), tenant string) {
			_, _, _ = s.Reserve(ctx, tenant, "k", []byte("lock"), time.Minute)
			if err := s.Save(ctx, tenant, "k", []byte("response"), time.Hour); err != nil {
				t.Fatal(err)
			}
			got, ok, err := s.Reserve(ctx, tenant, "k", []byte("other"), time.Minute)
			if err != nil || ok || string(got) != "response" {
				t.Fatalf("Reserve after Save = %q, %v, %v", got, ok, err)
			}
		}},
		{"release frees only its own value", func(t *testing.T, s idemStore, _ func(time.Duration), tenant string) {
			_, _, _ = s.Reserve(ctx, tenant, "k", []byte("mine"), time.Minute)
			if err := s.Release(ctx, tenant, "k", []byte("not mine")); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := s.Reserve(ctx, tenant, "k", []byte("x"), time.Minute); ok {
				t.Fatal("Release with another value freed the key")
			}
			if err := s.Release(ctx, tenant, "k", []byte("mine")); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := s.Reserve(ctx, tenant, "k", []byte("again"), time.Minute); !ok || err != nil {
				t.Fatalf("Reserve after Release = %v, %v; want reserved", ok, err)
			}
		}},
		{"entries expire after their ttl", func(t *testing.T, s idemStore, wait func(time.Duration), tenant string) {
			_, _, _ = s.Reserve(ctx, tenant, "k", []byte("short"), 50*time.Millisecond)
			wait(200 * time.Millisecond)
			if _, ok, err := s.Reserve(ctx, tenant, "k", []byte("later"), time.Minute); !ok || err != nil {
				t.Fatalf("Reserve after expiry = %v, %v; want reserved", ok, err)
			}
		}},
		{"concurrent reserves: exactly one wins", func(t *testing.T, s idemStore, _ func(time.Duration), tenant string) {
			const n = 16
			var wg sync.WaitGroup
			wins := make(chan []byte, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					v := []byte{byte('a' + i)}
					if _, ok, err := s.Reserve(ctx, tenant, "race", v, time.Minute); err != nil {
						t.Error(err)
					} else if ok {
						wins <- v
					}
				}()
			}
			wg.Wait()
			close(wins)
			var won [][]byte
			for v := range wins {
				won = append(won, v)
			}
			if len(won) != 1 {
				t.Fatalf("%d reserves won, want 1", len(won))
			}
			got, _, _ := s.Reserve(ctx, tenant, "race", []byte("late"), time.Minute)
			if !bytes.Equal(got, won[0]) {
				t.Fatalf("stored %q, but %q won", got, won[0])
			}
		}},
	}
	for _, impl := range idemImpls() {
		for _, tc := range cases {
			t.Run(impl.name+"/"+tc.name, func(t *testing.T) {
				s, wait := impl.make(t)
				tenant := idemTenant(t)
				tc.run(t, s, wait, tenant)
				if r, ok := s.(*store.IdempotencyRedis); ok {
					idemCleanup(t, r, tenant)
				}
			})
		}
	}
}

func idemCleanup(t *testing.T, _ *store.IdempotencyRedis, tenant string) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	for _, tn := range []string{tenant, tenant + "x"} {
		keys, _ := rdb.Keys(ctx, "vg:idem:{"+tn+"}:*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	}
}

func TestIdempotencyRedisKeyFormat(t *testing.T) {
	if got, want := store.IdempotencyKey("acme", "abc-123"), "vg:idem:{acme}:abc-123"; got != want {
		t.Fatalf("IdempotencyKey = %q, want %q", got, want)
	}
	rdb := redistest.Client(t)
	s := store.NewIdempotencyRedis(rdb)
	tenant := idemTenant(t)
	ctx := context.Background()
	if _, _, err := s.Reserve(ctx, tenant, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	defer rdb.Del(ctx, store.IdempotencyKey(tenant, "k"))
	ttl, err := rdb.PTTL(ctx, "vg:idem:{"+tenant+"}:k").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("key vg:idem:{%s}:k has TTL %v (%v); want set, at most 1m", tenant, ttl, err)
	}
}
