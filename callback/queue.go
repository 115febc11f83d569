package callback

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Job is one notice waiting for delivery.
type Job struct {
	ID           string    `json:"id"`           // delivery id: the same on every attempt, sent as webhook-id
	Verification string    `json:"verification"` // for the log
	URL          string    `json:"url"`
	Body         []byte    `json:"body"`
	Created      time.Time `json:"created"` // when Notify queued it; MaxAge counts from here
	// ContentType and Header are set for a notice in another provider's
	// format (Format): sent instead of Verigate's JSON content type and
	// signature headers.
	ContentType string            `json:"content_type,omitempty"`
	Header      map[string]string `json:"header,omitempty"`
	// Set by Claim: the attempt this claim starts (1 for the first, and
	// counted even when a gateway died during it), and the claim's token,
	// which Retry and Done must present.
	Attempt int    `json:"-"`
	Token   string `json:"-"`
}

// Queue holds the notices a Notifier delivers. Claim leases a due notice
// to one caller: until Retry, Done or the lease's end, no other Claim
// returns it, and after the lease's end any Claim may (its holder is taken
// for dead). The in-memory and Redis queues pass the same contract tests
// (internal/callbacktest).
type Queue interface {
	// Push queues j, due now. Pushing an id already queued changes nothing.
	// It returns ErrQueueFull when the queue holds its maximum.
	Push(ctx context.Context, j Job) error
	// Claim leases the notice due longest for lease; ok is false when none
	// is due.
	Claim(ctx context.Context, lease time.Duration) (j Job, ok bool, err error)
	// Retry makes the claimed j due again after delay.
	Retry(ctx context.Context, j Job, delay time.Duration) error
	// Done removes the claimed j.
	Done(ctx context.Context, j Job) error
	// Len counts the notices queued, leased or not.
	Len(ctx context.Context) (int, error)
}

var (
	// ErrQueueFull is returned by Push when the queue holds its maximum.
	ErrQueueFull = errors.New("callback: queue full")
	// ErrLeaseLost is returned by Retry and Done when the claim's lease
	// ended and another claim took the notice (or it is gone).
	ErrLeaseLost = errors.New("callback: lease lost")
)

// MemoryQueue is a Queue in this process's memory: `serve --dev`, and a
// gateway's fallback while Redis does not answer. Its notices end with
// the process.
type MemoryQueue struct {
	max int
	now func() time.Time

	mu   sync.Mutex
	jobs map[string]*memEntry
	seq  uint64
}

type memEntry struct {
	job   Job
	due   time.Time
	seq   uint64 // Push order, to break ties in due
	token string
	tries int
}

var _ Queue = (*MemoryQueue)(nil)

// NewMemoryQueue returns a MemoryQueue of at most max notices (0: no
// limit); now may be nil for time.Now.
func NewMemoryQueue(max int, now func() time.Time) *MemoryQueue {
	if now == nil {
		now = time.Now
	}
	return &MemoryQueue{max: max, now: now, jobs: map[string]*memEntry{}}
}

// Push implements Queue.
func (q *MemoryQueue) Push(_ context.Context, j Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.jobs[j.ID]; ok {
		return nil
	}
	if q.max > 0 && len(q.jobs) >= q.max {
		return ErrQueueFull
	}
	j.Attempt, j.Token = 0, ""
	q.seq++
	q.jobs[j.ID] = &memEntry{job: j, due: q.now(), seq: q.seq}
	return nil
}

// Claim implements Queue. It scans every notice: the queue is bounded and
// small next to the network round trip each claim precedes.
func (q *MemoryQueue) Claim(_ context.Context, lease time.Duration) (Job, bool, error) {
	token, err := newToken()
	if err != nil {
		return Job{}, false, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	var first *memEntry
	for _, e := range q.jobs {
		if e.due.After(now) {
			continue
		}
		if first == nil || e.due.Before(first.due) || (e.due.Equal(first.due) && e.seq < first.seq) {
			first = e
		}
	}
	if first == nil {
		return Job{}, false, nil
	}
	first.due, first.token = now.Add(lease), token
	first.tries++
	j := first.job
	j.Attempt, j.Token = first.tries, token
	return j, true, nil
}

// Retry implements Queue.
func (q *MemoryQueue) Retry(_ context.Context, j Job, delay time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.jobs[j.ID]
	if !ok || e.token != j.Token || j.Token == "" {
		return ErrLeaseLost
	}
	e.due, e.token = q.now().Add(delay), ""
	return nil
}

// Done implements Queue.
func (q *MemoryQueue) Done(_ context.Context, j Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.jobs[j.ID]
	if !ok || e.token != j.Token || j.Token == "" {
		return ErrLeaseLost
	}
	delete(q.jobs, j.ID)
	return nil
}

// Len implements Queue.
func (q *MemoryQueue) Len(context.Context) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.jobs), nil
}
