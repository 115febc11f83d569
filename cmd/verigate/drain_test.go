package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/internal/siptest"
)

// drainRequest serves one request on g and decodes its JSON answer.
func drainRequest(t *testing.T, g *gateway, method, path, body string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+relayKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, req)
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec, m
}

// TestDrainWithCallInProgress: a gateway drains while a SIP call is in
// progress, the phone answered and not yet pressing #. During the drain
// /readyz fails and a new verification is refused with 503 and
// Retry-After; the call then either ends by itself within the drain
// timeout (the phone presses #: approved) or is hung up by the gateway
// with BYE at the timeout (failed, "gateway shutting down"), never left
// pending.
func TestDrainWithCallInProgress(t *testing.T) {
	tests := []struct {
		name    string
		after   time.Duration // the phone's wait between answering and # (past the greeting)
		timeout time.Duration // the drain timeout
		want    string
		hungUp  string // who ended the call
	}{
		{name: "finishes within the timeout", after: siptest.DefaultPhoneAfter, timeout: 40 * time.Second, want: "approved"},
		{name: "hung up at the timeout", after: time.Hour, timeout: 2 * time.Second, want: "failed", hungUp: "caller"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answered := make(chan struct{}, 1)
			ended := make(chan siptest.PhoneCall, 1)
			phone, err := siptest.NewPhone(siptest.PhoneConfig{
				Listen: "127.0.0.1:0", Press: "#", After: tt.after, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				OnEvent: func(ev siptest.PhoneEvent) {
					if ev.Kind == siptest.PhoneAnswered {
						answered <- struct{}{}
					}
				},
				OnCallEnd: func(pc siptest.PhoneCall) { ended <- pc },
			})
			if err != nil {
				t.Fatalf("test phone: %v", err)
			}
			t.Cleanup(func() { phone.Close() })
			g := relayGateway(t, io.Discard, phone)

			rec, m := drainRequest(t, g, http.MethodPost, "/v1/verifications", `{"to":"+4915123456789","channel":"call"}`)
			if rec.Code != http.StatusCreated {
				t.Fatalf("start: %d %s", rec.Code, rec.Body)
			}
			id, _ := m["id"].(string)
			select {
			case <-answered:
			case <-time.After(30 * time.Second):
				t.Fatal("the phone did not answer within 30 s")
			}

			drained := make(chan struct{})
			go func() {
				defer close(drained)
				g.Drain(tt.timeout, slog.New(slog.NewTextHandler(io.Discard, nil)))
			}()
			// Drain refuses starts before it waits for anything.
			deadline := time.Now().Add(10 * time.Second)
			for !g.service.Draining() {
				if time.Now().After(deadline) {
					t.Fatal("the gateway did not begin to drain")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if rec, _ := drainRequest(t, g, http.MethodGet, "/readyz", ""); rec.Code != http.StatusServiceUnavailable {
				t.Errorf("/readyz while draining: %d %s, want 503", rec.Code, rec.Body)
			}
			rec, m = drainRequest(t, g, http.MethodPost, "/v1/verifications", `{"to":"+4915123456780","channel":"sms"}`)
			if e, _ := m["error"].(map[string]any); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || e["code"] != "unavailable" {
				t.Errorf("start while draining: %d Retry-After %q %s, want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
			}

			select {
			case <-drained:
			case <-time.After(tt.timeout + 30*time.Second):
				t.Fatal("Drain did not return")
			}
			select {
			case pc := <-ended:
				if tt.hungUp != "" && pc.HungUpBy != tt.hungUp {
					t.Errorf("call hung up by %q, want %q", pc.HungUpBy, tt.hungUp)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the phone's call did not end with the drain")
			}
			// The outcome was recorded before Drain returned.
			rec, m = drainRequest(t, g, http.MethodGet, "/v1/verifications/"+id, "")
			if m["status"] != tt.want {
				t.Fatalf("verification after the drain: %d %s, want %s", rec.Code, rec.Body, tt.want)
			}
			if tt.want == "failed" && !strings.Contains(rec.Body.String(), "shutting down") {
				t.Errorf("failed verification records no shutdown: %s", rec.Body)
			}
		})
	}
}
