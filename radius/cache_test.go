package radius

import (
	"net/netip"
	"testing"
	"time"
)

// TestStates: a State is taken once, only by its user from its NAS, and
// not after it expired; a full table refuses new challenges.
func TestStates(t *testing.T) {
	nas, other := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	tab := newStateTable(time.Hour, 2)
	st, ok := tab.put(challenge{user: "alice", client: nas, verID: "VE1"})
	if !ok || len(st) != 16 {
		t.Fatalf("put: %x %v", st, ok)
	}
	if _, ok := tab.take(st, "bob", nas); ok {
		t.Error("taken by another user")
	}
	if _, ok := tab.take(st, "alice", other); ok {
		t.Error("taken from another NAS")
	}
	if ch, ok := tab.take(st, "alice", nas); !ok || ch.verID != "VE1" {
		t.Fatalf("take: %+v %v", ch, ok)
	}
	if _, ok := tab.take(st, "alice", nas); ok {
		t.Error("taken twice")
	}
	tab.put(challenge{user: "a", client: nas})
	tab.put(challenge{user: "b", client: nas})
	if _, ok := tab.put(challenge{user: "c", client: nas}); ok {
		t.Error("a full table took another State")
	}

	short := newStateTable(time.Millisecond, 10)
	st, _ = short.put(challenge{user: "alice", client: nas})
	time.Sleep(5 * time.Millisecond)
	if _, ok := short.take(st, "alice", nas); ok {
		t.Error("expired State taken")
	}
}

// TestDupCache: in hand, answered, expired, full.
func TestDupCache(t *testing.T) {
	c := newDupCache(20*time.Millisecond, 2)
	k := dupKey{from: netip.MustParseAddrPort("127.0.0.1:4000"), id: 7}
	if _, got := c.claim(k); got != claimNew {
		t.Fatalf("first claim: %v", got)
	}
	if _, got := c.claim(k); got != claimInHand {
		t.Fatalf("claim in hand: %v", got)
	}
	c.answer(k, []byte("answer"))
	if b, got := c.claim(k); got != claimAnswered || string(b) != "answer" {
		t.Fatalf("claim answered: %q %v", b, got)
	}
	k2, k3 := k, k
	k2.id, k3.id = 8, 9
	c.claim(k2)
	if _, got := c.claim(k3); got != claimFull {
		t.Fatalf("claim in a full cache: %v", got)
	}
	time.Sleep(30 * time.Millisecond)
	if _, got := c.claim(k); got != claimNew {
		t.Fatalf("claim after the answer expired: %v", got)
	}
}

// TestDupCacheFull: a full cache refuses new requests yet still answers
// retransmissions and reports those in hand; as the oldest answers
// expire, exactly as many new requests get in; a key claimed again after
// its answer expired is not dropped by its old answer's expiry.
func TestDupCacheFull(t *testing.T) {
	const window = 200 * time.Millisecond
	c := newDupCache(window, 4)
	key := func(id byte) dupKey { return dupKey{from: netip.MustParseAddrPort("127.0.0.1:4000"), id: id} }
	for id := byte(1); id <= 3; id++ {
		if _, got := c.claim(key(id)); got != claimNew {
			t.Fatalf("claim %d: %v", id, got)
		}
		c.answer(key(id), []byte{id})
	}
	if _, got := c.claim(key(4)); got != claimNew {
		t.Fatalf("claim 4: %v", got)
	}
	for i := 0; i < 100; i++ {
		if _, got := c.claim(key(byte(10 + i))); got != claimFull {
			t.Fatalf("claim of a new key in a full cache: %v", got)
		}
	}
	if b, got := c.claim(key(2)); got != claimAnswered || b[0] != 2 {
		t.Fatalf("retransmission in a full cache: %v %v", b, got)
	}
	if _, got := c.claim(key(4)); got != claimInHand {
		t.Fatalf("in hand in a full cache: %v", got)
	}
	time.Sleep(window + 50*time.Millisecond)
	// 1-3 expired, 4 still in hand: three new requests get in, then full.
	c.answer(key(4), []byte{4})
	for id := byte(1); id <= 3; id++ {
		if _, got := c.claim(key(id)); got != claimNew {
			t.Fatalf("claim %d after its answer expired: %v", id, got)
		}
	}
	if _, got := c.claim(key(50)); got != claimFull {
		t.Fatalf("claim beyond max: %v", got)
	}
	if _, got := c.claim(key(1)); got != claimInHand {
		t.Fatalf("key 1 claimed again is no longer in hand: %v", got)
	}
	if len(c.m) != 4 {
		t.Errorf("%d entries, want 4", len(c.m))
	}
}

// BenchmarkDupCacheFull: claims of new requests while the cache is full
// of answers still in their window (a flood): each must not cost a scan.
func BenchmarkDupCacheFull(b *testing.B) {
	const n = 65536
	c := newDupCache(time.Hour, n)
	for i := range n {
		k := dupKey{from: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(i)), id: byte(i >> 16)}
		c.claim(k)
		c.answer(k, []byte{1})
	}
	k := dupKey{from: netip.MustParseAddrPort("127.0.0.2:1"), id: 1}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, got := c.claim(k); got != claimFull {
			b.Fatalf("claim: %v", got)
		}
	}
}
