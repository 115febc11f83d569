package pumping

import (
	"context"
	"sync"
	"time"
)

// Memory is a Store in this process, for one gateway (serve --dev).
type Memory struct {
	mu     sync.Mutex
	counts map[string]*prefixCounts
	blocks map[string]time.Time
}

type prefixCounts struct {
	slots   map[int64]Tally
	expires time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store.
func NewMemory() *Memory {
	return &Memory{counts: map[string]*prefixCounts{}, blocks: map[string]time.Time{}}
}

// Add implements Store.
func (m *Memory) Add(_ context.Context, b Batch) (map[string]Tally, map[string]time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sums := map[string]Tally{}
	for _, c := range b.Counts {
		pc := m.counts[c.Prefix]
		if pc == nil || !b.Now.Before(pc.expires) {
			pc = &prefixCounts{slots: map[int64]Tally{}}
			m.counts[c.Prefix] = pc
		}
		t := pc.slots[c.Slot]
		t.Sent += c.Sent
		t.Approved += c.Approved
		pc.slots[c.Slot] = t
		pc.expires = b.Now.Add(b.Keep)
		sums[c.Prefix] = Tally{}
	}
	for _, p := range b.Judge {
		sums[p] = Tally{}
	}
	for p := range sums {
		pc := m.counts[p]
		if pc == nil || !b.Now.Before(pc.expires) {
			delete(m.counts, p)
			continue
		}
		var sum Tally
		for slot, t := range pc.slots {
			switch {
			case slot < b.From:
				delete(pc.slots, slot)
			case slot <= b.To:
				sum.Sent += t.Sent
				sum.Approved += t.Approved
			}
		}
		sums[p] = sum
	}
	// Prefixes no gateway asks about any more go when their time is up.
	for p, pc := range m.counts {
		if !b.Now.Before(pc.expires) {
			delete(m.counts, p)
		}
	}
	blocks := map[string]time.Time{}
	for p, until := range m.blocks {
		if b.Now.Before(until) {
			blocks[p] = until
		} else {
			delete(m.blocks, p)
		}
	}
	return sums, blocks, nil
}

// Block implements Store.
func (m *Memory) Block(_ context.Context, prefix string, until, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.blocks[prefix]; ok && now.Before(cur) {
		return false, nil
	}
	m.blocks[prefix] = until
	delete(m.counts, prefix)
	return true, nil
}
