package alertpush

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/internal/testenv"
)

// TestLabelsMatchRuleAlerts evaluates the shipped rule file with the pinned
// promtool and expects exactly the label sets the pusher sends, so
// Alertmanager merges a pushed and an evaluated alert into one. The
// annotations are stripped from the copy of the rules: they differ by
// design (the rules template $value), and only the labels identify an alert.
func TestLabelsMatchRuleAlerts(t *testing.T) {
	promtool := testenv.Tool(t, "promtool")
	dir := t.TempDir()

	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "rules", "breakwater.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	for _, g := range file["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			delete(r.(map[string]any), "annotations")
		}
	}
	writeYAML(t, filepath.Join(dir, "rules.yml"), file)

	// What a target scraped as job="breakwater" exposes for the event's
	// container; empty identity labels are absent, as after a scrape.
	ext := map[string]string{"job": "breakwater", "instance": "node1:9760"}
	series := func(e escape.Event, result string) string {
		l := map[string]string{"technique": e.Technique, "result": result}
		for k, v := range ext {
			l[k] = v
		}
		for i, v := range e.Identity.LabelValues() {
			if v != "" {
				l[identity.LabelNames[i]] = v
			}
		}
		var parts []string
		for k, v := range l {
			parts = append(parts, fmt.Sprintf("%s=%q", k, v))
		}
		sort.Strings(parts)
		return "breakwater_escape_attempts_total{" + strings.Join(parts, ",") + "}"
	}

	docker := escape.Event{Identity: dockerID, Technique: "mount", Result: escape.Allowed}
	pod := escape.Event{Identity: podID, Technique: "runtime_socket", Result: escape.Blocked}
	var tests []any
	for _, tc := range []struct {
		event   escape.Event
		results []string // series the container has
	}{
		{docker, []string{escape.Blocked, escape.Allowed}},
		{pod, []string{escape.Blocked}},
	} {
		// The event's result rises at 6m; the container's other series
		// stays where it was.
		var input []any
		for _, r := range tc.results {
			values := "1x10"
			if r == tc.event.Result {
				values = "1x5 2x5"
			}
			input = append(input, map[string]any{"series": series(tc.event, r), "values": values})
		}
		var alertTests []any
		for _, name := range []string{names.AlertEscapeAttempt, names.AlertEscapeSucceeded} {
			var exp []any
			for _, pushed := range alertNames(tc.event) {
				if pushed == name {
					l := alertLabels(name, tc.event, ext)
					delete(l, "alertname") // promtool adds it
					exp = append(exp, map[string]any{"exp_labels": l})
				}
			}
			alertTests = append(alertTests, map[string]any{"eval_time": "6m", "alertname": name, "exp_alerts": exp})
		}
		tests = append(tests, map[string]any{"interval": "1m", "input_series": input, "alert_rule_test": alertTests})
	}
	writeYAML(t, filepath.Join(dir, "test.yml"), map[string]any{
		"rule_files":          []string{"rules.yml"},
		"evaluation_interval": "1m",
		"tests":               tests,
	})

	cmd := exec.Command(promtool, "test", "rules", "test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pushed labels differ from the rule alerts' (promtool test rules: %v):\n%s", err, out)
	}
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
