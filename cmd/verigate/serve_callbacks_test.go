package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/verigate/verigate/callback"
	"github.com/verigate/verigate/config"
	"github.com/verigate/verigate/internal/callbacktest"
	"github.com/verigate/verigate/internal/redistest"
	"github.com/verigate/verigate/internal/storetest"
)

const callbackSecret = "a-callback-secret-0123456789"

// callbackGateway builds a gateway with callbacks on the Redis at
// redisURL: a private server per test, so that no other test's gateway
// on a shared Redis claims its queued notices, and its SMS count towards
// no shared SMS-pumping block.
func callbackGateway(t *testing.T, redisURL string) *gateway {
	t.Helper()
	cfg := config.Default()
	cfg.Secret = "a-test-secret-long-enough-for-the-hasher"
	cfg.APIKeys = "acme:a-key-of-sixteen-chars"
	cfg.SMS.Provider = "console"
	cfg.Redis.URL = redisURL
	allow := true
	cfg.Callbacks = callback.Config{Secret: callbackSecret, AllowPrivateNetworks: &allow, Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond}
	g, err := buildGateway(context.Background(), cfg, false, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("buildGateway: %v", err)
	}
	return g
}

func apiCall(t *testing.T, g *gateway, method, path, body string) map[string]any {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer a-key-of-sixteen-chars")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	return out
}

// TestServeCallbacksSurviveARestart: with Redis, a callback queued while
// the IdP is down survives the gateway that queued it; the next gateway
// delivers it, signed both ways, once the IdP is back; /metrics counts it.
func TestServeCallbacksSurviveARestart(t *testing.T) {
	recv := callbacktest.NewReceiver(t, callbackSecret)
	recv.Stop()

	redisURL := redistest.StartServer(t).URL()
	first := callbackGateway(t, redisURL)
	v := apiCall(t, first, http.MethodPost, "/v1/verifications", `{"to":"`+storetest.Number(t)+`","channel":"sms","callback_url":"`+recv.URL()+`"}`)
	id, _ := v["id"].(string)
	apiCall(t, first, http.MethodPost, "/v1/verifications/"+id+"/cancel", "")
	time.Sleep(200 * time.Millisecond) // attempts refused by the IdP
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := callbackGateway(t, redisURL)
	defer second.Close()
	recv.Start()
	var canceled *callbacktest.Delivery
	for canceled == nil {
		for _, d := range recv.WaitDistinct(1, 30*time.Second) {
			var n callback.Notice
			if err := json.Unmarshal(d.Body, &n); err != nil {
				t.Fatal(err)
			}
			if n.ID == id && n.Status == "canceled" {
				canceled = &d
			}
		}
		if canceled == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	h := canceled.Header
	if h.Get(callback.SignatureHeader) == "" || h.Get(callback.WebhookSignatureHeader) == "" || h.Get(callback.DeliveryHeader) != h.Get(callback.WebhookIDHeader) {
		t.Errorf("headers %v", h)
	}

	// The count follows the IdP's answer by a moment.
	delivered := regexp.MustCompile(`(?m)^verigate_callback_deliveries_total\{result="delivered"\} [1-9]`)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rec := httptest.NewRecorder()
		second.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if delivered.MatchString(rec.Body.String()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics does not count the delivery:\n%s", grepLines(rec.Body.String(), "verigate_callback"))
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
