package radius

import (
	"crypto/subtle"
	"encoding/hex"
	"net/netip"
	"sync"
	"time"
)

// dupKey names one request as RFC 5080 §2.2.2 does: the NAS's address and
// port, the identifier and the request authenticator.
type dupKey struct {
	from netip.AddrPort
	id   byte
	auth [16]byte
}

type dupEntry struct {
	answer  []byte // nil while the first copy is handled
	expires time.Time
}

// dupAnswered is one answered entry in the order its window began.
type dupAnswered struct {
	k dupKey
	e *dupEntry
}

// dupCache remembers requests being handled and the answers sent, for
// DuplicateWindow, up to max entries. Every answer is kept for the same
// window, so the answers in the order they were recorded are also in the
// order they expire: expired ones are dropped from the front of a queue,
// and a claim never scans the cache, full or not.
type dupCache struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	m      map[dupKey]*dupEntry
	queue  []dupAnswered // answered entries, oldest first, from head
	head   int
}

func newDupCache(window time.Duration, max int) *dupCache {
	return &dupCache{window: window, max: max, m: map[dupKey]*dupEntry{}}
}

// claimed says what claim found.
type claimed int

const (
	claimNew      claimed = iota // k is new and now the caller's to answer
	claimAnswered                // k was answered: send the answer again
	claimInHand                  // k is being handled
	claimFull                    // the cache is full: drop as overloaded
)

// claim looks k up and claims it when it is new.
func (c *dupCache) claim(k dupKey) ([]byte, claimed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if e, ok := c.m[k]; ok {
		switch {
		case e.answer == nil:
			return nil, claimInHand
		case now.Before(e.expires):
			return e.answer, claimAnswered
		}
	}
	c.expire(now)
	if len(c.m) >= c.max {
		return nil, claimFull
	}
	c.m[k] = &dupEntry{}
	return nil, claimNew
}

// expire drops the answers whose window ended, from the queue's front.
func (c *dupCache) expire(now time.Time) {
	for c.head < len(c.queue) {
		a := c.queue[c.head]
		if now.Before(a.e.expires) {
			break
		}
		// The key may have been claimed again since: only this entry goes.
		if c.m[a.k] == a.e {
			delete(c.m, a.k)
		}
		c.queue[c.head] = dupAnswered{}
		c.head++
	}
	// Reuse the slice once the dropped front is half of it.
	if c.head > 0 && c.head >= len(c.queue)/2 {
		n := copy(c.queue, c.queue[c.head:])
		clear(c.queue[n:])
		c.queue, c.head = c.queue[:n], 0
	}
}

// answer records the answer to k.
func (c *dupCache) answer(k dupKey, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &dupEntry{answer: b, expires: time.Now().Add(c.window)}
	c.m[k] = e
	c.queue = append(c.queue, dupAnswered{k: k, e: e})
}

// release forgets k (it was not answered).
func (c *dupCache) release(k dupKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

// challenge is an Access-Challenge's pending second factor.
type challenge struct {
	user    string
	client  netip.Addr
	to      string // E.164 of the SMS, or of the number to call
	verID   string // the SMS verification; empty before one was sent
	expires time.Time
}

// stateTable holds the States of the challenges sent: random, bound to the
// user and the NAS, taken once, expiring.
type stateTable struct {
	mu  sync.Mutex
	ttl time.Duration
	max int
	m   map[string]challenge
}

func newStateTable(ttl time.Duration, max int) *stateTable {
	return &stateTable{ttl: ttl, max: max, m: map[string]challenge{}}
}

// put stores ch under a new random State, or returns false when full.
func (t *stateTable) put(ch challenge) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if len(t.m) >= t.max {
		for k, c := range t.m {
			if !now.Before(c.expires) {
				delete(t.m, k)
			}
		}
		if len(t.m) >= t.max {
			return nil, false
		}
	}
	state := randomBytes(16)
	ch.expires = now.Add(t.ttl)
	t.m[hex.EncodeToString(state)] = ch
	return state, true
}

// take returns and removes the challenge of state when it belongs to
// user at client and has not expired. A State presented by another user
// or NAS is not consumed, so it cannot be burnt by a stranger.
func (t *stateTable) take(state []byte, user string, client netip.Addr) (challenge, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := hex.EncodeToString(state)
	ch, ok := t.m[k]
	if !ok {
		return challenge{}, false
	}
	if subtle.ConstantTimeCompare([]byte(ch.user), []byte(user)) != 1 || ch.client != client {
		return challenge{}, false
	}
	delete(t.m, k)
	if !time.Now().Before(ch.expires) {
		return challenge{}, false
	}
	return ch, true
}
