package validate

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/breakwater/breakwater/internal/testenv"
	"github.com/breakwater/breakwater/rules"
)

// everything changes every kind of setting the rule template handles:
// selectors with quotes and backticks, empty selectors, other target labels,
// no cluster label, kube-state-metrics off, a `for` of zero and a `for`
// where the default has none, severities, and exclusions whose patterns need
// escaping. Durations are written as Prometheus prints them: the chart
// passes a value such as 90s on as it is, the generator prints the same
// duration as 1m30s, and the comparison is textual.
const everything = `
selector: 'job="bw", env=~` + "`prod|stage`" + `'
containerSelector: ""
cgroupSelector: 'id=~".*[0-9a-f]{64}"'
kubeStateMetricsSelector: ""
targetLabels: [instance, node]
clusterLabel: ""
runbookURL: https://wiki.example.org/rb/
grafanaURL: https://grafana.example.org/sub
rateWindow: 2m
baselineWindow: 2h
baselineMinAge: 1h
counterHistory: 3h
memoryNearLimit: {ratio: 0.75, for: 0s, severity: page}
cpuSpike: {factor: 2.5, minCores: 0}
cpuThrottled: {ratio: 1}
restartingOften: {restarts: 0, window: 1h, for: 1m}
crashLooping: {window: 20m, for: 1h}
oomKilled: {window: 1m, severity: info}
escapeAttempt: {window: 1m30s, severity: low}
disabled: {ContainerCPUSpike: true, ContainerOOMKilled: false, BreakwaterDown: true, BreakwaterProbeDetached: true,
  BreakwaterEventsLost: true, BreakwaterCollectorFailed: true, BreakwaterPushFailing: true}
additionalRuleLabels: {team: "sec: \"ops\"", tier: "1"}
additionalRuleAnnotations: {chat: "#sec {{ $labels.name }}", "n_1": "x\ny"}
escapeSucceeded: {window: 1m, severity: sev1}
novelSyscall: {window: 1h, severity: critical}
syscallsDeniedBurst: {factor: 10, minRate: 0.5, for: 30s}
privilegedCapabilities: {severity: none, for: 1h}
breakwaterDown: {for: 1m}
eventsLost: {window: 1m, for: 1m}
collectorFailed: {for: 0s}
pushFailing: {window: 1h, for: 0s}
exclusions:
  csiNodePlugins: {enabled: true}
  ebpfAgents: null
  quoted: {image: 'registry\.example/"odd"\\name', name: "a|b", container: '.*'}
  disabled: {namespace: x, enabled: false}
  everything: {namespace: ns1, pod: p1, image: i1, name: m1, container: c1, technique: "ptrace|mount"}
`

// configs are the rule configurations the chart and the generator must
// agree on: the defaults, every variant of rules/tests, and everything.
// nullTargetLabels removes a list's default, in a values file as in a
// config file: the rules keep no target labels.
const nullTargetLabels = "targetLabels: null\n"

func configs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{"defaults": "", "everything": everything, "null-target-labels": nullTargetLabels}
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "rules", "tests", "*", "config.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rules/tests/*/config.yml: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(filepath.Dir(f))] = string(b)
	}
	return out
}

// asRulesValues puts a rule configuration under the chart's rules key.
func asRulesValues(config string) string {
	if strings.TrimSpace(config) == "" {
		return ""
	}
	return "rules:\n  " + strings.ReplaceAll(strings.TrimSpace(config), "\n", "\n  ") + "\n"
}

