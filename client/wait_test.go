package client_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verigate/verigate/api"
	"github.com/verigate/verigate/client"
	"github.com/verigate/verigate/verify"
)

// startCall starts an approve-mode call and returns its id.
func startCall(t *testing.T, c *client.Client) string {
	t.Helper()
	s, err := c.Start(context.Background(), client.StartRequest{To: number, Channel: client.ChannelCall})
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

// awaitWaiters waits until the store has n waiters.
func (g *gateway) awaitWaiters(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); g.svc.Store.Waiters() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", g.svc.Store.Waiters(), n)
		}
	}
}

// press reports the # of the call: the verification is approved.
func (g *gateway) press(t *testing.T, id string) {
	t.Helper()
	ev := verify.Event{Type: verify.EventCallApproved, Channel: verify.ChannelCall, Attempt: 1, Outcome: &verify.Outcome{Status: verify.StatusApproved}}
	if err := g.svc.Report(context.Background(), id, ev); err != nil {
		t.Fatal(err)
	}
}

// TestClientWaitReturnsOnApproval: Wait returns as soon as the call is
// approved, long before the wait asked for ends.
func TestClientWaitReturnsOnApproval(t *testing.T) {
	g := newGateway(t)
	c := g.newClient(t, keyAcme)
	id := startCall(t, c)
	type got struct {
		v   *client.Verification
		err error
	}
	done := make(chan got, 1)
	go func() {
		v, err := c.Wait(context.Background(), id, time.Hour)
		done <- got{v, err}
	}()
	g.awaitWaiters(t, 1)
	g.press(t, id)
	select {
	case r := <-done:
		if r.err != nil || r.v.Status != client.StatusApproved || r.v.ID != id {
			t.Fatalf("wait: %+v %v", r.v, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Wait did not return on the approval")
	}
}

// countingTransport counts the requests it sends.
type countingTransport struct {
	n    atomic.Int32
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// TestClientWaitEnds: a wait that ends with the verification still
// pending is not an error; one longer than the gateway's maximum asks
// again until it ends.
func TestClientWaitEnds(t *testing.T) {
	g := newGatewayWith(t, func(c *api.Config) { c.Waits.Max = 100 * time.Millisecond })
	counter := &countingTransport{next: &validating{t: t, next: http.DefaultTransport}}
	c, err := client.New(g.url, keyAcme, client.WithHTTPClient(&http.Client{Transport: counter}))
	if err != nil {
		t.Fatal(err)
	}
	id := startCall(t, c)
	counter.n.Store(0)
	v, err := c.Wait(context.Background(), id, 350*time.Millisecond)
	if err != nil || v.Status != client.StatusPending {
		t.Fatalf("wait: %+v %v, want still pending", v, err)
	}
	if n := counter.n.Load(); n < 2 {
		t.Fatalf("%d requests: a wait past the gateway's maximum must ask again", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Wait(ctx, id, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a canceled context: %v", err)
	}
}

// TestClientWaitLimited: a key with as many waits open as the gateway
// allows it gets ErrRateLimited with a Retry-After.
func TestClientWaitLimited(t *testing.T) {
	g := newGatewayWith(t, func(c *api.Config) { c.Waits.Tenant = 1 })
	c := g.newClient(t, keyAcme)
	id := startCall(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Wait(ctx, id, time.Minute)
	}()
	g.awaitWaiters(t, 1)
	_, err := c.Wait(context.Background(), id, time.Minute)
	var e *client.Error
	if !errors.Is(err, client.ErrRateLimited) || !errors.As(err, &e) || e.RetryAfter <= 0 || e.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second wait: %v, want rate_limited with a Retry-After", err)
	}
	cancel()
	<-done
}
