package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAlertRules: promtool accepts deploy/prometheus/alerts.yml and its
// unit tests (alerts_test.yml) pass: the trunk-down, Redis-errors,
// not-ready and call-failure alerts fire on the series that should fire
// them, with their runbook links, and not before their `for`. Which
// metrics the rules query is checked against the gateway's registry by
// cmd/verigate's TestMetricsMoveEndToEnd.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install the Debian package prometheus")
	}
	for _, args := range [][]string{
		{"check", "rules", "prometheus/alerts.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestAlertRulesTestFails: the rule tests can fail — an alert made to
// expect the wrong labels is reported — so a pass above means something.
func TestAlertRulesTestFails(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install the Debian package prometheus")
	}
	dir := t.TempDir()
	for _, name := range []string{"alerts.yml", "alerts_test.yml"} {
		b, err := os.ReadFile("prometheus/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "alerts_test.yml" {
			b = []byte(strings.Replace(string(b), "trunk: pbx}", "trunk: carrier}", 1))
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(promtool, "test", "rules", filepath.Join(dir, "alerts_test.yml")).CombinedOutput(); err == nil {
		t.Fatalf("a wrong expectation passed:\n%s", out)
	}
}
