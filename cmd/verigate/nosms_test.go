package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/verigate/verigate/config"
	"github.com/verigate/verigate/internal/siptest"
)

// TestServeWithoutSMS: a calls-only gateway (sms.provider: none, a trunk)
// starts; a request for an SMS is refused as unsupported_number (422),
// naming the setting, before anything is consumed; channel auto calls.
func TestServeWithoutSMS(t *testing.T) {
	phone, err := siptest.NewPhone(siptest.PhoneConfig{Listen: "127.0.0.1:0", Press: "#", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("test phone: %v", err)
	}
	t.Cleanup(func() { phone.Close() })
	cfg := config.Default()
	cfg.Secret = "a-test-secret-long-enough-for-the-hasher"
	cfg.APIKeys = "acme:" + relayKey
	cfg.SMS.Provider = config.SMSProviderNone
	cfg.SIP = phone.LoopbackConfig(cfg.SIP)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	g, err := buildGateway(context.Background(), cfg, false, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("buildGateway: %v", err)
	}
	t.Cleanup(func() { g.Close() })

	rec, m := drainRequest(t, g, http.MethodPost, "/v1/verifications", `{"to":"+4915123456789","channel":"sms"}`)
	if e, _ := m["error"].(map[string]any); rec.Code != http.StatusUnprocessableEntity || e["code"] != "unsupported_number" {
		t.Errorf("sms on a calls-only gateway: %d %s, want 422 unsupported_number", rec.Code, rec.Body)
	}
	rec, m = drainRequest(t, g, http.MethodPost, "/v1/verifications", `{"to":"+4915123456789","channel":"auto"}`)
	if rec.Code != http.StatusCreated || m["channel"] != "call" {
		t.Errorf("auto on a calls-only gateway: %d %s, want a call", rec.Code, rec.Body)
	}
}
