package hosted_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/directory"
	"github.com/verigate/verigate/entra"
	"github.com/verigate/verigate/entra/hosted"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/verifytest"
	"github.com/verigate/verigate/verify"
)

// testFlowStore is the contract every FlowStore keeps. expire makes the
// store forget a flow stored with ttl (the memory store's clock moves; a
// Redis key is left to expire).
func testFlowStore(t *testing.T, s hosted.FlowStore, expire func(ttl time.Duration)) {
	ctx := context.Background()
	newFlow := func() *hosted.Flow {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		return &hosted.Flow{
			ID: hex.EncodeToString(b), SecretHash: []byte{1, 2, 3}, CSRF: "csrf",
			Request: &entra.Request{ClientID: "app", State: "st", Hint: entra.Hint{ObjectID: oidAlice}},
			Number:  mobile, Kind: directory.KindMobile, Locale: "de",
			CreatedAt: verifytest.Epoch, ExpiresAt: verifytest.Epoch.Add(10 * time.Minute),
		}
	}
	t.Run("create get", func(t *testing.T) {
		f := newFlow()
		if err := s.Create(ctx, f, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, f, time.Minute); !errors.Is(err, hosted.ErrFlowExists) {
			t.Fatalf("second create: %v", err)
		}
		got, err := s.Get(ctx, f.ID)
		if err != nil || got.Request.State != "st" || got.Number != mobile || got.Locale != "de" || got.Finished ||
			!got.ExpiresAt.Equal(f.ExpiresAt) || string(got.SecretHash) != string(f.SecretHash) {
			t.Fatalf("got %+v, %v", got, err)
		}
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, hosted.ErrFlowNotFound) {
			t.Fatalf("missing flow: %v", err)
		}
	})
	t.Run("state then finish once", func(t *testing.T) {
		f := newFlow()
		if err := s.Create(ctx, f, time.Minute); err != nil {
			t.Fatal(err)
		}
		st := hosted.State{VerificationID: "v1", Channel: verify.ChannelCall, SentAt: verifytest.Epoch, NoSMS: true, Notice: "n"}
		if err := s.SetState(ctx, f.ID, st); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, f.ID)
		if err != nil || got.State.VerificationID != "v1" || !got.State.NoSMS || !got.State.SentAt.Equal(st.SentAt) {
			t.Fatalf("state %+v, %v", got, err)
		}
		// Finishes race: exactly one wins.
		var wg sync.WaitGroup
		wins := make(chan *hosted.Flow, 8)
		for range 8 {
			wg.Go(func() {
				if done, err := s.Finish(ctx, f.ID); err == nil {
					wins <- done
				} else if !errors.Is(err, hosted.ErrFlowFinished) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		close(wins)
		n := 0
		for done := range wins {
			n++
			if !done.Finished || done.State.VerificationID != "v1" || done.Request.State != "st" {
				t.Fatalf("finished flow %+v", done)
			}
		}
		if n != 1 {
			t.Fatalf("%d finishes won", n)
		}
		if err := s.SetState(ctx, f.ID, st); !errors.Is(err, hosted.ErrFlowFinished) {
			t.Fatalf("state after finish: %v", err)
		}
		if got, err := s.Get(ctx, f.ID); err != nil || !got.Finished {
			t.Fatalf("after finish %+v, %v", got, err)
		}
		if _, err := s.Finish(ctx, "nope"); !errors.Is(err, hosted.ErrFlowNotFound) {
			t.Fatalf("finish of a missing flow: %v", err)
		}
		if err := s.SetState(ctx, "nope", st); !errors.Is(err, hosted.ErrFlowNotFound) {
			t.Fatalf("state of a missing flow: %v", err)
		}
	})
	t.Run("ttl", func(t *testing.T) {
		f := newFlow()
		ttl := 300 * time.Millisecond
		if err := s.Create(ctx, f, ttl); err != nil {
			t.Fatal(err)
		}
		expire(ttl)
		if _, err := s.Get(ctx, f.ID); !errors.Is(err, hosted.ErrFlowNotFound) {
			t.Fatalf("after its TTL: %v", err)
		}
		if _, err := s.Finish(ctx, f.ID); !errors.Is(err, hosted.ErrFlowNotFound) {
			t.Fatalf("finish after its TTL: %v", err)
		}
	})
}

func TestMemoryStore(t *testing.T) {
	clock := verifytest.NewClock(verifytest.Epoch)
	testFlowStore(t, hosted.NewMemoryStore(clock.Now), func(ttl time.Duration) { clock.Add(ttl) })
}

func TestRedisStore(t *testing.T) {
	rdb := redistest.Client(t)
	s := hosted.NewRedisStore(rdb, redistest.Prefix(t))
	// Redis checks a key's expiry whenever it is read: once its TTL has
	// passed on the server's clock, the flow is gone.
	testFlowStore(t, s, func(ttl time.Duration) { time.Sleep(ttl + 100*time.Millisecond) })
}

// TestPageOnRedis: a whole flow with its state in Redis, as when several
// gateways serve the page.
func TestPageOnRedis(t *testing.T) {
	e := newEnvStore(t, entra.Config{}, hosted.NewRedisStore(redistest.Client(t), redistest.Prefix(t)))
	b := e.browser("de")
	p := b.authorize(oidAlice)
	mustContain(t, p, "Wir rufen +49 151 *** 789 an.")
	e.press(e.lastCall().VerificationID, false)
	mustContain(t, b.post(p, "finish"), "APPROVED tel state=st-1")
	if r := b.post(p, "finish"); r.status != 410 {
		t.Fatalf("second finish: %d", r.status)
	}
	e.wantResults([]entra.Method{entra.MethodTel}, 0)
}
