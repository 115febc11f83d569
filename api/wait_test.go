package api_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verigate/verigate/api"
	"github.com/verigate/verigate/verify"
)

// startApproveCall starts an approve-mode call for acme and returns its id.
func (en *env) startApproveCall() string {
	en.t.Helper()
	id, _ := en.start(keyAcme, `{"to":"`+deMobile+`","channel":"call","call_mode":"approve"}`)
	return id
}

// awaitWaiters returns once n requests wait on the service's store.
func (en *env) awaitWaiters(n int) {
	en.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for en.svc.Store.Waiters() != n {
		if time.Now().After(deadline) {
			en.t.Fatalf("%d waiters, want %d", en.svc.Store.Waiters(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// press reports the # of the call: the verification is approved.
func (en *env) press(id string) {
	en.t.Helper()
	if err := en.svc.Report(context.Background(), id, verify.Event{Type: verify.EventCallApproved, Channel: verify.ChannelCall, Attempt: 1, Outcome: &verify.Outcome{Status: verify.StatusApproved}}); err != nil {
		en.t.Fatal(err)
	}
}

func withWaits(w api.WaitConfig) envOption { return func(c *api.Config) { c.Waits = w } }

func TestLongPoll(t *testing.T) {
	t.Run("returns on approval", func(t *testing.T) {
		en := newEnv(t, nil)
		id := en.startApproveCall()
		var res result
		var wg sync.WaitGroup
		wg.Go(func() { res = en.do("GET", "/v1/verifications/"+id+"?wait=60s", keyAcme, "") })
		en.awaitWaiters(1)
		if m := string(en.do("GET", "/metrics", "", "").Body); !strings.Contains(m, "verigate_http_waiting_requests 1\n") {
			t.Errorf("metrics while waiting lack verigate_http_waiting_requests 1")
		}
		en.press(id)
		wg.Wait()
		if res.Code != http.StatusOK || res.json(t)["status"] != "approved" {
			t.Fatalf("long-poll = %d %s, want 200 approved", res.Code, res.Body)
		}
		en.awaitWaiters(0)
		m := string(en.do("GET", "/metrics", "", "").Body)
		if !strings.Contains(m, "verigate_http_waiting_requests 0\n") || strings.Contains(m, `verigate_http_request_duration_seconds_count{route="/v1/verifications/:id"}`) {
			t.Errorf("metrics after the wait: want 0 waiting and the wait not timed:\n%s", m)
		}
	})
	t.Run("answers pending when the wait ends", func(t *testing.T) {
		en := newEnv(t, nil)
		id := en.startApproveCall()
		for _, wait := range []string{"100ms", "1"} {
			if r := en.do("GET", "/v1/verifications/"+id+"?wait="+wait, keyAcme, ""); r.Code != http.StatusOK || r.json(t)["status"] != "pending" {
				t.Fatalf("wait=%s: %d %s, want 200 pending", wait, r.Code, r.Body)
			}
		}
	})
	t.Run("a longer wait is cut to the maximum", func(t *testing.T) {
		en := newEnv(t, []envOption{withWaits(api.WaitConfig{Max: 50 * time.Millisecond})})
		id := en.startApproveCall()
		if r := en.do("GET", "/v1/verifications/"+id+"?wait=1h", keyAcme, ""); r.Code != http.StatusOK || r.json(t)["status"] != "pending" {
			t.Fatalf("wait=1h: %d %s, want 200 pending after the maximum", r.Code, r.Body)
		}
	})
	t.Run("ended already", func(t *testing.T) {
		en := newEnv(t, nil)
		id := en.startApproveCall()
		en.press(id)
		if r := en.do("GET", "/v1/verifications/"+id+"?wait=1h", keyAcme, ""); r.Code != http.StatusOK || r.json(t)["status"] != "approved" {
			t.Fatalf("%d %s, want 200 approved at once", r.Code, r.Body)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		en := newEnv(t, nil)
		id := en.startApproveCall()
		for _, wait := range []string{"", "abc", "-1s", "30x", "1e9"} {
			r := en.do("GET", "/v1/verifications/"+id+"?wait="+wait, keyAcme, "")
			if r.Code != http.StatusBadRequest || r.errCode(t) != "invalid_request" {
				t.Errorf("wait=%q: %d %s, want 400 invalid_request", wait, r.Code, r.Body)
			}
		}
	})
	t.Run("another tenant's", func(t *testing.T) {
		en := newEnv(t, nil)
		id := en.startApproveCall()
		if r := en.do("GET", "/v1/verifications/"+id+"?wait=1s", keyGlobex, ""); r.Code != http.StatusNotFound {
			t.Fatalf("%d %s, want 404", r.Code, r.Body)
		}
	})
}

// TestWaitBounds: beyond the gateway's or a tenant's count of open waits,
// a wait is refused with Retry-After, as a long-poll and as a stream.
func TestWaitBounds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		waits    api.WaitConfig
		key      string // the second request's
		wantCode int
		wantErr  string
	}{
		{"gateway", api.WaitConfig{Gateway: 1}, keyGlobex, http.StatusServiceUnavailable, "unavailable"},
		{"tenant", api.WaitConfig{Tenant: 1}, keyAcme, http.StatusTooManyRequests, "rate_limited"},
		{"another tenant", api.WaitConfig{Tenant: 1}, keyGlobex, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			en := newEnv(t, []envOption{withWaits(tc.waits)})
			id := en.startApproveCall()
			other, _ := en.start(keyGlobex, `{"to":"`+deMobile+`","channel":"call","call_mode":"approve"}`)
			ids := map[string]string{keyAcme: id, keyGlobex: other}
			var wg sync.WaitGroup
			wg.Go(func() { en.do("GET", "/v1/verifications/"+id+"?wait=60s", keyAcme, "") })
			en.awaitWaiters(1)
			for _, path := range []string{"/v1/verifications/" + ids[tc.key] + "?wait=50ms", "/v1/verifications/" + ids[tc.key] + "/events"} {
				if tc.wantCode == http.StatusOK {
					if strings.HasSuffix(path, "/events") {
						continue // it would stream until the end
					}
					if r := en.do("GET", path, tc.key, ""); r.Code != http.StatusOK {
						t.Errorf("GET %s = %d %s, want 200", path, r.Code, r.Body)
					}
					continue
				}
				r := en.do("GET", path, tc.key, "")
				if r.Code != tc.wantCode || r.errCode(t) != tc.wantErr || r.Header.Get("Retry-After") == "" {
					t.Errorf("GET %s = %d %s (Retry-After %q), want %d %s with Retry-After", path, r.Code, r.Body, r.Header.Get("Retry-After"), tc.wantCode, tc.wantErr)
				}
				// The bound counts a tenant's waits, whichever of its keys opened them.
				if tc.wantCode == http.StatusTooManyRequests && !strings.Contains(string(r.Body), "this tenant has") {
					t.Errorf("GET %s = %s, want a message about the tenant", path, r.Body)
				}
			}
			// A plain read is never refused.
			if r := en.do("GET", "/v1/verifications/"+ids[tc.key], tc.key, ""); r.Code != http.StatusOK {
				t.Errorf("plain GET = %d", r.Code)
			}
			en.press(id)
			wg.Wait()
			// The slot is free again.
			if r := en.do("GET", "/v1/verifications/"+id+"?wait=1ms", keyAcme, ""); r.Code != http.StatusOK {
				t.Errorf("after the first wait ended: %d %s", r.Code, r.Body)
			}
		})
	}
}

// server serves en on a real HTTP server whose timeouts are far shorter
// than the waits, as serve's are shorter than a minute's wait.
func (en *env) server() *httptest.Server {
	en.t.Helper()
	srv := httptest.NewUnstartedServer(en.e)
	// Short, yet long enough that a handler started late on a busy machine
	// still lifts them before they pass.
	srv.Config.ReadTimeout = time.Second
	srv.Config.WriteTimeout = time.Second
	srv.Start()
	en.t.Cleanup(srv.Close)
	return srv
}

// streamClient bounds the tests' requests, so that a stream cut short
// fails a test instead of hanging it.
var streamClient = &http.Client{Timeout: 20 * time.Second}

func get(t *testing.T, url, key string, hs ...header) *http.Response {
	t.Helper()
	res, err := tryGet(url, key, hs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func tryGet(url, key string, hs ...header) (*http.Response, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	for _, h := range hs {
		req.Header.Set(h.k, h.v)
	}
	return streamClient.Do(req)
}

// TestLongPollOutlivesServerTimeouts: a wait longer than the server's read
// and write timeouts still gets its answer.
func TestLongPollOutlivesServerTimeouts(t *testing.T) {
	en := newEnv(t, nil)
	srv := en.server()
	id := en.startApproveCall()
	type answer struct {
		code int
		body []byte
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := tryGet(srv.URL+"/v1/verifications/"+id+"?wait=30s", keyAcme)
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		done <- answer{res.StatusCode, body, err}
	}()
	en.awaitWaiters(1)
	time.Sleep(1500 * time.Millisecond) // past both timeouts
	en.press(id)
	a := <-done
	if a.err != nil || a.code != http.StatusOK || !strings.Contains(string(a.body), `"status":"approved"`) {
		t.Fatalf("long-poll = %d %s %v, want 200 approved", a.code, a.body, a.err)
	}
}

// sseEvent is one event of a stream.
type sseEvent struct{ id, event, data string }

// readEvents reads a stream's events (and counts its comments) until it
// ends, handing each to seen.
func readEvents(t *testing.T, r io.Reader, seen func(sseEvent), comments *int) {
	t.Helper()
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev != (sseEvent{}) {
				seen(ev)
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			*comments++
		default:
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "id":
				ev.id = v
			case "event":
				ev.event = v
			case "data":
				ev.data = v
			default:
				t.Errorf("unexpected field %q", line)
			}
		}
	}
}

func TestEventStream(t *testing.T) {
	en := newEnv(t, []envOption{withWaits(api.WaitConfig{Heartbeat: 100 * time.Millisecond})})
	srv := en.server()
	id := en.startApproveCall()
	res := get(t, srv.URL+"/v1/verifications/"+id+"/events", keyAcme)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	events := make(chan sseEvent, 16)
	var comments int
	done := make(chan struct{})
	go func() {
		defer close(done)
		readEvents(t, res.Body, func(e sseEvent) { events <- e }, &comments)
	}()
	next := func() sseEvent {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-done:
			t.Fatal("the stream ended early")
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		return sseEvent{}
	}
	first := next()
	if first.event != "verification" || first.id != "1" || !strings.Contains(first.data, `"status":"pending"`) || !strings.Contains(first.data, `"id":"`+id+`"`) {
		t.Fatalf("first event %+v", first)
	}
	if err := en.svc.Report(context.Background(), id, verify.Event{Type: verify.EventRinging, Channel: verify.ChannelCall, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.id != "2" || !strings.Contains(ev.data, `"type":"ringing"`) || !strings.Contains(ev.data, `"status":"pending"`) {
		t.Fatalf("after ringing: %+v", ev)
	}
	time.Sleep(1500 * time.Millisecond) // heartbeats, and past the server's timeouts
	en.press(id)
	last := next()
	if last.id != "3" || !strings.Contains(last.data, `"status":"approved"`) {
		t.Fatalf("final event %+v", last)
	}
	select {
	case <-done: // the stream ended after the final status
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end after the final status")
	}
	if comments < 3 {
		t.Errorf("%d comments, want the opening one and heartbeats", comments)
	}
	en.awaitWaiters(0)

	// An EventSource reconnects with the last id it saw.
	if res := get(t, srv.URL+"/v1/verifications/"+id+"/events", keyAcme, header{"Last-Event-ID", "3"}); res.StatusCode != http.StatusNoContent {
		t.Errorf("reconnect after the final event: %d, want 204", res.StatusCode)
	}
	res = get(t, srv.URL+"/v1/verifications/"+id+"/events", keyAcme, header{"Last-Event-ID", "2"})
	var got []sseEvent
	readEvents(t, res.Body, func(e sseEvent) { got = append(got, e) }, &comments)
	if len(got) != 1 || got[0].id != "3" {
		t.Errorf("reconnect after event 2: %+v, want only event 3", got)
	}
}

func TestEventStreamErrors(t *testing.T) {
	en := newEnv(t, nil)
	id := en.startApproveCall()
	for _, tc := range []struct {
		name, path, key string
		hs              []header
		code            int
		errCode         string
	}{
		{"unknown", "/v1/verifications/VE0/events", keyAcme, nil, http.StatusNotFound, "not_found"},
		{"another tenant's", "/v1/verifications/" + id + "/events", keyGlobex, nil, http.StatusNotFound, "not_found"},
		{"no key", "/v1/verifications/" + id + "/events", "", nil, http.StatusUnauthorized, "unauthorized"},
		{"bad Last-Event-ID", "/v1/verifications/" + id + "/events", keyAcme, []header{{"Last-Event-ID", "x"}}, http.StatusBadRequest, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := en.do("GET", tc.path, tc.key, "", tc.hs...)
			if r.Code != tc.code || r.errCode(t) != tc.errCode {
				t.Fatalf("%d %s, want %d %s", r.Code, r.Body, tc.code, tc.errCode)
			}
		})
	}
}
