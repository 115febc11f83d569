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