// chartGroups renders the chart and returns its PrometheusRule's groups.
func chartGroups(t *testing.T, values string) []rules.Group {
	t.Helper()
	out := renderFiles(t, "breakwater", "breakwater", values)
	doc := out["breakwater/templates/prometheusrule.yaml"]
	var pr struct {
		Spec struct {
			Groups json.RawMessage `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(doc), &pr); err != nil {
		t.Fatalf("PrometheusRule: %v\n%s", err, doc)
	}
	// Strictly: a field the pack does not write is a difference too.
	var groups []rules.Group
	dec := json.NewDecoder(bytes.NewReader(pr.Spec.Groups))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&groups); err != nil {
		t.Fatalf("PrometheusRule groups: %v\n%s", err, doc)
	}
	return groups
}

func normalise(t *testing.T, gs []rules.Group) []rules.Group {
	t.Helper()
	b, err := json.Marshal(gs)
	if err != nil {
		t.Fatal(err)
	}
	var out []rules.Group
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHelmRulesMatchGenerator renders the chart with rule settings as its
// rules values and requires exactly the rules `rules/generate -config`
// writes from the same settings: the template and the Go generator execute
// one text, and Helm merges values as rules.Load merges a config file.
func TestHelmRulesMatchGenerator(t *testing.T) {
	for name, cfg := range configs(t) {
		t.Run(name, func(t *testing.T) {
			c, err := rules.Parse([]byte(cfg))
			if err != nil {
				t.Fatal(err)
			}
			want := normalise(t, rules.Groups(c))
			got := normalise(t, chartGroups(t, asRulesValues(cfg)))
			if len(got) != len(want) {
				t.Fatalf("chart renders %d groups, generator %d", len(got), len(want))
			}
			for i := range want {
				if len(got[i].Rules) != len(want[i].Rules) {
					t.Errorf("group %s: chart %d rules, generator %d", want[i].Name, len(got[i].Rules), len(want[i].Rules))
					continue
				}
				for j := range want[i].Rules {
					if g, w := got[i].Rules[j], want[i].Rules[j]; !reflect.DeepEqual(g, w) {
						gj, _ := yaml.Marshal(g)
						wj, _ := yaml.Marshal(w)
						t.Errorf("group %s rule %d differs:\n--- chart\n%s--- generator\n%s", want[i].Name, j, gj, wj)
					}
				}
			}
		})
	}
}

// TestHelmRulesPromtool runs the pack's promtool tests on what `helm
// template` renders: the shipped tests on the chart's defaults, and each
// variant's tests on the chart with the variant's settings as values.
func TestHelmRulesPromtool(t *testing.T) {
	promtool := testenv.Tool(t, "promtool")
	root := testenv.RepoRoot(t)
	for name, cfg := range configs(t) {
		var tests []string
		var err error
		switch name {
		case "defaults":
			tests, err = filepath.Glob(filepath.Join(root, "rules", "tests", "*.test.yml"))
		case "everything", "null-target-labels":
			continue // promtool check only, below
		default:
			tests, err = filepath.Glob(filepath.Join(root, "rules", "tests", name, "*.test.yml"))
		}
		if err != nil || len(tests) == 0 {
			t.Fatalf("%s: no promtool tests: %v", name, err)
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ruleFile := filepath.Join(dir, "breakwater.rules.yml")
			b, err := yaml.Marshal(map[string]any{"groups": chartGroups(t, asRulesValues(cfg))})
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, ruleFile, string(b))
			// The shipped tests read ../breakwater.rules.yml, the variants'
			// breakwater.rules.yml beside them.
			testDir := dir
			if name == "defaults" {
				testDir = filepath.Join(dir, "tests")
				if err := os.Mkdir(testDir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// Rule files of other packs the variant evaluates beside this one.
			if name != "defaults" {
				others, _ := filepath.Glob(filepath.Join(root, "rules", "tests", name, "*.rules.yml"))
				testenv.CopyInto(t, testDir, others)
			}
			args := append([]string{"test", "rules"}, testenv.CopyInto(t, testDir, tests)...)
			if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
				t.Fatalf("promtool test rules on the chart's rules: %v\n%s", err, out)
			}
		})
	}
	for name, cfg := range map[string]string{"everything": everything, "null-target-labels": nullTargetLabels} {
		t.Run(name, func(t *testing.T) {
			ruleFile := filepath.Join(t.TempDir(), "breakwater.rules.yml")
			b, err := yaml.Marshal(map[string]any{"groups": chartGroups(t, asRulesValues(cfg))})
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, ruleFile, string(b))
			if out, err := exec.Command(promtool, "check", "rules", ruleFile).CombinedOutput(); err != nil {
				t.Fatalf("promtool check rules: %v\n%s", err, out)
			}
		})
	}
}

// TestHelmJobName: serviceMonitor.jobName reaches the rules, the push's
// external labels and the push's rules configuration.
func TestHelmJobName(t *testing.T) {
	values := "serviceMonitor: {jobName: bw-prod}\nalertmanager: {urls: [http://alertmanager.monitoring:9093]}\n"
	objs := render(t, "breakwater", "breakwater", values)
	checkObjects(t, objs, expect{namespace: "breakwater", job: "bw-prod"})
	exprs := ""
	for _, g := range chartGroups(t, values) {
		for _, r := range g.Rules {
			exprs += r.Expr + "\n"
		}
	}
	if !strings.Contains(exprs, `job="bw-prod"`) || strings.Contains(exprs, `job="breakwater"`) {
		t.Errorf("the rules do not select job=\"bw-prod\" alone:\n%s", exprs)
	}
	ds := must(Only[*appsv1.DaemonSet](objs))(t)
	if args := ds.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--alertmanager.external-label=job=bw-prod") {
		t.Errorf("the push does not label job=bw-prod: %q", args)
	}
	cm := must(Only[*corev1.ConfigMap](objs))(t)
	c, err := rules.Parse([]byte(cm.Data["rules.yml"]))
	if err != nil || c.Selector != `job="bw-prod"` {
		t.Errorf("the push's rules config selects %q (%v)", c.Selector, err)
	}
}

// TestHelmValuesSchema: values.schema.json rejects what rules.Load rejects
// by name and type, and accepts what the tests use.
func TestHelmValuesSchema(t *testing.T) {
	for _, bad := range []string{
		"rules: {cpuSpike: {facter: 3}}",
		"rules: {rateWindow: fast}",
		"rules: {memoryNearLimit: {ratio: high}}",
		"rules: {exclusions: {x: {namespce: a}}}",
		"rules: {targetLabels: job}",
		"rules: {prometheusRule: {name: x}}",
		"rules: {disabled: {ContainerCPUThrotled: true}}",
		"rules: {additionalRuleLabels: {severity: page}}",
		"rules: {escapeAttempt: {severity: {blocked: info}}}",
		// The chart's own values (issue 25: these passed silently).
		`serviceMonitor: {enabled: "yes"}`,
		"image: {pullPolicy: Sometimes}",
		`hostNetwork: "true"`,
		"hostNetwrok: true",
		"web: {port: 0}",
	} {
		if _, err := tryRender("breakwater", "breakwater", bad); err == nil {
			t.Errorf("the chart accepts %s", bad)
		} else if _, perr := rules.Parse([]byte(strings.TrimPrefix(strings.TrimSuffix(bad, "}"), "rules: {"))); perr == nil && !strings.Contains(bad, "prometheusRule") {
			t.Errorf("rules.Parse accepts %s, which the chart rejects", bad)
		}
	}
	for name, cfg := range configs(t) {
		if _, err := tryRender("breakwater", "breakwater", asRulesValues(cfg)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := tryRender("breakwater", "breakwater", fullValues); err != nil {
		t.Errorf("full values: %v", err)
	}
}
