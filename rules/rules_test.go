package rules

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/internal/testenv"
)

// promtool runs the pinned promtool and returns its output and error.
func promtool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, testenv.Tool(t, "promtool"), args...).CombinedOutput()
	return string(out), err
}

func testFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.test.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool test files in %s: %v", dir, err)
	}
	return files
}

// TestGeneratedFilesUpToDate fails when the committed files differ from what
// the Go source generates: run `make rules` and commit.
func TestGeneratedFilesUpToDate(t *testing.T) {
	root := testenv.RepoRoot(t)
	for _, f := range []struct {
		path   string
		render func(Config) ([]byte, error)
	}{{RuleFilePath, RuleFile}, {PrometheusRulePath, PrometheusRule}} {
		want, err := f.render(Default())
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, f.path))
		if err != nil {
			t.Fatalf("%s: %v (run make rules)", f.path, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s drifted from rules/*.go: run `make rules` and commit it", f.path)
		}
	}
}

// TestPromtoolCheck lints the rule file and the groups inside the
// PrometheusRule, which promtool cannot read as they are.
func TestPromtoolCheck(t *testing.T) {
	root := testenv.RepoRoot(t)
	if out, err := promtool(t, "check", "rules", filepath.Join(root, RuleFilePath)); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}

	b, err := os.ReadFile(filepath.Join(root, PrometheusRulePath))
	if err != nil {
		t.Fatal(err)
	}
	var pr prometheusRule
	if err := yaml.UnmarshalStrict(b, &pr); err != nil {
		t.Fatalf("%s: %v", PrometheusRulePath, err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" || pr.Metadata.Name == "" {
		t.Errorf("PrometheusRule header: %s %s %q", pr.APIVersion, pr.Kind, pr.Metadata.Name)
	}
	groups, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "spec.rules.yml")
	if err := os.WriteFile(f, groups, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := promtool(t, "check", "rules", f)
	if err != nil {
		t.Fatalf("promtool check rules on the PrometheusRule groups: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("%d rules found", rulesIn(Groups(Default()))); !strings.Contains(out, want) {
		t.Errorf("PrometheusRule holds a different number of rules than the pack:\n%s", out)
	}
}

func rulesIn(gs []Group) int {
	n := 0
	for _, g := range gs {
		n += len(g.Rules)
	}
	return n
}

// TestPromtoolTestRules runs the boundary tests in rules/tests.
func TestPromtoolTestRules(t *testing.T) {
	root := testenv.RepoRoot(t)
	args := append([]string{"test", "rules"}, testFiles(t, filepath.Join(root, "rules", "tests"))...)
	out, err := promtool(t, args...)
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestPromtoolTestsCatchMutations regenerates the pack with one setting
// changed at a time and requires the unchanged promtool tests to fail: the
// boundaries and guards they claim to cover are really covered.
func TestPromtoolTestsCatchMutations(t *testing.T) {
	if testing.Short() {
		t.Skip("runs promtool once per mutation")
	}
	root := testenv.RepoRoot(t)
	tests := testFiles(t, filepath.Join(root, "rules", "tests"))
	for _, m := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"memory ratio 0.92 misses 91%", func(c *Config) { c.MemoryNearLimit.Ratio = 0.92 }},
		{"memory ratio 0.88 fires at 89%", func(c *Config) { c.MemoryNearLimit.Ratio = 0.88 }},
		{"memory for 1m fires early", func(c *Config) { c.MemoryNearLimit.For = model.Duration(time.Minute) }},
		{"no cgroup guard counts nested cgroups", func(c *Config) { c.CgroupSelector = "" }},
		{"no container guard pages for sandboxes", func(c *Config) { c.ContainerSelector = "" }},
		{"6 restarts allowed", func(c *Config) { c.RestartingOften.Restarts = 6 }},
		{"4 restarts allowed", func(c *Config) { c.RestartingOften.Restarts = 4 }},
		{"no kube-state-metrics", func(c *Config) { c.KubeStateMetricsSelector = "" }},
		{"crash loop for 20m", func(c *Config) { c.CrashLooping.For = model.Duration(20 * time.Minute) }},
		{"crash loop window 5m misses the slow loop", func(c *Config) { c.CrashLooping.Window = model.Duration(5 * time.Minute) }},
		{"crash loop for 10m fires on a burst", func(c *Config) { c.CrashLooping.For = model.Duration(10 * time.Minute) }},
		{"no cpu floor", func(c *Config) { c.CPUSpike.MinCores = 0 }},
		{"cpu factor 3 misses the triple", func(c *Config) { c.CPUSpike.Factor = 3 }},
		{"short baseline age", func(c *Config) { c.BaselineMinAge = model.Duration(5 * time.Minute) }},
		{"baseline window 20m takes the step in early", func(c *Config) { c.BaselineWindow = model.Duration(20 * time.Minute) }},
		{"throttling ratio 0.5", func(c *Config) { c.CPUThrottled.Ratio = 0.5 }},
		{"throttling ratio 0.1", func(c *Config) { c.CPUThrottled.Ratio = 0.1 }},
		{"oom window 20m resolves late", func(c *Config) { c.OOMKilled.Window = model.Duration(20 * time.Minute) }},
		{"escape window 10m resolves late", func(c *Config) { c.EscapeAttempt.Window = model.Duration(10 * time.Minute) }},
		{"escape succeeded window 10m resolves late", func(c *Config) { c.EscapeSucceeded.Window = model.Duration(10 * time.Minute) }},
		{"escape attempts critical", func(c *Config) { c.EscapeAttempt.Severity = "critical" }},
		{"escape successes warning", func(c *Config) { c.EscapeSucceeded.Severity = "warning" }},
		{"counter history 1m replays after a collector failure", func(c *Config) { c.CounterHistory = model.Duration(time.Minute) }},
		{"novel syscall window 5m", func(c *Config) { c.NovelSyscall.Window = model.Duration(5 * time.Minute) }},
		{"an exclusion of namespace dev", func(c *Config) { c.Exclusions["dev"] = Exclusion{Namespace: "dev"} }},
		{"a cluster label region drops cluster", func(c *Config) { c.ClusterLabel = "region" }},
		{"denied floor 10", func(c *Config) { c.SyscallsDeniedBurst.MinRate = 10 }},
		{"denied floor 0.4 fires on the trickle", func(c *Config) { c.SyscallsDeniedBurst.MinRate = 0.4 }},
		{"other job", func(c *Config) { c.Selector = `job="other"` }},
		{"down for 1m", func(c *Config) { c.Down.For = model.Duration(time.Minute) }},
		{"probe detached for 5m", func(c *Config) { c.ProbeDetached.For = model.Duration(5 * time.Minute) }},
		{"events lost window 5m", func(c *Config) { c.EventsLost.Window = model.Duration(5 * time.Minute) }},
		{"collector failed for 10m", func(c *Config) { c.CollectorFailed.For = model.Duration(10 * time.Minute) }},
		{"push failing window 3m", func(c *Config) { c.PushFailing.Window = model.Duration(3 * time.Minute) }},
		{"capabilities severity", func(c *Config) { c.PrivilegedCapabilities.Severity = "warning" }},
		{"runbook base", func(c *Config) { c.RunbookURL = "https://example.org/" }},
		{"grafana url", func(c *Config) { c.GrafanaURL = "https://grafana.example.org" }},
	} {
		t.Run(m.name, func(t *testing.T) {
			c := Default()
			m.mutate(&c)
			dir := t.TempDir()
			if err := Write(c, filepath.Join(dir, "breakwater.rules.yml"), filepath.Join(dir, "prometheusrule.yaml")); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(dir, "tests"), 0o755); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"test", "rules"}, testenv.CopyInto(t, filepath.Join(dir, "tests"), tests)...)
			out, err := promtool(t, args...)
			if err == nil {
				t.Fatalf("promtool tests still pass with the mutation:\n%s", out)
			}
			if !strings.Contains(out, "FAILED") {
				t.Fatalf("promtool failed for another reason than a test: %v\n%s", err, out)
			}
		})
	}
}

// TestEveryAlert checks what every alert must have and that the pack ships
// exactly the contract's alerts, each with a runbook and with promtool cases
// that fire and that must not.
func TestEveryAlert(t *testing.T) {
	root := testenv.RepoRoot(t)
	c := Default()
	var got []string
	for _, g := range Groups(c) {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			got = append(got, r.Alert)
			if r.Labels["severity"] == "" {
				t.Errorf("%s: no severity", r.Alert)
			}
			for _, a := range []string{"summary", "description"} {
				if !strings.Contains(r.Annotations[a], "$labels") && !strings.Contains(r.Annotations[a], "$value") {
					t.Errorf("%s: %s names neither the container nor the value: %q", r.Alert, a, r.Annotations[a])
				}
			}
			if !strings.Contains(r.Annotations["description"], "$value") && r.Alert != names.AlertBreakwaterDown && r.Alert != names.AlertProbeDetached && r.Alert != names.AlertCollectorFailed && r.Alert != names.AlertPrivilegedCapabilities && r.Alert != names.AlertStateFileProblem {
				t.Errorf("%s: description does not give the value", r.Alert)
			}
			if want := c.RunbookURL + r.Alert + ".md"; r.Annotations["runbook_url"] != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
			}
			rb, err := os.ReadFile(filepath.Join(root, "docs", "runbooks", r.Alert+".md"))
			if err != nil {
				t.Errorf("%s: no runbook: %v", r.Alert, err)
				continue
			}
			for _, section := range []string{"# " + r.Alert, "## Meaning", "## Investigate", "## Respond"} {
				if !bytes.Contains(rb, []byte(section)) {
					t.Errorf("docs/runbooks/%s.md lacks %q", r.Alert, section)
				}
			}
		}
	}
	if got = slices.Compact(got); !slices.Equal(got, names.Alerts) {
		t.Errorf("alerts %v, want the contract's %v", got, names.Alerts)
	}

	// Which alerts the promtool tests expect to fire, and to stay quiet.
	type testFile struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, f := range testFiles(t, filepath.Join(root, "rules", "tests")) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tf testFile
		if err := yaml.Unmarshal(b, &tf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tg := range tf.Tests {
			for _, a := range tg.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					quiet[a.Alertname] = true
				}
			}
		}
	}
	for _, name := range names.Alerts {
		if !fires[name] || !quiet[name] {
			t.Errorf("%s: promtool tests must fire it and keep it quiet (fire %v, quiet %v)", name, fires[name], quiet[name])
		}
	}
}

// TestEscapeAlertLabels pins the label sets the Alertmanager push must send
// and checks the rules aggregate by them.
func TestEscapeAlertLabels(t *testing.T) {
	want := map[string][]string{
		names.AlertEscapeAttempt:   {"cluster", "job", "instance", "container_id", "name", "image", "namespace", "pod", "container", "technique", "result"},
		names.AlertEscapeSucceeded: {"cluster", "job", "instance", "container_id", "name", "image", "namespace", "pod", "container", "technique"},
	}
	by := regexp.MustCompile(`^max by \(([^)]*)\)`)
	seen := 0
	for _, g := range Groups(Default()) {
		for _, r := range g.Rules {
			w, ok := want[r.Alert]
			if !ok {
				continue
			}
			seen++
			if got := EscapeAlertLabels(Default(), r.Alert); !slices.Equal(got, w) {
				t.Errorf("EscapeAlertLabels(%s) = %v, want %v", r.Alert, got, w)
			}
			m := by.FindStringSubmatch(r.Expr)
			if m == nil || m[1] != strings.Join(w, ", ") {
				t.Errorf("%s aggregates by %v, want %v", r.Alert, m, w)
			}
			if len(r.Labels) != 1 || r.Labels["severity"] == "" {
				t.Errorf("%s labels %v, want only severity", r.Alert, r.Labels)
			}
		}
	}
	if seen != 2 {
		t.Errorf("%d escape rules, want one ContainerEscapeAttempt (blocked) and one ContainerEscapeSucceeded (allowed)", seen)
	}
	c := Default()
	c.ClusterLabel, c.TargetLabels = "", []string{"instance", "job", "instance"}
	if got, w := EscapeAlertLabels(c, names.AlertEscapeSucceeded), []string{"instance", "job", "container_id", "name", "image", "namespace", "pod", "container", "technique"}; !slices.Equal(got, w) {
		t.Errorf("EscapeAlertLabels without a cluster label, target labels repeated = %v, want %v", got, w)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, file, err string
		check           func(Config) bool
	}{
		{"empty keeps defaults", "", "", func(c Config) bool { return c.Selector == Default().Selector && c.MemoryNearLimit.Ratio == 0.9 }},
		{"yaml override", "selector: job=\"bw-e2e\"\nrateWindow: 1m\nbaselineWindow: 3m\ncpuSpike:\n  for: 30s\n", "",
			func(c Config) bool {
				return c.Selector == `job="bw-e2e"` && c.BaselineWindow == model.Duration(3*time.Minute) &&
					c.CPUSpike.For == model.Duration(30*time.Second) && c.CPUSpike.Factor == 2 && c.CPUSpike.Severity == "warning"
			}},
		{"json override", `{"escapeAttempt": {"window": "1m"}, "targetLabels": ["instance"]}`, "",
			func(c Config) bool {
				return c.EscapeAttempt.Window == model.Duration(time.Minute) && slices.Equal(c.TargetLabels, []string{"instance"}) && c.EscapeAttempt.Severity == "warning"
			}},
		{"unknown key", "cpuSpike:\n  facter: 3\n", "unknown field", nil},
		{"bad duration", "rateWindow: fast\n", "not a valid duration", nil},
		{"invalid ratio", "memoryNearLimit:\n  ratio: 1.5\n", "ratio must be in (0, 1]", nil},
		{"baseline shorter than rate", "baselineWindow: 1m\n", "baselineWindow must be longer", nil},
		// Maps merge key by key, as Helm merges values; null removes.
		{"merge a severity", "escapeAttempt:\n  severity: info\n", "",
			func(c Config) bool {
				return c.EscapeAttempt.Severity == "info" && c.EscapeAttempt.Window == Default().EscapeAttempt.Window
			}},
		// The severity per result of older configurations: allowed attempts
		// are ContainerEscapeSucceeded's now.
		{"disable an unknown alert", "disabled: {ContainerCPUThrotled: true}\n", "disabled.ContainerCPUThrotled: no such alert", nil},
		{"severity as an additional label", "additionalRuleLabels: {severity: page}\n", "additionalRuleLabels.severity: set by the pack itself", nil},
		{"runbook as an additional annotation", "additionalRuleAnnotations: {runbook_url: x}\n", "additionalRuleAnnotations.runbook_url: set by the pack itself", nil},
		{"additional label not a label name", "additionalRuleLabels: {team-x: a}\n", `"team-x" is not a label name`, nil},
		{"disable and add", "disabled: {ContainerCPUThrottled: true, ContainerOOMKilled: false}\nadditionalRuleLabels: {team: sec}\n", "",
			func(c Config) bool {
				gs := Groups(c)
				alerts := map[string]Rule{}
				for _, g := range gs {
					for _, r := range g.Rules {
						if r.Alert != "" {
							alerts[r.Alert] = r
						}
						if r.Record != "" && r.Labels["team"] != "" {
							return false // recording rules keep their labels
						}
					}
				}
				_, throttled := alerts[names.AlertCPUThrottled]
				oom := alerts[names.AlertOOMKilled]
				return !throttled && oom.Labels["team"] == "sec" && oom.Labels["severity"] == "warning" && len(alerts) == len(names.Alerts)-1
			}},
		{"every self alert off: no empty group", "disabled: {BreakwaterDown: true, BreakwaterProbeDetached: true, BreakwaterEventsLost: true, BreakwaterCollectorFailed: true, BreakwaterPushFailing: true, BreakwaterStateFileProblem: true}\n", "",
			func(c Config) bool {
				gs := Groups(c)
				return len(gs) == 3 && gs[2].Name == "breakwater.security"
			}},
		{"severity per result", "escapeAttempt:\n  severity: {blocked: info}\n", "cannot unmarshal object", nil},
		{"switch a shipped exclusion on, drop one, add one", "exclusions:\n  csiNodePlugins: {enabled: true}\n  chrootDaemons: null\n  ci: {namespace: ci}\n", "",
			func(c Config) bool {
				csi := c.Exclusions["csiNodePlugins"]
				_, chroot := c.Exclusions["chrootDaemons"]
				return csi.On() && csi.Namespace == "kube-system" && csi.Technique == "mount" && !chroot &&
					c.Exclusions["ci"].On() && !c.Exclusions["ebpfAgents"].On() && len(c.Exclusions) == 4
			}},
		{"lists replace", "targetLabels: [instance]\n", "", func(c Config) bool { return slices.Equal(c.TargetLabels, []string{"instance"}) }},
		{"empty exclusion", "exclusions:\n  all: {}\n", "exclusions.all: sets no pattern", nil},
		{"bad exclusion pattern", "exclusions:\n  x: {pod: \"(\"}\n", "exclusions.x.pod", nil},
		{"exclusion technique typo", "exclusions:\n  x: {technique: mnt}\n", "matches no technique", nil},
		{"bad cluster label", "clusterLabel: a-b\n", "not a label name", nil},
		{"not a mapping", "- a\n", "want a mapping", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yml")
			if err := os.WriteFile(f, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Load(f)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Load error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("Load gave %+v", c)
			}
		})
	}
}

// TestExclusionMatches is the Go side of the exclusion PromQL, which the
// tuned promtool tests pin: anchored patterns, all must match, an absent
// label is empty, technique entries only for escapes, off entries nowhere.
func TestExclusionMatches(t *testing.T) {
	on, off := true, false
	csi := map[string]string{"namespace": "kube-system", "pod": "ebs-csi-node-x", "image": "ebs-csi:1", "technique": "mount"}
	for _, tc := range []struct {
		name   string
		e      Exclusion
		labels map[string]string
		want   bool
	}{
		{"all patterns match", Exclusion{Namespace: "kube-system", Pod: ".*csi.*", Technique: "mount"}, csi, true},
		{"anchored", Exclusion{Namespace: "kube"}, csi, false},
		{"one differs", Exclusion{Namespace: "kube-system", Technique: "ptrace"}, csi, false},
		{"alternatives", Exclusion{Technique: "ptrace|mount"}, csi, true},
		{"off", Exclusion{Enabled: &off, Namespace: "kube-system"}, csi, false},
		{"on", Exclusion{Enabled: &on, Namespace: "kube-system"}, csi, true},
		{"absent label is empty", Exclusion{Pod: ".*"}, map[string]string{"name": "web"}, true},
		{"absent label does not match a value", Exclusion{Namespace: "default"}, map[string]string{"name": "web"}, false},
		{"technique entry leaves other alerts alone", Exclusion{Namespace: "kube-system", Technique: "mount"}, map[string]string{"namespace": "kube-system"}, false},
		{"plain entry applies to other alerts", Exclusion{Namespace: "kube-system"}, map[string]string{"namespace": "kube-system"}, true},
	} {
		if got := tc.e.Matches(tc.labels); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
	for name, e := range KnownWorkloads() {
		if e.On() {
			t.Errorf("shipped exclusion %s is on: they are opt-in", name)
		}
	}
}

// variants are the directories under rules/tests with a config.yml: each is
// a configuration and promtool tests of the pack generated from it.
func variants(t *testing.T) []string {
	t.Helper()
	cfgs, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "rules", "tests", "*", "config.yml"))
	if err != nil || len(cfgs) == 0 {
		t.Fatalf("no rules/tests/*/config.yml: %v", err)
	}
	return cfgs
}

