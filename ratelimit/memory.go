package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/verigate/verigate/verify"
)

// Memory is a verify.Limiter held in this process, for development and
// single-node use.
type Memory struct {
	policies []Policy
	now      func() time.Time

	mu      sync.Mutex
	log     map[string][]time.Time // bucket → allowed sends, oldest first
	blocked map[string]time.Time   // number → blocked until
	sends   map[string]time.Time   // SendID → when it was counted, for Refund
	swept   time.Time
}

var _ verify.Limiter = (*Memory)(nil)

// NewMemory returns a limiter enforcing policies; now is the clock (time.Now if nil).
func NewMemory(policies []Policy, now func() time.Time) (*Memory, error) {
	for _, p := range policies {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("ratelimit: %w", err)
		}
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{policies: policies, now: now, log: make(map[string][]time.Time), blocked: make(map[string]time.Time), sends: make(map[string]time.Time)}, nil
}

// Consume implements verify.Limiter.
func (m *Memory) Consume(_ context.Context, s verify.SendSubject) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	if until, ok := m.blocked[s.To]; ok {
		if now.Before(until) {
			return denial(s, Policy{Name: verify.PolicyBlocked, Scope: ScopeNumber}, until.Sub(now))
		}
		delete(m.blocked, s.To)
	}
	type hit struct {
		bucket string
		times  []time.Time
	}
	hits := make([]hit, 0, len(m.policies))
	var denied *Policy
	var retry time.Duration
	for pi, p := range m.policies {
		b, ok := p.Bucket(s)
		if !ok {
			continue
		}
		times := m.log[b]
		i := 0
		for i < len(times) && !times[i].After(now.Add(-p.Window)) {
			i++
		}
		times = times[i:]
		if len(times) >= p.Limit {
			if wait := times[len(times)-p.Limit].Add(p.Window).Sub(now); wait > retry || denied == nil {
				denied, retry = &m.policies[pi], wait
			}
		}
		hits = append(hits, hit{b, times})
	}
	if denied != nil {
		return denial(s, *denied, retry)
	}
	for _, h := range hits {
		m.log[h.bucket] = append(h.times, now)
	}
	if s.SendID != "" {
		m.sends[s.SendID] = now
	}
	return nil
}

// Refund implements verify.Limiter: the send's entry leaves every bucket
// that counted it. Entries are times, so one entry of the send's time is
// taken from each; sends counted in the same instant are alike.
func (m *Memory) Refund(_ context.Context, s verify.SendSubject) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.sends[s.SendID]
	if !ok || s.SendID == "" {
		return nil
	}
	delete(m.sends, s.SendID)
	for _, p := range m.policies {
		b, ok := p.Bucket(s)
		if !ok {
			continue
		}
		times := m.log[b]
		for i := len(times) - 1; i >= 0; i-- {
			if times[i].Equal(at) {
				m.log[b] = append(times[:i], times[i+1:]...)
				break
			}
		}
	}
	return nil
}

// Block implements verify.Limiter.
func (m *Memory) Block(_ context.Context, number string, d time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocked[number] = m.now().Add(d)
	return nil
}

// sweep drops buckets with no send inside the longest window, at most once
// a minute, so memory follows the active numbers and not every number seen.
func (m *Memory) sweep(now time.Time) {
	if now.Sub(m.swept) < time.Minute {
		return
	}
	m.swept = now
	var longest time.Duration
	for _, p := range m.policies {
		longest = max(longest, p.Window)
	}
	for b, times := range m.log {
		if len(times) == 0 || !times[len(times)-1].After(now.Add(-longest)) {
			delete(m.log, b)
		}
	}
	for n, until := range m.blocked {
		if !now.Before(until) {
			delete(m.blocked, n)
		}
	}
	for id, at := range m.sends {
		if !at.After(now.Add(-longest)) {
			delete(m.sends, id)
		}
	}
}
