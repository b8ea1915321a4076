// Package rules is the single source of breakwater's alert pack: one Config
// (selectors, thresholds, windows, severities, runbook URL) feeds the
// recording rules and alerts, and the generator renders them as a plain
// Prometheus rule file and as a monitoring.coreos.com/v1 PrometheusRule.
package rules

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

// Config is everything a user may tune. Field names are the keys of the
// YAML/JSON override file the generator reads (`-config`); keys left out
// keep their defaults.
type Config struct {
	// Selector picks breakwater's own series: security, cAdvisor and self metrics.
	Selector string `json:"selector"`
	// ContainerSelector keeps per-container series only: host processes
	// (counted with --collector.security.host) and Kubernetes pod sandboxes
	// are not containers anyone pages about.
	ContainerSelector string `json:"containerSelector"`
	// CgroupSelector keeps cAdvisor series of container cgroups only: the
	// cgroup path (id) must end in a 64-hex runtime id, which rules out the
	// root, system slices, pod-level cgroups and cgroups nested inside a
	// container (which would count the same usage twice).
	CgroupSelector string `json:"cgroupSelector"`
	// KubeStateMetricsSelector picks kube-state-metrics, the second source of
	// restart counts. Where it is not scraped that part of the rule is empty.
	KubeStateMetricsSelector string `json:"kubeStateMetricsSelector"`
	// TargetLabels are the scrape target labels kept next to the identity
	// labels. Every other label (service, endpoint, relabelled extras) is
	// aggregated away, so one container is one series even when a target is
	// scraped through two discovery paths.
	TargetLabels []string `json:"targetLabels"`
	// RunbookURL is the base that alert names are appended to (+ ".md").
	RunbookURL string `json:"runbookURL"`

	// RateWindow is the rate() window of the recording rules. Their names
	// keep "rate5m" so that dashboards work whatever it is set to.
	RateWindow model.Duration `json:"rateWindow"`
	// BaselineWindow is how far back a container's own average reaches
	// (the "avg_1h" recording rules keep their names whatever it is).
	BaselineWindow model.Duration `json:"baselineWindow"`
	// BaselineMinAge is how long a container must have been seen before it
	// has a baseline: younger containers never fire the baseline alerts.
	BaselineMinAge model.Duration `json:"baselineMinAge"`

	MemoryNearLimit        MemoryNearLimit        `json:"memoryNearLimit"`
	CPUSpike               CPUSpike               `json:"cpuSpike"`
	RestartingOften        RestartingOften        `json:"restartingOften"`
	EscapeAttempt          Escape                 `json:"escapeAttempt"`
	EscapeSucceeded        Escape                 `json:"escapeSucceeded"`
	SyscallsDeniedBurst    SyscallsDeniedBurst    `json:"syscallsDeniedBurst"`
	PrivilegedCapabilities PrivilegedCapabilities `json:"privilegedCapabilities"`
	Down                   Self                   `json:"breakwaterDown"`
	ProbeDetached          Self                   `json:"probeDetached"`
	EventsLost             EventsLost             `json:"eventsLost"`

	PrometheusRule PrometheusRuleMeta `json:"prometheusRule"`
}

// Alert holds what every alert has.
type Alert struct {
	Severity string         `json:"severity"`
	For      model.Duration `json:"for"`
}

// MemoryNearLimit fires when working set / limit stays above Ratio.
type MemoryNearLimit struct {
	Alert `json:",inline"`
	Ratio float64 `json:"ratio"`
}

// CPUSpike fires when a container's CPU rate is above Factor times its own
// baseline and above MinCores.
type CPUSpike struct {
	Alert    `json:",inline"`
	Factor   float64 `json:"factor"`
	MinCores float64 `json:"minCores"`
}

// RestartingOften fires when a container restarted more than Restarts
// times within Window.
type RestartingOften struct {
	Alert    `json:",inline"`
	Restarts int            `json:"restarts"`
	Window   model.Duration `json:"window"`
}

// Escape alerts fire on the first evaluation that sees the counter rise and
// resolve once it has not risen for Window. They have no `for`: the same
// alert is pushed to Alertmanager the moment it happens.
type Escape struct {
	Severity string         `json:"severity"`
	Window   model.Duration `json:"window"`
}

// SyscallsDeniedBurst fires when denied syscalls run above Factor times the
// container's baseline and above MinRate per second.
type SyscallsDeniedBurst struct {
	Alert   `json:",inline"`
	Factor  float64 `json:"factor"`
	MinRate float64 `json:"minRate"`
}

// PrivilegedCapabilities fires while a container holds a dangerous capability.
type PrivilegedCapabilities struct {
	Alert `json:",inline"`
}

// Self is an alert about the exporter itself.
type Self struct {
	Alert `json:",inline"`
}

// EventsLost fires when the BPF side dropped events within Window.
type EventsLost struct {
	Alert  `json:",inline"`
	Window model.Duration `json:"window"`
}