// TestPromtoolTestVariants generates the pack from each variant's
// configuration, as `go run ./rules/generate -config` does, and runs the
// variant's promtool tests on it.
func TestPromtoolTestVariants(t *testing.T) {
	for _, cfgFile := range variants(t) {
		dir := filepath.Dir(cfgFile)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			c, err := Load(cfgFile)
			if err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			if err := Write(c, filepath.Join(tmp, "breakwater.rules.yml"), filepath.Join(tmp, "prometheusrule.yaml")); err != nil {
				t.Fatal(err)
			}
			// Rule files of other packs evaluated next to this one.
			others, _ := filepath.Glob(filepath.Join(dir, "*.rules.yml"))
			testenv.CopyInto(t, tmp, others)
			args := append([]string{"test", "rules"}, testenv.CopyInto(t, tmp, testFiles(t, dir))...)
			if out, err := promtool(t, args...); err != nil {
				t.Fatalf("promtool test rules: %v\n%s", err, out)
			}
		})
	}
}

// TestKubePrometheusStackPagesWithoutPreset runs the page count of the
// kubePrometheusStack preset on the default pack: there breakwater's
// overlapping alerts fire next to kube-prometheus-stack's, so the count
// fails, naming them. It shows the scenario reaches every alert the preset
// turns off.
func TestKubePrometheusStackPagesWithoutPreset(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "rules", "tests", "kube-prometheus-stack")
	tmp := t.TempDir()
	if err := Write(Default(), filepath.Join(tmp, "breakwater.rules.yml"), filepath.Join(tmp, "prometheusrule.yaml")); err != nil {
		t.Fatal(err)
	}
	others, _ := filepath.Glob(filepath.Join(dir, "*.rules.yml"))
	testenv.CopyInto(t, tmp, others)
	out, err := promtool(t, append([]string{"test", "rules"}, testenv.CopyInto(t, tmp, []string{filepath.Join(dir, "pages.test.yml")})...)...)
	if err == nil {
		t.Fatalf("the page count passes without the preset:\n%s", out)
	}
	for _, a := range []string{names.AlertCrashLooping, names.AlertRestartingOften, names.AlertCPUThrottled, names.AlertBreakwaterDown} {
		if !strings.Contains(out, `alertname="`+a+`"`) {
			t.Errorf("without the preset %s does not fire in the scenario:\n%s", a, out)
		}
	}
}

// TestRecordingRuleNames: the pack records exactly names.Records, the names
// the dashboards read.
func TestRecordingRuleNames(t *testing.T) {
	var got []string
	for _, g := range Groups(Default()) {
		for _, r := range g.Rules {
			if r.Record != "" {
				got = append(got, r.Record)
			}
		}
	}
	if !slices.Equal(got, names.Records) {
		t.Errorf("recording rules %v, names.Records %v", got, names.Records)
	}
}
