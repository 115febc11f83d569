package store

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"
)

// IdempotencyMemory remembers Idempotency-Key responses in this process
// (api.IdempotencyStore). Values are opaque bytes; entries expire after
// their TTL by the injected clock.
type IdempotencyMemory struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[idemKey]idemEntry
	swept   time.Time
}

type idemKey struct{ tenant, key string }

type idemEntry struct {
	value   []byte
	expires time.Time
}

// NewIdempotencyMemory returns an empty store; now is the clock (time.Now if nil).
func NewIdempotencyMemory(now func() time.Time) *IdempotencyMemory {
	if now == nil {
		now = time.Now
	}
	return &IdempotencyMemory{now: now, entries: make(map[idemKey]idemEntry)}
}

// Reserve stores value unless a live value is stored under tenant and key;
// then it returns that value and false.
func (m *IdempotencyMemory) Reserve(_ context.Context, tenant, key string, value []byte, ttl time.Duration) ([]byte, bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	k := idemKey{tenant, key}
	if e, ok := m.entries[k]; ok && now.Before(e.expires) {
		return slices.Clone(e.value), false, nil
	}
	m.entries[k] = idemEntry{value: slices.Clone(value), expires: now.Add(ttl)}
	return nil, true, nil
}

// Save stores value under tenant and key for ttl.
func (m *IdempotencyMemory) Save(_ context.Context, tenant, key string, value []byte, ttl time.Duration) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[idemKey{tenant, key}] = idemEntry{value: slices.Clone(value), expires: now.Add(ttl)}
	return nil
}

// Release deletes the entry if it still holds value.
func (m *IdempotencyMemory) Release(_ context.Context, tenant, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := idemKey{tenant, key}
	if e, ok := m.entries[k]; ok && bytes.Equal(e.value, value) {
		delete(m.entries, k)
	}
	return nil
}

// sweep drops expired entries, at most once a minute.
func (m *IdempotencyMemory) sweep(now time.Time) {
	if now.Sub(m.swept) < time.Minute {
		return
	}
	m.swept = now
	for k, e := range m.entries {
		if !now.Before(e.expires) {
			delete(m.entries, k)
		}
	}
}