// PrometheusRuleMeta is the metadata of the generated PrometheusRule.
type PrometheusRuleMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

func dur(s string) model.Duration {
	d, err := model.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

// Default is the configuration the committed files are generated from.
func Default() Config {
	return Config{
		Selector:                 `job="breakwater"`,
		ContainerSelector:        `container_id!="", container!="POD"`,
		CgroupSelector:           "id=~`.*[0-9a-f]{64}(\\.scope)?`",
		KubeStateMetricsSelector: `job="kube-state-metrics"`,
		TargetLabels:             []string{"job", "instance"},
		RunbookURL:               "https://github.com/breakwater/breakwater/blob/main/docs/runbooks/",
		RateWindow:               dur("5m"),
		BaselineWindow:           dur("1h"),
		BaselineMinAge:           dur("30m"),
		MemoryNearLimit:          MemoryNearLimit{Alert: Alert{Severity: "warning", For: dur("2m")}, Ratio: 0.9},
		CPUSpike:                 CPUSpike{Alert: Alert{Severity: "warning", For: dur("5m")}, Factor: 2, MinCores: 0.1},
		RestartingOften:          RestartingOften{Alert: Alert{Severity: "warning"}, Restarts: 5, Window: dur("10m")},
		EscapeAttempt:            Escape{Severity: "critical", Window: dur("5m")},
		EscapeSucceeded:          Escape{Severity: "critical", Window: dur("5m")},
		SyscallsDeniedBurst:      SyscallsDeniedBurst{Alert: Alert{Severity: "warning", For: dur("2m")}, Factor: 3, MinRate: 1},
		PrivilegedCapabilities:   PrivilegedCapabilities{Alert: Alert{Severity: "info"}},
		Down:                     Self{Alert: Alert{Severity: "warning", For: dur("5m")}},
		ProbeDetached:            Self{Alert: Alert{Severity: "warning", For: dur("2m")}},
		EventsLost:               EventsLost{Alert: Alert{Severity: "warning"}, Window: dur("10m")},
		PrometheusRule: PrometheusRuleMeta{
			Name: "breakwater",
			Labels: map[string]string{
				"app.kubernetes.io/name":      "breakwater",
				"app.kubernetes.io/component": "alert-rules",
				"app.kubernetes.io/part-of":   "breakwater",
			},
		},
	}
}

// Load returns Default overridden by the YAML or JSON file at path.
// Unknown keys are an error, so a typo does not silently keep a default.
func Load(path string) (Config, error) {
	cfg := Default()
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Validate rejects settings that would produce rules that never or always fire.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	check(strings.TrimSpace(c.Selector) != "", "selector must not be empty")
	check(c.RunbookURL != "", "runbookURL must not be empty")
	check(c.RateWindow >= model.Duration(time.Second), "rateWindow must be at least 1s")
	check(c.BaselineWindow > c.RateWindow, "baselineWindow must be longer than rateWindow")
	check(c.BaselineMinAge > 0, "baselineMinAge must be positive")
	check(c.MemoryNearLimit.Ratio > 0 && c.MemoryNearLimit.Ratio <= 1, "memoryNearLimit.ratio must be in (0, 1]")
	check(c.CPUSpike.Factor > 1, "cpuSpike.factor must be above 1")
	check(c.CPUSpike.MinCores >= 0, "cpuSpike.minCores must not be negative")
	check(c.RestartingOften.Restarts >= 0, "restartingOften.restarts must not be negative")
	check(c.RestartingOften.Window > 0, "restartingOften.window must be positive")
	check(c.EscapeAttempt.Window > 0, "escapeAttempt.window must be positive")
	check(c.EscapeSucceeded.Window > 0, "escapeSucceeded.window must be positive")
	check(c.SyscallsDeniedBurst.Factor > 1, "syscallsDeniedBurst.factor must be above 1")
	check(c.SyscallsDeniedBurst.MinRate >= 0, "syscallsDeniedBurst.minRate must not be negative")
	check(c.EventsLost.Window > 0, "eventsLost.window must be positive")
	check(c.PrometheusRule.Name != "", "prometheusRule.name must not be empty")
	for _, s := range []struct{ key, severity string }{
		{"memoryNearLimit", c.MemoryNearLimit.Severity}, {"cpuSpike", c.CPUSpike.Severity},
		{"restartingOften", c.RestartingOften.Severity}, {"escapeAttempt", c.EscapeAttempt.Severity},
		{"escapeSucceeded", c.EscapeSucceeded.Severity}, {"syscallsDeniedBurst", c.SyscallsDeniedBurst.Severity},
		{"privilegedCapabilities", c.PrivilegedCapabilities.Severity}, {"breakwaterDown", c.Down.Severity},
		{"probeDetached", c.ProbeDetached.Severity}, {"eventsLost", c.EventsLost.Severity},
	} {
		check(s.severity != "", "%s.severity must not be empty", s.key)
	}
	return errors.Join(errs...)
}
