package store

import (
	"context"
	"sync"

	"github.com/verigate/verigate/verify"
)

// fanout hands the news that a verification changed to the waiters of this
// process that subscribed to it: the in-process half of verify.Changes,
// shared by Memory and RedisChanges.
type fanout struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{} // verification id → its waiters
}

// subscribe implements verify.Changes.Subscribe.
func (f *fanout) subscribe(id string) (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	f.mu.Lock()
	if f.subs == nil {
		f.subs = make(map[string]map[chan struct{}]struct{})
	}
	set := f.subs[id]
	if set == nil {
		set = make(map[chan struct{}]struct{})
		f.subs[id] = set
	}
	set[c] = struct{}{}
	f.mu.Unlock()
	var once sync.Once
	return c, func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			delete(f.subs[id], c)
			if len(f.subs[id]) == 0 {
				delete(f.subs, id)
			}
		})
	}
}

// notify wakes the waiters of id. It never blocks: a waiter already woken
// and not yet reading needs no second signal.
func (f *fanout) notify(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.subs[id] {
		wake(c)
	}
}

// notifyAll wakes every waiter, for when news may have been missed.
func (f *fanout) notifyAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, set := range f.subs {
		for c := range set {
			wake(c)
		}
	}
}

// waiters is how many subscriptions are open.
func (f *fanout) waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, set := range f.subs {
		n += len(set)
	}
	return n
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

var _ verify.Changes = (*Memory)(nil)

// Subscribe implements verify.Changes: Check, Transition, AddEvent and
// Start tell the waiters of this process of every change they make.
func (m *Memory) Subscribe(_ context.Context, id string) (<-chan struct{}, func(), error) {
	c, cancel := m.changes.subscribe(id)
	return c, cancel, nil
}

// Waiters is how many subscriptions of this process are open.
func (m *Memory) Waiters() int { return m.changes.waiters() }
