package rules

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzLoad feeds arbitrary bytes to the -config loader: it never panics,
// what it accepts is valid, and what is valid renders.
func FuzzLoad(f *testing.F) {
	def, err := yaml.Marshal(Default())
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(def),
		"selector: 'job=\"node\"'\n",
		"memoryNearLimit: {ratio: 0.8, for: 5m}\n",
		"restartingOften: {restarts: 3, window: 15m}\n",
		"targetLabels: [job, instance, cluster]\nprometheusRule: {name: x, labels: {a: b}}\n",
		"rateWindow: 0s\n",
		"rateWindow: 1y\nbaselineWindow: 2y\n",
		"{\"cpuSpike\": {\"factor\": 1.5}}",
		"disabled: {ContainerCPUSpike: true, BreakwaterDown: false}\nadditionalRuleLabels: {team: a}\nadditionalRuleAnnotations: {chat: '#x'}\n",
		"breakwaterDown: {onlyAbsent: true}\nescapeAttempt: {severity: info}\n",
		"unknownKey: 1\n",
		"memoryNearLimit: {ratio: .nan}\n",
		"- a\n- b\n",
		"selector: &a [*a]\n",
		"", "~", "{", "\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load accepted a config that Validate rejects: %v", err)
		}
		if _, err := RuleFile(c); err != nil {
			t.Fatalf("RuleFile of a loaded config: %v", err)
		}
		if _, err := PrometheusRule(c); err != nil {
			t.Fatalf("PrometheusRule of a loaded config: %v", err)
		}
	})
}
