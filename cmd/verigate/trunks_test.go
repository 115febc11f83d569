package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/verigate/verigate/config"
	"github.com/verigate/verigate/internal/peertest"
	"github.com/verigate/verigate/internal/siptest"
	"github.com/verigate/verigate/sip"
)

// trunkGateway builds a gateway whose sip section has the trunks given.
func trunkGateway(t *testing.T, require bool, trunks ...sip.Trunk) *gateway {
	t.Helper()
	cfg := config.Default()
	cfg.Secret = "a-test-secret-long-enough-for-the-hasher"
	cfg.APIKeys = "acme:a-key-of-sixteen-chars"
	cfg.SMS.Provider = "console"
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.SIP.RTPPorts = "30300-30399"
	cfg.SIP.Trunks = trunks
	cfg.SIP.DefaultTrunk = trunks[0].Name
	cfg.SIP.RequireTrunk = require
	g, err := buildGateway(context.Background(), cfg, false, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("buildGateway: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func readyz(t *testing.T, g *gateway) (int, map[string]string) {
	t.Helper()
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var v struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("/readyz %d %q: %v", rec.Code, rec.Body.String(), err)
	}
	return rec.Code, v.Checks
}

// deadTrunk is a loopback UDP port nobody answers on.
func deadTrunk(t *testing.T) sip.Trunk {
	return sip.Trunk{Name: "dead", Address: fmt.Sprintf("127.0.0.1:%d", peertest.FreeUDPPort(t)), KeepAlive: time.Second, Register: true}
}

func TestTrunkDownKeepsGatewayReady(t *testing.T) {
	g := trunkGateway(t, false, deadTrunk(t))
	code, checks := readyz(t, g)
	if code != http.StatusOK {
		t.Fatalf("/readyz %d %v: a trunk down must not make the gateway unready without sip.require_trunk", code, checks)
	}
	if _, ok := checks["sip_trunk_dead"]; ok {
		t.Errorf("checks %v: no trunk check without sip.require_trunk", checks)
	}
}

func TestRequireTrunk(t *testing.T) {
	phone, err := siptest.NewPhone(siptest.PhoneConfig{Listen: "127.0.0.1:0", RTPPorts: "30200-30299",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	g := trunkGateway(t, true,
		sip.Trunk{Name: "phone", Address: phone.Addr().String(), KeepAlive: time.Second}, deadTrunk(t))
	// The phone answers OPTIONS: its check turns ok after the first probe.
	var checks map[string]string
	var code int
	for i := 0; i < 100; i++ {
		code, checks = readyz(t, g)
		if checks["sip_trunk_phone"] == "ok" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if checks["sip_trunk_phone"] != "ok" {
		t.Fatalf("checks %v: the answering trunk never turned ok", checks)
	}
	if code != http.StatusServiceUnavailable || checks["sip_trunk_dead"] != "failed" {
		t.Fatalf("/readyz %d %v: want 503 with the dead trunk failed", code, checks)
	}
	// The trunks' gauges and verigate_ready say the same on /metrics.
	samples := scrape(t, g)
	for _, w := range []struct {
		name, trunk string
		want        float64
	}{
		{metricTrunkUp, "phone", 1},
		{metricTrunkUp, "dead", 0},
		{metricTrunkRegistered, "dead", 0},
		{"verigate_ready", "", 0},
	} {
		var labels []string
		if w.trunk != "" {
			labels = append(labels, `trunk="`+w.trunk+`"`)
		}
		if got, ok := sum(samples, w.name, labels...); !ok || got != w.want {
			t.Errorf("%s{%v} = %v (served %v), want %v", w.name, labels, got, ok, w.want)
		}
	}
	if _, ok := sum(samples, metricTrunkRegistered, `trunk="phone"`); ok {
		t.Error("a trunk without register: true has a registered gauge")
	}
}
