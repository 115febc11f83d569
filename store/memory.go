package store

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/verigate/verigate/verify"
)

// Retention is how long a verification stays readable after it expires.
const Retention = 24 * time.Hour

// Memory holds verifications in this process. It loses everything on
// restart; use Redis where that matters or where several gateways share
// state. It does not consume send limits: Limited makes it a verify.Store.
type Memory struct {
	mu        sync.Mutex
	byID      map[string]*memEntry
	pending   map[string]string      // tenant \x00 number → id of the pending verification
	failures  map[string][]time.Time // tenant \x00 number → failed check times
	failKeep  time.Duration          // the longest CheckLock window asked for: failures kept as long
	lastSweep time.Time
	changes   fanout // waiters told of every change (verify.Changes)
}

type memEntry struct {
	v    *verify.Verification
	keys map[string]bool // event keys recorded
}

var _ verify.Store = Limited{}

// Limited is the in-memory verify.Store: a Memory whose Start consumes the
// send from Limits (ratelimit.Memory in the gateway) and then stores it.
// Those are two steps where the Redis store takes one script, which in one
// process changes nothing a caller can see: a denial returns the limiter's
// *verify.LimitError and stores nothing. A send consumed and then not
// stored is not refunded: Memory's start cannot fail, and if it ever did,
// a send counted for nothing errs towards fewer sends, as a Redis start
// script that fails after counting does.
type Limited struct {
	*Memory
	Limits verify.Limiter
}

// Start implements verify.Store.
func (l Limited) Start(ctx context.Context, s verify.SendSubject, v *verify.Verification, hash string, now time.Time) (*verify.Verification, bool, error) {
	if err := l.Limits.Consume(ctx, s); err != nil {
		return nil, false, err
	}
	return l.StartConsumed(ctx, v, hash, now)
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		byID:     make(map[string]*memEntry),
		pending:  make(map[string]string),
		failures: make(map[string][]time.Time),
	}
}

func numberKey(tenant, number string) string { return tenant + "\x00" + number }

// clone returns a deep copy, so callers never share memory with the store.
func clone(v *verify.Verification) *verify.Verification {
	c := *v
	c.CodeHashes = slices.Clone(v.CodeHashes)
	c.Events = slices.Clone(v.Events)
	c.Route.Reasons = slices.Clone(v.Route.Reasons)
	return &c
}

// StartConsumed does what verify.Store's Start does once the send is
// consumed: it stores v, or resends the tenant's pending verification for
// the number.
func (m *Memory) StartConsumed(_ context.Context, v *verify.Verification, hash string, now time.Time) (*verify.Verification, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	if v.Kind == verify.KindMessage {
		// A relayed message is always new and never the number's pending
		// verification: it has no code to check, resend or approve.
		n := clone(v)
		n.CodeHashes = nil
		n.Events = append(n.Events, verify.Event{Type: verify.EventCreated, At: now, Channel: v.Channel, Provider: v.Route.Provider})
		m.byID[n.ID] = &memEntry{v: n}
		return clone(n), false, nil
	}
	nk := numberKey(v.Tenant, v.To)
	if id, ok := m.pending[nk]; ok {
		e := m.byID[id]
		if e.v.Status == verify.StatusPending && now.Before(e.v.ExpiresAt) {
			cur := e.v
			if cur.SealedCode == "" {
				// Stored by an earlier version, which sent a fresh code on
				// every resend: this code joins them, as it did then. (Its
				// sealed code is not adopted: it is sealed for v's id.)
				cur.CodeHashes = appendHash(cur.CodeHashes, hash)
			}
			cur.Sends++
			cur.Channel, cur.CallMode, cur.Locale, cur.Route = v.Channel, v.CallMode, v.Locale, v.Route
			cur.UpdatedAt = now
			cur.Events = append(cur.Events, verify.Event{Type: verify.EventResent, At: now, Channel: v.Channel, Provider: v.Route.Provider})
			m.changes.notify(cur.ID)
			return clone(cur), true, nil
		}
		m.expire(e.v, now)
		delete(m.pending, nk)
	}
	n := clone(v)
	n.CodeHashes = []string{hash}
	n.Events = append(n.Events, verify.Event{Type: verify.EventCreated, At: now, Channel: v.Channel, Provider: v.Route.Provider})
	m.byID[n.ID] = &memEntry{v: n}
	m.pending[nk] = n.ID
	return clone(n), false, nil
}

