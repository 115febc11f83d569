package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeDevRefusesHighRisk: `serve --dev` with the defaults refuses SMS
// and calls to a high-risk revenue-share destination (+269 Comoros) with
// 422 country_not_allowed, and serves the SMS-pumping watch's metrics.
func TestServeDevRefusesHighRisk(t *testing.T) {
	base, key, stdout := startDevServe(t, "")
	for _, ch := range []string{"sms", "call", "auto"} {
		status, v := call(t, "POST", base+"/v1/verifications", key, `{"to":"+2693212345","channel":"`+ch+`"}`)
		e, _ := v["error"].(map[string]any)
		if status != http.StatusUnprocessableEntity || e["code"] != "country_not_allowed" {
			t.Errorf("%s to +269: %d %v, want 422 country_not_allowed", ch, status, v)
		}
	}
	if strings.Contains(stdout.String(), "sms to=+2693") {
		t.Error("an SMS went to Comoros")
	}
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(body), "verigate_sms_pumping_blocked_prefixes 0") {
		t.Errorf("/metrics has no verigate_sms_pumping_blocked_prefixes 0")
	}
}

// TestServeDevGeoPermission: the operator enables SMS to Comoros for the
// development tenant; calls there stay refused.
func TestServeDevGeoPermission(t *testing.T) {
	path := filepath.Join(t.TempDir(), "verigate.yaml")
	if err := os.WriteFile(path, []byte("route:\n  geo:\n    permissions:\n      - {tenants: [dev], channels: [sms], allow: [KM]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, key, _ := startDevServe(t, "", "--config", path)
	if status, v := call(t, "POST", base+"/v1/verifications", key, `{"to":"+2693212345","channel":"sms"}`); status != http.StatusCreated {
		t.Errorf("sms to +269 with permission: %d %v, want 201", status, v)
	}
	if status, v := call(t, "POST", base+"/v1/verifications", key, `{"to":"+2693212346","channel":"call"}`); status != http.StatusUnprocessableEntity {
		t.Errorf("call to +269 without permission: %d %v, want 422", status, v)
	}
}
