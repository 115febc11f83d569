package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/testbuf"
)

// TestServeDevLongPollCall: under serve --dev (in-memory state) a long-poll
// answers when the built-in test phone presses # on the approve-mode call.
func TestServeDevLongPollCall(t *testing.T) {
	base, key, _ := startDevServe(t, "")
	status, v := call(t, "POST", base+"/v1/verifications", key, `{"to":"+442079460000","channel":"call","call_mode":"approve"}`)
	if status != http.StatusCreated || v["status"] != "pending" {
		t.Fatalf("start: %d %v", status, v)
	}
	status, v = call(t, "GET", base+"/v1/verifications/"+v["id"].(string)+"?wait=60s", key, "")
	if status != http.StatusOK || v["status"] != "approved" {
		t.Fatalf("long-poll: %d %v, want 200 approved once the phone pressed #", status, v)
	}
}

// TestServeShutdownEndsWaits: a long-poll and an event stream open when
// serve is told to stop do not hold its shutdown until the grace ends:
// the long-poll answers the verification as it stands, the stream ends
// cleanly, and serve returns nil at once.
func TestServeShutdownEndsWaits(t *testing.T) {
	addr := freeAddr(t)
	stdout, stderr := &testbuf.Buffer{}, &testbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--dev", "--http", addr}, stdout, stderr) }()
	key := waitFor(t, stdout, regexp.MustCompile(`development API key \(tenant dev\): (\S+)`))
	base := "http://" + addr
	status, v := call(t, "POST", base+"/v1/verifications", key, `{"to":"+447911123456","channel":"sms"}`)
	if status != http.StatusCreated || v["status"] != "pending" {
		t.Fatalf("start: %d %v", status, v)
	}
	id := v["id"].(string)

	open := func(path string) (*http.Response, error) {
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		return http.DefaultClient.Do(req)
	}
	type answer struct {
		status int
		body   string
		err    error
	}
	poll := make(chan answer, 1)
	go func() {
		res, err := open("/v1/verifications/" + id + "?wait=60s")
		if err != nil {
			poll <- answer{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		poll <- answer{res.StatusCode, string(b), err}
	}()
	stream, err := open("/v1/verifications/" + id + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if stream.StatusCode != http.StatusOK {
		t.Fatalf("events: %d", stream.StatusCode)
	}
	first := make([]byte, 1)
	if _, err := stream.Body.Read(first); err != nil { // the stream is open
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the long-poll is waiting too

	began := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve ended with %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("shutdown took %v with waits open, want them ended at once", d)
	}
	a := <-poll
	if a.err != nil || a.status != http.StatusOK || !strings.Contains(a.body, `"status":"pending"`) {
		t.Errorf("long-poll: %d %q %v, want 200 with the verification pending", a.status, a.body, a.err)
	}
	if rest, err := io.ReadAll(stream.Body); err != nil {
		t.Errorf("event stream: %v after %q, want a clean end", err, rest)
	} else if !strings.Contains(string(rest), "event: verification") {
		t.Errorf("event stream: %q, want the verification's state before the end", rest)
	}
}
