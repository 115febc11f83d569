package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/verigate/verigate/config"
)

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestServeConfigDevDefaults(t *testing.T) {
	random := bytes.NewReader(bytes.Repeat([]byte{7}, 64))
	cfg, devKey, err := loadServeConfig(serveFlags{dev: true}, lookupFrom(nil), random)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Secret) < 32 || devKey == "" || cfg.APIKeys != "dev:"+devKey || cfg.SMS.Provider != "console" {
		t.Fatalf("--dev must generate a secret and a key and use the console: %+v key %q", cfg.SMS, devKey)
	}
}

func TestServeConfigExplicitWinsOverDev(t *testing.T) {
	env := lookupFrom(map[string]string{
		"VERIGATE_SECRET":    "an-explicit-secret-of-enough-length",
		"VERIGATE_API_KEYS":  "acme:k1",
		"VERIGATE_HTTP_ADDR": "127.0.0.1:9999",
	})
	cfg, devKey, err := loadServeConfig(serveFlags{dev: true, httpAddr: "127.0.0.1:7777"}, env, bytes.NewReader(make([]byte, 64)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Secret != "an-explicit-secret-of-enough-length" || cfg.APIKeys != "acme:k1" || devKey != "" {
		t.Errorf("explicit secret and keys must win over --dev: keys %q devKey %q", cfg.APIKeys, devKey)
	}
	if cfg.HTTP.Addr != "127.0.0.1:7777" {
		t.Errorf("--http must win: %q", cfg.HTTP.Addr)
	}
}

func TestServeConfigWithoutDevNeedsSecrets(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"VERIGATE_API_KEYS": "a:b"}, "VERIGATE_SECRET"},
		{map[string]string{"VERIGATE_SECRET": "0123456789abcdef0123"}, "VERIGATE_API_KEYS"},
	}
	for _, tt := range tests {
		_, _, err := loadServeConfig(serveFlags{}, lookupFrom(tt.env), bytes.NewReader(nil))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want one naming %s", err, tt.want)
		}
	}
}

func TestTuneGC(t *testing.T) {
	was := debug.SetGCPercent(100)
	defer debug.SetGCPercent(was)
	for _, c := range []struct {
		name string
		env  map[string]string
		want int
	}{
		{"GOGC unset", nil, defaultGCPercent},
		{"GOGC set", map[string]string{"GOGC": "100"}, 100},
		{"GOGC set empty", map[string]string{"GOGC": ""}, 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			tuneGC(lookupFrom(c.env))
			if got := debug.SetGCPercent(100); got != c.want {
				t.Errorf("GC percent %d, want %d", got, c.want)
			}
		})
	}
}

func TestServeConfigCallbacksToPrivateNetworks(t *testing.T) {
	tests := []struct {
		name string
		dev  bool
		env  map[string]string
		want bool
	}{
		{"default", false, nil, false},
		{"--dev allows", true, nil, true},
		{"explicit false wins over --dev", true, map[string]string{"VERIGATE_CALLBACKS_ALLOW_PRIVATE_NETWORKS": "false"}, false},
		{"explicit true", false, map[string]string{"VERIGATE_CALLBACKS_ALLOW_PRIVATE_NETWORKS": "true"}, true},
	}
	for _, tt := range tests {
		// An SMS provider too: loadServeConfig checks the provider choice.
		env := map[string]string{"VERIGATE_SECRET": "an-explicit-secret-of-enough-length", "VERIGATE_API_KEYS": "acme:k1", "VERIGATE_SMS_PROVIDER": "console"}
		for k, v := range tt.env {
			env[k] = v
		}
		cfg, _, err := loadServeConfig(serveFlags{dev: tt.dev}, lookupFrom(env), bytes.NewReader(make([]byte, 64)))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Callbacks.PrivateNetworksAllowed(); got != tt.want {
			t.Errorf("%s: callbacks to private networks allowed %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestMetricsShowGoRuntime proves /metrics carries what tells a leak: the
// goroutines, and the live heap after the last collection (the heap in
// use counts garbage too).
func TestMetricsShowGoRuntime(t *testing.T) {
	cfg := config.Default()
	cfg.Secret = "a-test-secret-long-enough-for-the-hasher"
	cfg.APIKeys = "acme:a-key-of-sixteen-chars"
	cfg.SMS.Provider = "console"
	g, err := buildGateway(context.Background(), cfg, false, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("buildGateway: %v", err)
	}
	defer g.Close()
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, name := range []string{"go_goroutines", "go_gc_heap_live_bytes", "go_memstats_heap_inuse_bytes", "go_gc_duration_seconds_count", "process_resident_memory_bytes"} {
		if !regexp.MustCompile(`(?m)^` + name + ` \d`).MatchString(rec.Body.String()) {
			t.Errorf("/metrics has no %s", name)
		}
	}
}