// MaxCodeHashes bounds how many codes of one verification stay valid; the
// oldest is dropped first. A verification has one code; only one resent
// by an earlier version, which sent a fresh code every time, has more.
const MaxCodeHashes = 10

func appendHash(hashes []string, h string) []string {
	hashes = append(hashes, h)
	if len(hashes) > MaxCodeHashes {
		hashes = hashes[len(hashes)-MaxCodeHashes:]
	}
	return hashes
}

// expire marks a pending verification past its lifetime as expired.
func (m *Memory) expire(v *verify.Verification, now time.Time) {
	if v.Status != verify.StatusPending {
		return
	}
	v.Status = verify.StatusExpired
	v.UpdatedAt = now
	v.Events = append(v.Events, verify.Event{Type: verify.EventExpired, At: v.ExpiresAt})
	delete(m.pending, numberKey(v.Tenant, v.To))
	m.changes.notify(v.ID)
}

// sweep drops verifications past their retention, at most once a minute.
func (m *Memory) sweep(now time.Time) {
	if now.Sub(m.lastSweep) < time.Minute {
		return
	}
	m.lastSweep = now
	for id, e := range m.byID {
		if now.Sub(e.v.ExpiresAt) > Retention {
			delete(m.byID, id)
			if m.pending[numberKey(e.v.Tenant, e.v.To)] == id {
				delete(m.pending, numberKey(e.v.Tenant, e.v.To))
			}
		}
	}
	for k, times := range m.failures {
		if len(times) == 0 || now.Sub(times[len(times)-1]) > max(Retention, m.failKeep) {
			delete(m.failures, k)
		}
	}
}

func (m *Memory) lookup(tenant, id string) (*memEntry, error) {
	e, ok := m.byID[id]
	if !ok || (tenant != "" && e.v.Tenant != tenant) {
		return nil, verify.ErrNotFound
	}
	return e, nil
}

// Get implements verify.Store.
func (m *Memory) Get(_ context.Context, tenant, id string) (*verify.Verification, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.lookup(tenant, id)
	if err != nil {
		return nil, err
	}
	return clone(e.v), nil
}

// Check implements verify.Store.
func (m *Memory) Check(_ context.Context, q verify.CheckQuery) (*verify.Verification, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := q.ID
	if id == "" {
		var ok bool
		if id, ok = m.pending[numberKey(q.Tenant, q.To)]; !ok {
			return nil, verify.ErrNotFound
		}
	}
	e, err := m.lookup(q.Tenant, id)
	if err != nil {
		return nil, err
	}
	v := e.v
	if v.Kind == verify.KindMessage {
		return nil, verify.ErrNotFound // no code of Verigate's to check
	}
	nk := numberKey(v.Tenant, v.To)
	keep := q.Lock.Keep()
	if keep > 0 {
		m.failKeep = max(m.failKeep, keep)
		if wait := q.Lock.Wait(m.recentFailures(nk, q.Now, keep), q.Now); wait > 0 {
			return nil, &verify.LimitError{Policy: "failed_checks", RetryAfter: wait}
		}
	}
	if v.Status != verify.StatusPending {
		return nil, &verify.NotPendingError{Status: v.Status}
	}
	if !q.Now.Before(v.ExpiresAt) {
		m.expire(v, q.Now)
		return clone(v), nil
	}
	v.Attempts++
	v.UpdatedAt = q.Now
	defer m.changes.notify(v.ID)
	switch {
	case verify.MatchHash(v.CodeHashes, q.Hash):
		v.Status = verify.StatusApproved
		v.Events = append(v.Events, verify.Event{Type: verify.EventApproved, At: q.Now})
		delete(m.pending, nk)
	default:
		v.Events = append(v.Events, verify.Event{Type: verify.EventCheckFailed, At: q.Now})
		if keep > 0 {
			m.failures[nk] = append(m.failures[nk], q.Now)
		}
		if v.Attempts >= v.MaxAttempts {
			v.Status = verify.StatusMaxAttemptsReached
			v.Events = append(v.Events, verify.Event{Type: verify.EventMaxAttemptsReached, At: q.Now})
			delete(m.pending, nk)
		}
	}
	return clone(v), nil
}

