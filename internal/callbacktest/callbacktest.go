// Package callbacktest holds the contract every callback.Queue passes (the
// in-memory one and the Redis one run the same table), and a receiver of
// callbacks for tests that records what reaches it.
package callbacktest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/callback"
)

// NewQueue returns an empty queue holding at most max notices (0: no limit).
type NewQueue func(t *testing.T, max int) callback.Queue

func job(id string) callback.Job {
	return callback.Job{ID: id, Verification: "VE" + id, URL: "https://idp.example/cb", Body: []byte(`{"id":"` + id + `"}`), Created: time.Now().Truncate(time.Millisecond)}
}

func claim(t *testing.T, q callback.Queue, lease time.Duration) (callback.Job, bool) {
	t.Helper()
	j, ok, err := q.Claim(context.Background(), lease)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return j, ok
}

func mustClaim(t *testing.T, q callback.Queue, lease time.Duration, id string, attempt int) callback.Job {
	t.Helper()
	j, ok := claim(t, q, lease)
	if !ok {
		t.Fatalf("claim: nothing due, want %s", id)
	}
	if j.ID != id || j.Attempt != attempt || j.Token == "" {
		t.Fatalf("claimed %s attempt %d token %q, want %s attempt %d with a token", j.ID, j.Attempt, j.Token, id, attempt)
	}
	return j
}

func nothingDue(t *testing.T, q callback.Queue) {
	t.Helper()
	if j, ok := claim(t, q, time.Minute); ok {
		t.Fatalf("claimed %s, want nothing due", j.ID)
	}
}

func length(t *testing.T, q callback.Queue, want int) {
	t.Helper()
	if n, err := q.Len(context.Background()); err != nil || n != want {
		t.Fatalf("Len = %d, %v; want %d", n, err, want)
	}
}

// RunQueue runs the Queue contract against queues newQueue makes.
func RunQueue(t *testing.T, newQueue NewQueue) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, q callback.Queue)
		max  int
	}{
		{"push claim done", func(t *testing.T, q callback.Queue) {
			want := job("a")
			if err := q.Push(ctx, want); err != nil {
				t.Fatal(err)
			}
			length(t, q, 1)
			j := mustClaim(t, q, time.Minute, "a", 1)
			if string(j.Body) != string(want.Body) || j.URL != want.URL || j.Verification != want.Verification || !j.Created.Equal(want.Created) {
				t.Fatalf("claimed %+v, want %+v", j, want)
			}
			nothingDue(t, q) // leased
			if err := q.Done(ctx, j); err != nil {
				t.Fatal(err)
			}
			length(t, q, 0)
			nothingDue(t, q)
		}, 0},
		{"oldest first", func(t *testing.T, q callback.Queue) {
			for _, id := range []string{"1", "2", "3"} {
				if err := q.Push(ctx, job(id)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Millisecond) // Redis orders by its clock's milliseconds
			}
			for _, id := range []string{"1", "2", "3"} {
				mustClaim(t, q, time.Minute, id, 1)
			}
		}, 0},
		{"push of a queued id changes nothing", func(t *testing.T, q callback.Queue) {
			if err := q.Push(ctx, job("a")); err != nil {
				t.Fatal(err)
			}
			j := mustClaim(t, q, time.Minute, "a", 1)
			if err := q.Push(ctx, job("a")); err != nil {
				t.Fatal(err)
			}
			length(t, q, 1)
			nothingDue(t, q) // still leased, not due again
			if err := q.Done(ctx, j); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"retry waits its delay and counts attempts", func(t *testing.T, q callback.Queue) {
			if err := q.Push(ctx, job("a")); err != nil {
				t.Fatal(err)
			}
			j := mustClaim(t, q, time.Minute, "a", 1)
			if err := q.Retry(ctx, j, time.Hour); err != nil {
				t.Fatal(err)
			}
			nothingDue(t, q)
			if err := q.Done(ctx, j); !errors.Is(err, callback.ErrLeaseLost) {
				t.Fatalf("done after retry with the old claim: %v, want ErrLeaseLost", err)
			}
			if err := q.Push(ctx, job("b")); err != nil {
				t.Fatal(err)
			}
			j = mustClaim(t, q, time.Minute, "b", 1)
			if err := q.Retry(ctx, j, 0); err != nil {
				t.Fatal(err)
			}
			j = mustClaim(t, q, time.Minute, "b", 2)
			if err := q.Done(ctx, j); err != nil {
				t.Fatal(err)
			}
			length(t, q, 1) // a waits
		}, 0},
		{"an ended lease frees the notice for another claim", func(t *testing.T, q callback.Queue) {
			if err := q.Push(ctx, job("a")); err != nil {
				t.Fatal(err)
			}
			dead := mustClaim(t, q, 50*time.Millisecond, "a", 1) // its holder dies
			time.Sleep(150 * time.Millisecond)
			j := mustClaim(t, q, time.Minute, "a", 2)
			if err := q.Done(ctx, dead); !errors.Is(err, callback.ErrLeaseLost) {
				t.Fatalf("done by the dead claim: %v, want ErrLeaseLost", err)
			}
			if err := q.Retry(ctx, dead, 0); !errors.Is(err, callback.ErrLeaseLost) {
				t.Fatalf("retry by the dead claim: %v, want ErrLeaseLost", err)
			}
			nothingDue(t, q)
			if err := q.Done(ctx, j); err != nil {
				t.Fatal(err)
			}
			length(t, q, 0)
		}, 0},
		{"full", func(t *testing.T, q callback.Queue) {
			for _, id := range []string{"1", "2"} {
				if err := q.Push(ctx, job(id)); err != nil {
					t.Fatal(err)
				}
			}
			if err := q.Push(ctx, job("3")); !errors.Is(err, callback.ErrQueueFull) {
				t.Fatalf("third push: %v, want ErrQueueFull", err)
			}
			length(t, q, 2)
		}, 2},
		{"concurrent claims never share a notice", func(t *testing.T, q callback.Queue) {
			const jobs, claimers = 40, 8
			for i := range jobs {
				if err := q.Push(ctx, job(fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			seen := map[string]int{}
			var wg sync.WaitGroup
			for range claimers {
				wg.Go(func() {
					for {
						j, ok, err := q.Claim(ctx, time.Minute)
						if err != nil {
							t.Error(err)
							return
						}
						if !ok {
							return
						}
						mu.Lock()
						seen[j.ID]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(seen) != jobs {
				t.Fatalf("claimed %d notices, want %d", len(seen), jobs)
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("%s claimed %d times", id, n)
				}
			}
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newQueue(t, tt.max)) })
	}
}
