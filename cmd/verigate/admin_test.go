package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/verigate/verigate/config"
)

// TestAdminListener serves the admin listener on 127.0.0.1:0 over a
// gateway: pprof's index and the gateway's own metrics (a series only
// the API's registry has) answer there.
func TestAdminListener(t *testing.T) {
	cfg := config.Default()
	if cfg.Admin.Addr != "" {
		t.Fatalf("admin listener on by default at %q", cfg.Admin.Addr)
	}
	cfg.Secret = "a-test-secret-long-enough-for-the-hasher"
	cfg.APIKeys = "acme:a-key-of-sixteen-chars"
	cfg.SMS.Provider = "console"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := buildGateway(context.Background(), cfg, false, io.Discard, log)
	if err != nil {
		t.Fatalf("buildGateway: %v", err)
	}
	defer g.Close()
	addr, stop, err := startAdmin("127.0.0.1:0", g.handler, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, tc := range []struct{ path, want string }{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile"},
		{"/metrics", "go_gc_heap_live_bytes"}, // the gateway's registry (liveHeap), not the default one
	} {
		resp, err := http.Get("http://" + addr.String() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s: %d, body without %q", tc.path, resp.StatusCode, tc.want)
		}
	}
	// The REST API is not served there.
	resp, err := http.Get("http://" + addr.String() + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("admin listener serves the API: GET /v1/openapi.json %d", resp.StatusCode)
	}
}