// recentFailures trims and returns the failed checks of nk within window.
func (m *Memory) recentFailures(nk string, now time.Time, window time.Duration) []time.Time {
	times := m.failures[nk]
	i := 0
	for i < len(times) && !times[i].After(now.Add(-window)) {
		i++
	}
	times = times[i:]
	m.failures[nk] = times
	return times
}

// Transition implements verify.Store.
func (m *Memory) Transition(_ context.Context, tenant, id string, status verify.Status, reason string, ev verify.Event) (*verify.Verification, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.lookup(tenant, id)
	if err != nil {
		return nil, err
	}
	v := e.v
	if tenant != "" && v.Kind == verify.KindMessage {
		// A client's cancel or approval does not apply to a relayed
		// message; its provider's reports (any tenant) end it.
		return nil, verify.ErrNotFound
	}
	if v.Status == verify.StatusPending && !ev.At.Before(v.ExpiresAt) {
		m.expire(v, ev.At)
	}
	if v.Status != verify.StatusPending {
		return nil, &verify.NotPendingError{Status: v.Status}
	}
	if status == verify.StatusFailed && ev.Attempt > 0 && ev.Attempt < v.Sends {
		return nil, verify.ErrSuperseded
	}
	v.Status, v.Reason, v.UpdatedAt = status, reason, ev.At
	m.record(e, ev)
	if nk := numberKey(v.Tenant, v.To); m.pending[nk] == id {
		// Only the number's pending verification: a relayed message to
		// the same number ending leaves it be.
		delete(m.pending, nk)
	}
	m.changes.notify(v.ID)
	return clone(v), nil
}

// AddEvent implements verify.Store.
func (m *Memory) AddEvent(_ context.Context, id string, ev verify.Event) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.lookup("", id)
	if err != nil {
		return false, err
	}
	added := m.record(e, ev)
	if added {
		m.changes.notify(id)
	}
	return added, nil
}

func (m *Memory) record(e *memEntry, ev verify.Event) bool {
	if ev.Key != "" {
		if e.keys[ev.Key] {
			return false
		}
		if e.keys == nil {
			e.keys = make(map[string]bool)
		}
		e.keys[ev.Key] = true
	}
	e.v.Events = append(e.v.Events, ev)
	return true
}

var _ verify.Expirer = (*Memory)(nil)

// Expire implements verify.Expirer. It scans the numbers' pending
// verifications (a Memory holds one gateway's, so a scan every few seconds
// is cheap) and expires at most limit of those past their lifetime.
func (m *Memory) Expire(_ context.Context, now time.Time, limit int) ([]*verify.Verification, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*verify.Verification
	for _, id := range m.pending {
		e := m.byID[id]
		if e == nil || e.v.Status != verify.StatusPending || now.Before(e.v.ExpiresAt) {
			continue
		}
		if len(out) == limit {
			return out, true, nil
		}
		m.expire(e.v, now) // clears m.pending's entry: deleting while ranging is allowed
		out = append(out, clone(e.v))
	}
	return out, false, nil
}
