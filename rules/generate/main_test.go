package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/testenv"
	"github.com/breakwater/breakwater/rules"
)

// e2eConfig is the kind of override the end-to-end test uses: its own job
// and windows short enough for a run of minutes.
const e2eConfig = `
selector: job="bw-e2e"
rateWindow: 1m
baselineWindow: 4m
baselineMinAge: 2m
cpuSpike:
  for: 30s
  minCores: 0.05
escapeAttempt:
  window: 1m
`

// e2eTest is a promtool test of the rules generated from e2eConfig: the
// shortened windows really are in the generated expressions.
const e2eTest = `
rule_files: [breakwater.rules.yml]
evaluation_interval: 15s
group_eval_order: [breakwater.container.rules, breakwater.resources, breakwater.security, breakwater.self]
tests:
  - interval: 15s
    input_series:
      - series: 'breakwater_escape_attempts_total{job="bw-e2e", instance="127.0.0.1:9760", container_id="0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", name="bw-e2e-escape", image="busybox", technique="mount", result="blocked"}'
        values: '0x3 1x12'
      # Idle for 3m, then one core.
      - series: 'container_cpu_usage_seconds_total{job="bw-e2e", instance="127.0.0.1:9760", id="/docker/fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", container_id="fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", name="bw-e2e-cpu", image="busybox", cpu="total"}'
        values: '0+0.015x11 15+15x12'
    promql_expr_test:
      # Fires on the evaluation that sees the attempt, resolves 1m later.
      - expr: ALERTS{alertname="ContainerEscapeAttempt", alertstate="firing"}
        eval_time: 1m
        exp_samples:
          - labels: 'ALERTS{alertname="ContainerEscapeAttempt", alertstate="firing", severity="warning", job="bw-e2e", instance="127.0.0.1:9760", container_id="0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", name="bw-e2e-escape", image="busybox", technique="mount", result="blocked"}'
            value: 1
      - expr: ALERTS{alertname="ContainerEscapeAttempt", alertstate="firing"}
        eval_time: 2m
        exp_samples: []
      # The idle container got a baseline after 2m and its spike fires
      # within the first minute of load.
      - expr: ALERTS{alertname="ContainerCPUSpike", alertstate="firing"}
        eval_time: 3m45s
        exp_samples:
          - labels: 'ALERTS{alertname="ContainerCPUSpike", alertstate="firing", severity="warning", job="bw-e2e", instance="127.0.0.1:9760", id="/docker/fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", container_id="fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", name="bw-e2e-cpu", image="busybox"}'
            value: 1
`

func TestOverrideConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "e2e.yml")
	if err := os.WriteFile(cfg, []byte(e2eConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := run([]string{"-config", cfg, "-out", out}, io.Discard); err != nil {
		t.Fatal(err)
	}
	ruleFile := filepath.Join(out, "breakwater.rules.yml")
	b, err := os.ReadFile(ruleFile)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := os.ReadFile(filepath.Join(out, "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`job="bw-e2e"`, "[1m]", "[4m]", "offset 2m", "for: 30s", "> 0.05"} {
		if !bytes.Contains(b, []byte(want)) || !bytes.Contains(pr, []byte(want)) {
			t.Errorf("generated files lack %q", want)
		}
	}
	if bytes.Contains(b, []byte(`job="breakwater"`)) {
		t.Error("the default selector survived the override")
	}

	promtool := testenv.Tool(t, "promtool")
	if out, err := exec.Command(promtool, "check", "rules", ruleFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	testFile := filepath.Join(out, "e2e.test.yml")
	if err := os.WriteFile(testFile, []byte(e2eTest), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", testFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules with the override: %v\n%s", err, out)
	}
}

// TestDefaultPaths runs the generator as `make rules` does, in a scratch
// tree, and gets the committed files.
func TestDefaultPaths(t *testing.T) {
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if err := run(nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{rules.RuleFilePath, rules.PrometheusRulePath} {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the committed file: run make rules", p)
		}
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("memoryNearLimit:\n  ratio: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-config", bad, "-out", dir}, "ratio"},
		{[]string{"-config", filepath.Join(dir, "missing.yml"), "-out", dir}, "no such file"},
		{[]string{"-out", dir, "extra"}, "unexpected arguments"},
		{[]string{"-nope"}, "flag provided but not defined"},
	} {
		err := run(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("run(%q) = %v, want %q", tc.args, err, tc.err)
		}
	}
	t.Chdir(dir)
	if err := run(nil, io.Discard); err == nil || !strings.Contains(err.Error(), "repository root") {
		t.Errorf("run outside the repository = %v", err)
	}
}
