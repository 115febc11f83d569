package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
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

// runbookURL is where every alert's runbook_url points: its heading in
// docs/METRICS.md, as GitHub anchors it (the lowercased name).
const runbookURL = "https://github.com/verigate/verigate/blob/main/docs/METRICS.md#"

// TestAlertRunbooks: every alert in deploy/prometheus/alerts.yml has its
// runbook, a "### <alert>" heading with text under it in docs/METRICS.md's
// "Alerts" section, and its runbook_url points there; and every heading
// there names an alert that exists, so a renamed or removed alert leaves
// no stale runbook behind.
func TestAlertRunbooks(t *testing.T) {
	raw, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("prometheus/alerts.yml: %v", err)
	}
	doc, err := os.ReadFile("../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Alerts")
	if !ok {
		t.Fatal(`docs/METRICS.md has no "## Alerts" section`)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	// The text under each ### heading of the section.
	runbooks := map[string]string{}
	for _, part := range strings.Split(section, "\n### ")[1:] {
		name, body, _ := strings.Cut(part, "\n")
		runbooks[strings.TrimSpace(name)] = strings.TrimSpace(body)
	}
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue // a recording rule
			}
			alerts[r.Alert] = true
			body, ok := runbooks[r.Alert]
			switch {
			case !ok:
				t.Errorf("alert %s has no runbook: add \"### %s\" to docs/METRICS.md's Alerts section (what it means, what to check, what to do)", r.Alert, r.Alert)
			case len(body) < 80:
				t.Errorf("alert %s: its runbook in docs/METRICS.md says next to nothing: %q", r.Alert, body)
			}
			if got, want := r.Annotations["runbook_url"], runbookURL+strings.ToLower(r.Alert); got != want {
				t.Errorf("alert %s: runbook_url %q, want %q", r.Alert, got, want)
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("prometheus/alerts.yml: no alert found")
	}
	for name := range runbooks {
		if !alerts[name] {
			t.Errorf("docs/METRICS.md has a runbook for %q, which deploy/prometheus/alerts.yml does not define", name)
		}
	}
}
