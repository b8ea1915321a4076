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
	"github.com/breakwater/breakwater/rules"
)

// pod is a Kubernetes container of the given namespace, pod and image.
func pod(i int, namespace, podName, image string) identity.Identity {
	return identity.Identity{
		ContainerID: fmt.Sprintf("%064x", 0xc0000+i), Name: "k8s_c_" + podName + "_" + namespace,
		Image: image, Namespace: namespace, Pod: podName, Container: "c",
	}
}

// decisionEvents exercise everything that decides whether and how an event
// alerts: results, identities, the container selector and the exclusions
// of rules/tests/tuned/config.yml.
var decisionEvents = []escape.Event{
	{Identity: dockerID, Technique: names.TechniqueMount, Result: escape.Allowed},
	{Identity: podID, Technique: names.TechniqueRuntimeSocket, Result: escape.Blocked},
	{Identity: pod(1, "kube-system", "ebs-csi-node-x", "ebs-csi:1"), Technique: names.TechniqueMount, Result: escape.Allowed},
	{Identity: pod(2, "kube-system", "ebs-csi-node-y", "ebs-csi:1"), Technique: names.TechniquePtrace, Result: escape.Blocked},
	{Identity: pod(3, "default", "csi-fake", "evil:1"), Technique: names.TechniqueMount, Result: escape.Allowed},
	{Identity: pod(4, "ci", "b-1", "buildkit:0.20"), Technique: names.TechniqueNamespace, Result: escape.Blocked},
	{Identity: pod(5, "ci", "b-2", "buildkit:0.20"), Technique: names.TechniquePtrace, Result: escape.Blocked},
	{Identity: pod(6, "monitoring", "a-1", "agent:2"), Technique: names.TechniqueKernelInterface, Result: escape.Allowed},
	{Identity: identity.Identity{ContainerID: fmt.Sprintf("%064x", 0xd1), Name: "builder", Image: "moby/buildkit:0.20"}, Technique: names.TechniqueNamespace, Result: escape.Blocked},
	// A host process (--collector.security.host) and a pod sandbox are not
	// containers: neither path alerts.
	{Identity: identity.Identity{}, Technique: names.TechniqueMount, Result: escape.Allowed},
	{Identity: identity.Identity{ContainerID: fmt.Sprintf("%064x", 0xd2), Name: "k8s_POD_p_ns", Image: "pause:3.10", Namespace: "ns", Pod: "p", Container: "POD"}, Technique: names.TechniqueNamespace, Result: escape.Allowed},
}

// TestDecisionsMatchRuleAlerts generates the pack from the shipped defaults
// and from the tuned test configuration, evaluates it with the pinned
// promtool on the series each event leaves, and expects exactly the alerts,
// with exactly the label sets, the pusher sends for the same events under
// the same configuration: which events alert (container selector,
// exclusions), under which names and with which severities is decided
// alike on both paths, and Alertmanager merges a pushed and an evaluated
// alert into one. The annotations are stripped from the rules: they differ
// by design, and only the labels identify an alert.
func TestDecisionsMatchRuleAlerts(t *testing.T) {
	tuned, err := rules.Load(filepath.Join(testenv.RepoRoot(t), "rules", "tests", "tuned", "config.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]rules.Config{"defaults": rules.Default(), "tuned": tuned} {
		t.Run(name, func(t *testing.T) {
			pol, err := newPolicy(cfg)
			if err != nil {
				t.Fatal(err)
			}
			alerting := 0
			for _, e := range decisionEvents {
				alerting += len(pol.alertNames(e))
			}
			// Both configurations must leave some events out, or the test
			// would not show that both paths leave out the same ones.
			if alerting == 0 || alerting >= len(decisionEvents) {
				t.Fatalf("%d alerts from %d events: the events do not exercise the decisions", alerting, len(decisionEvents))
			}
			matchRules(t, cfg, pol)
		})
	}
}

func matchRules(t *testing.T, cfg rules.Config, pol policy) {
	promtool := testenv.Tool(t, "promtool")
	dir := t.TempDir()
	ruleFile := filepath.Join(dir, "breakwater.rules.yml")
	if err := rules.Write(cfg, ruleFile, filepath.Join(dir, "prometheusrule.yaml")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ruleFile)
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
	// container; empty identity labels are absent, as after a scrape. The
	// event's result rises at 6m; the other result's series stays.
	ext := map[string]string{"job": "breakwater", "instance": "node1:9760"}
	series := func(e escape.Event, result string) string {
		l := map[string]string{"technique": e.Technique, "result": result}
		for k, v := range ext {
			l[k] = v
		}
		for i, v := range e.Identity.LabelValues() {
			if v != "" {
				l[names.IdentityLabels[i]] = v
			}
		}
		var parts []string
		for k, v := range l {
			parts = append(parts, fmt.Sprintf("%s=%q", k, v))
		}
		sort.Strings(parts)
		return names.MetricEscapeAttempts + "{" + strings.Join(parts, ",") + "}"
	}
	input := []any{map[string]any{"series": fmt.Sprintf("up{job=%q,instance=%q}", ext["job"], ext["instance"]), "values": "1x10"}}
	exp := map[string][]any{}
	for _, e := range decisionEvents {
		for _, r := range names.EscapeResults {
			values := "1x10"
			if r == e.Result {
				values = "1x5 2x5"
			}
			input = append(input, map[string]any{"series": series(e, r), "values": values})
		}
		for _, name := range pol.alertNames(e) {
			l := pol.alertLabels(name, e, ext)
			delete(l, "alertname") // promtool adds it
			exp[name] = append(exp[name], map[string]any{"exp_labels": l})
		}
	}
	var alertTests []any
	for _, name := range names.PushedAlerts {
		alertTests = append(alertTests, map[string]any{"eval_time": "6m", "alertname": name, "exp_alerts": exp[name]})
	}
	writeYAML(t, filepath.Join(dir, "test.yml"), map[string]any{
		"rule_files":          []string{"rules.yml"},
		"evaluation_interval": "1m",
		"tests":               []any{map[string]any{"interval": "1m", "input_series": input, "alert_rule_test": alertTests}},
	})

	cmd := exec.Command(promtool, "test", "rules", "test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the push decides differently from the rules (promtool test rules: %v):\n%s", err, out)
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
