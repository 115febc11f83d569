package callback

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/verify"
)

const testSecret = "callback-secret-0123456789"

func ptr[T any](v T) *T { return &v }

type received struct {
	mu      sync.Mutex
	notices []Notice
	calls   int
}

// idp is a fake IdP on loopback (so its Notifier must allow private
// networks) that answers each callback with the next status in
// replies (the last one repeats) and verifies every signature.
func idp(t *testing.T, replies ...int) (*httptest.Server, *received, chan struct{}) {
	t.Helper()
	got := &received{}
	done := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := Verify([]byte(testSecret), r.Header.Get(SignatureHeader), body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		got.mu.Lock()
		status := replies[min(got.calls, len(replies)-1)]
		got.calls++
		var n Notice
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("body: %v", err)
		}
		got.notices = append(got.notices, n)
		got.mu.Unlock()
		w.WriteHeader(status)
		done <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return srv, got, done
}

func run(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { n.Run(ctx, 2); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
}

func wait(t *testing.T, done chan struct{}, n int) {
	t.Helper()
	for range n {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("callback not received")
		}
	}
}

func verification(url string) *verify.Verification {
	return &verify.Verification{ID: "VE1", To: "+4915123456789", Status: verify.StatusApproved, Channel: verify.ChannelSMS, CallbackURL: url, UpdatedAt: time.Now()}
}

func TestDeliversSignedAndRetries(t *testing.T) {
	srv, got, done := idp(t, 500, 503, 200)
	n, err := New(Config{Secret: testSecret, Backoff: time.Millisecond, AllowPrivateNetworks: ptr(true)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	n.Notify(verification(srv.URL))
	wait(t, done, 3)
	got.mu.Lock()
	defer got.mu.Unlock()
	if got.calls != 3 {
		t.Fatalf("delivered in %d calls, want 3 (two failures retried)", got.calls)
	}
	if last := got.notices[2]; last.ID != "VE1" || last.Status != verify.StatusApproved || last.To != "+49151*****789" {
		t.Fatalf("notice %+v", last)
	}
}

func TestClientErrorIsNotRetried(t *testing.T) {
	srv, got, done := idp(t, 400, 200)
	n, err := New(Config{Secret: testSecret, Backoff: time.Millisecond, AllowPrivateNetworks: ptr(true)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, n)
	n.Notify(verification(srv.URL))
	wait(t, done, 1)
	// A second notice proves the worker moved on instead of retrying the first.
	n.Notify(verification(srv.URL))
	wait(t, done, 1)
	got.mu.Lock()
	defer got.mu.Unlock()
	if got.calls != 2 {
		t.Fatalf("%d calls, want 2", got.calls)
	}
}

func TestVerifyRejects(t *testing.T) {
	body := []byte(`{"id":"VE1"}`)
	now := time.Unix(1_800_000_000, 0)
	good := Sign([]byte(testSecret), now, body)
	tests := []struct {
		name, header string
		body         []byte
		at           time.Time
	}{
		{"tampered body", good, []byte(`{"id":"VE2"}`), now},
		{"wrong secret", Sign([]byte("another-secret-0123456789"), now, body), body, now},
		{"stale", good, body, now.Add(10 * time.Minute)},
		{"malformed", "v1=abc", body, now},
	}
	if err := Verify([]byte(testSecret), good, body, now, time.Minute); err != nil {
		t.Fatalf("good signature refused: %v", err)
	}
	for _, tt := range tests {
		if err := Verify([]byte(testSecret), tt.header, tt.body, tt.at, time.Minute); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

func TestFullQueueDrops(t *testing.T) {
	n, err := New(Config{Secret: testSecret, QueueSize: 1}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(verification("http://127.0.0.1:1/"))
	n.Notify(verification("http://127.0.0.1:1/")) // must not block
	if len(n.queue) != 1 {
		t.Fatalf("queue holds %d, want 1", len(n.queue))
	}
}

func TestShortSecretRefused(t *testing.T) {
	if _, err := New(Config{Secret: "short"}, nil, nil); err == nil {
		t.Fatal("short secret accepted")
	}
}
