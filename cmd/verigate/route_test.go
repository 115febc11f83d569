package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/verigate/verigate/internal/routetest"
	"github.com/verigate/verigate/route"
	"github.com/verigate/verigate/verify"
)

func explain(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"route", "explain"}, args...), &out, &errOut)
	return squeeze(out.String()), err
}

// squeeze folds the text output's column padding to one space.
func squeeze(s string) string {
	return regexp.MustCompile(` {2,}`).ReplaceAllString(s, " ")
}

func TestRouteExplainDefaults(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"+4930123456"}, []string{"+4930123456 (DE, fixed line)", "decision call\n", "reasons fixed line\n", "rules none looked at"}},
		{[]string{"+4915123456789", "--roaming"}, []string{"carrier T-Mobile", "hint: the request says roaming=true (decides)", "roaming yes", "decision call\n", "fallback sms\n", "reasons roaming\n"}},
		{[]string{"--channel", "sms", "+4915123456789"}, []string{"decision sms\n", "fallback none\n", "reasons requested\n"}},
		{[]string{"+12015550123"}, []string{"(US, fixed line or mobile)", "decision sms\n", "fallback call\n", "reasons fixed line or mobile\n"}},
		{[]string{"+499001234567", "--channel", "call"}, []string{"decision refused (unsupported_number)", "premium rate numbers are not supported"}},
		{[]string{"+4930123456", "--channel=sms"}, []string{"refused (unsupported_number)", "fixed line and cannot receive SMS"}},
	} {
		out, err := explain(t, tc.args...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
}

func TestRouteExplainConfigAndJSON(t *testing.T) {
	dir := t.TempDir()
	db := routetest.GeoIPDB(t, map[string]string{"81.2.69.0/24": "GB"})
	cfg := `
verify:
  default_region: DE
route:
  geoip_db: ` + db + `
  deny_countries: [RU]
  rules:
    - name: de-landline-pbx
      match: {countries: [DE], line_types: [fixed_line]}
      action: {provider: sip, trunk: pbx1}
    - name: roaming-twilio
      match: {roaming: true}
      action: {channel: call, provider: twilio}
`
	path := filepath.Join(dir, "verigate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := explain(t, "0151 23456789", "--client-ip", "81.2.69.160", "--config", path, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ex route.Explanation
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if ex.Number.E164 != "+4915123456789" || !ex.Roaming || ex.Route == nil || ex.Route.Channel != verify.ChannelCall ||
		ex.Route.Provider != "twilio" || len(ex.Rules) != 2 || ex.Rules[0].Matched || !ex.Rules[1].Matched {
		t.Errorf("explanation: %s", out)
	}
	out, err = explain(t, "+4930123456", "--config", path)
	if err != nil || !strings.Contains(out, "1. de-landline-pbx: matched") || !strings.Contains(out, "call via sip, trunk pbx1") {
		t.Errorf("%v\n%s", err, out)
	}
	out, err = explain(t, "+79123456789", "--config", path)
	if err != nil || !strings.Contains(out, "refused (country_not_allowed)") {
		t.Errorf("%v\n%s", err, out)
	}
}

func TestRouteExplainErrors(t *testing.T) {
	for _, args := range [][]string{
		{},                                // no number
		{"+4915123456789", "+4930123456"}, // two numbers
		{"+4915123456789", "--channel", "fax"},
		{"12345"}, // no country code
		{"+4915123456789", "--config", "/nonexistent/verigate.yaml"},
	} {
		if _, err := explain(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"route", "frob"}, &out, &out); err == nil {
		t.Error("route frob: no error")
	}
	if err := run(context.Background(), []string{"route", "--help"}, &out, &out); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("route --help: %v", err)
	}
}

// A gateway configured without an SMS provider routes as serve does:
// an SMS is refused and auto becomes a call, where the built-in defaults
// would text.
func TestRouteExplainNoSMS(t *testing.T) {
	path := filepath.Join(t.TempDir(), "verigate.yaml")
	if err := os.WriteFile(path, []byte("sms:\n  provider: none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := explain(t, "--channel", "sms", "+4915123456789", "--config", path)
	if err != nil || !strings.Contains(out, "refused (unsupported_number)") || !strings.Contains(out, route.ErrNoSMSMessage) {
		t.Errorf("sms on a gateway without SMS: %v\n%s", err, out)
	}
	out, err = explain(t, "+12015550123", "--config", path)
	if err != nil || !strings.Contains(out, "decision call\n") {
		t.Errorf("auto on a gateway without SMS: %v\n%s", err, out)
	}
	// The same requests without the configuration text.
	if out, err := explain(t, "--channel", "sms", "+4915123456789"); err != nil || !strings.Contains(out, "decision sms\n") {
		t.Errorf("sms with the defaults: %v\n%s", err, out)
	}
}
