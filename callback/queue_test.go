package callback_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/verigate/verigate/callback"
	"github.com/verigate/verigate/internal/callbacktest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/verify"
)

func TestMemoryQueueContract(t *testing.T) {
	callbacktest.RunQueue(t, func(t *testing.T, max int) callback.Queue { return callback.NewMemoryQueue(max, nil) })
}

func TestRedisQueueContract(t *testing.T) {
	rdb := redistest.Client(t)
	callbacktest.RunQueue(t, func(t *testing.T, max int) callback.Queue {
		return callback.NewRedisQueue(rdb, callback.RedisQueueOptions{Prefix: cleaned(t, rdb), Max: max})
	})
}

// cleaned is a fresh key prefix whose queue keys are deleted when the test ends.
func cleaned(t *testing.T, rdb *redis.Client) string {
	p := redistest.Prefix(t)
	t.Cleanup(func() {
		for _, k := range []string{"due", "jobs", "lease", "tries"} {
			rdb.Del(context.Background(), p+"{cb}:"+k)
		}
	})
	return p
}

const secret = "callback-secret-0123456789"

// gateway is the callback half of one gateway: a Notifier on the shared
// Redis queue with its workers, stopped by the returned function.
func gateway(t *testing.T, q callback.Queue) (*callback.Notifier, func()) {
	t.Helper()
	allow := true
	n, err := callback.New(callback.Config{
		Secret: secret, Backoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, Lease: time.Second, Timeout: 500 * time.Millisecond,
		MaxAttempts: 1000, AllowPrivateNetworks: &allow,
	}, nil, nil, callback.WithQueue(q))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { n.Run(ctx, 3); close(stopped) }()
	stop := func() { cancel(); <-stopped }
	t.Cleanup(stop)
	return n, stop
}

// TestCallbacksSurviveReceiverDownAndGatewayRestart: the receiver is down
// while the first gateway queues and tries the callbacks; that gateway
// stops (one of its claims abandoned, as if it had crashed mid-attempt),
// a new one starts on the same Redis, the receiver comes back, and every
// callback arrives: exactly the verifications notified, duplicates only
// under one delivery id.
func TestCallbacksSurviveReceiverDownAndGatewayRestart(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := cleaned(t, rdb)
	queue := func() callback.Queue { return callback.NewRedisQueue(rdb, callback.RedisQueueOptions{Prefix: prefix}) }
	recv := callbacktest.NewReceiver(t, secret)
	recv.Stop()

	first, stopFirst := gateway(t, queue())
	want := map[string]bool{}
	for i := range 20 {
		v := &verify.Verification{ID: "VE" + string(rune('a'+i)), To: "+4915123456789", Status: verify.StatusApproved, Channel: verify.ChannelCall, CallbackURL: recv.URL(), UpdatedAt: time.Now()}
		first.Notify(v)
		want[v.ID] = true
	}
	time.Sleep(300 * time.Millisecond) // a few refused attempts each
	stopFirst()
	// A gateway that dies holding a claim: its notice waits for the lease.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, ok, err := queue().Claim(context.Background(), time.Second)
		if err != nil || (!ok && time.Now().After(deadline)) {
			t.Fatalf("claim: %v, %v", ok, err)
		}
		if ok {
			break
		}
	}

	gateway(t, queue())
	time.Sleep(100 * time.Millisecond)
	recv.Start()
	got := recv.WaitDistinct(len(want), 30*time.Second)

	byDelivery := map[string]string{} // delivery id → verification
	for _, d := range got {
		var n callback.Notice
		if err := json.Unmarshal(d.Body, &n); err != nil {
			t.Fatal(err)
		}
		if !want[n.ID] {
			t.Errorf("callback for %s, never notified", n.ID)
		}
		if prev, ok := byDelivery[d.ID]; ok && prev != n.ID {
			t.Errorf("delivery id %s carried %s and %s", d.ID, prev, n.ID)
		}
		byDelivery[d.ID] = n.ID
	}
	seen := map[string]string{} // verification → delivery id
	for del, v := range byDelivery {
		if other, ok := seen[v]; ok {
			t.Errorf("%s arrived under two delivery ids, %s and %s", v, other, del)
		}
		seen[v] = del
	}
	if len(seen) != len(want) {
		t.Errorf("%d verifications' callbacks arrived, want %d", len(seen), len(want))
	}
	// The last Done may follow the last arrival by a moment.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n, err := queue().Len(context.Background())
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d (%v) after every delivery, want 0", n, err)
		}
	}
}
