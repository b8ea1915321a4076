// Package rules is the single source of breakwater's alert pack: one Config
// (selectors, thresholds, windows, severities, exclusions, runbook and
// dashboard URLs) feeds the recording rules and alerts. The generator
// renders them as a plain Prometheus rule file, as a monitoring.coreos.com/v1
// PrometheusRule, and as a Helm template that renders the same rules from
// the chart's values; the Alertmanager push reads the same Config.
package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"github.com/breakwater/breakwater/internal/names"
)

// Config is everything a user may tune. Field names are the keys of the
// YAML/JSON override file the generator reads (`-config`), of the Helm
// chart's `rules` values and of the exporter's --alertmanager.rules-config;
// keys left out keep their defaults.
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
	// ClusterLabel is kept by every aggregation, so that rules evaluated
	// over several clusters (Thanos, Mimir, federation) keep them apart;
	// where series have no such label it costs nothing. Empty turns it off.
	ClusterLabel string `json:"clusterLabel"`
	// RunbookURL is the base that alert names are appended to (+ ".md").
	RunbookURL string `json:"runbookURL"`
	// GrafanaURL is where the dashboards are; every alert links the
	// dashboard of its concern, with its labels as variables (dashboard_url).
	GrafanaURL string `json:"grafanaURL"`

	// RateWindow is the rate() window of the recording rules. Their names
	// keep "rate5m" so that dashboards work whatever it is set to.
	RateWindow model.Duration `json:"rateWindow"`
	// BaselineWindow is how far back a container's own average reaches
	// (the "avg_1h" recording rules keep their names whatever it is).
	BaselineWindow model.Duration `json:"baselineWindow"`
	// BaselineMinAge is how long a container must have been seen before it
	// has a baseline: younger containers never fire the baseline alerts.
	BaselineMinAge model.Duration `json:"baselineMinAge"`
	// CounterHistory is how long a counter series must have been absent
	// before a window for it to count as new, its whole value an increase.
	// A series seen within this before the window is old: only what it
	// rose within the window counts, so a stale marker, a scrape gap or a
	// collector failure never replays old counts.
	CounterHistory model.Duration `json:"counterHistory"`

	// Exclusions are known workloads the security alerts leave alone, by
	// name. The same entries filter the Alertmanager push.
	Exclusions map[string]Exclusion `json:"exclusions"`

	// Disabled switches alerts off by name (ContainerCPUThrottled: true):
	// they leave the rule file, the PrometheusRule and the chart, and the
	// push does not send them. kube-prometheus-stack's defaultRules.disabled
	// has the same shape.
	Disabled map[string]bool `json:"disabled"`
	// AdditionalRuleLabels and AdditionalRuleAnnotations are added to every
	// alert (and to the pushed ones), as kube-prometheus-stack's
	// defaultRules.additionalRuleLabels/-Annotations are. What the pack sets
	// itself (severity, summary, description, runbook_url, dashboard_url)
	// has its own settings and cannot be set here.
	AdditionalRuleLabels      map[string]string `json:"additionalRuleLabels"`
	AdditionalRuleAnnotations map[string]string `json:"additionalRuleAnnotations"`

	MemoryNearLimit        MemoryNearLimit        `json:"memoryNearLimit"`
	CPUSpike               CPUSpike               `json:"cpuSpike"`
	CPUThrottled           CPUThrottled           `json:"cpuThrottled"`
	RestartingOften        RestartingOften        `json:"restartingOften"`
	CrashLooping           Windowed               `json:"crashLooping"`
	OOMKilled              Counter                `json:"oomKilled"`
	EscapeAttempt          Counter                `json:"escapeAttempt"`
	EscapeSucceeded        Counter                `json:"escapeSucceeded"`
	NovelSyscall           Counter                `json:"novelSyscall"`
	SyscallsDeniedBurst    SyscallsDeniedBurst    `json:"syscallsDeniedBurst"`
	PrivilegedCapabilities PrivilegedCapabilities `json:"privilegedCapabilities"`
	Down                   Down                   `json:"breakwaterDown"`
	ProbeDetached          Self                   `json:"probeDetached"`
	EventsLost             Windowed               `json:"eventsLost"`
	CollectorFailed        Self                   `json:"collectorFailed"`
	PushFailing            Windowed               `json:"pushFailing"`
	StateFileProblem       Self                   `json:"stateFileProblem"`

	PrometheusRule PrometheusRuleMeta `json:"prometheusRule"`
}

// Exclusion names a known workload. Every pattern set must match (a regular
// expression, anchored like PromQL's =~) for an alert to be left out; a
// label the container does not have is the empty string. An entry with a
// technique only applies to the escape alerts, one without to every
// security alert (escape attempts, novel syscalls, denied-syscall bursts,
// dangerous capabilities).
type Exclusion struct {
	// Enabled false keeps the entry but applies it nowhere; unset is true.
	// The shipped entries are off: switching one on is a decision.
	Enabled   *bool  `json:"enabled,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Image     string `json:"image,omitempty"`
	Name      string `json:"name,omitempty"`      // runtime container name
	Container string `json:"container,omitempty"` // Kubernetes container name
	Technique string `json:"technique,omitempty"`
}

// On reports whether the entry applies.
func (e Exclusion) On() bool { return e.Enabled == nil || *e.Enabled }

// patterns are the entry's label patterns, by label name.
func (e Exclusion) patterns() map[string]string {
	p := map[string]string{}
	for l, v := range map[string]string{
		names.LabelNamespace: e.Namespace, names.LabelPod: e.Pod, names.LabelImage: e.Image,
		names.LabelName: e.Name, names.LabelContainer: e.Container, names.LabelTechnique: e.Technique,
	} {
		if v != "" {
			p[l] = v
		}
	}
	return p
}

// Matches reports whether the entry, if on, excludes a container with the
// given labels (technique included for escape attempts; absent elsewhere).
// It is the Go twin of the PromQL the rules use.
func (e Exclusion) Matches(labels map[string]string) bool {
	if !e.On() {
		return false
	}
	pats := e.patterns()
	if _, ok := labels[names.LabelTechnique]; !ok && pats[names.LabelTechnique] != "" {
		return false // a technique entry leaves the other alerts alone
	}
	for l, p := range pats {
		re, err := anchored(p)
		if err != nil || !re.MatchString(labels[l]) {
			return false
		}
	}
	return true
}

// The labels and annotations every alert sets itself.
var (
	ownLabels      = []string{names.LabelAlertname, names.LabelSeverity}
	ownAnnotations = []string{names.AnnotationSummary, names.AnnotationDescription, names.AnnotationRunbookURL, names.AnnotationDashboardURL}
)

// Enabled reports whether the alert is switched on.
func (c Config) Enabled(alert string) bool { return !c.Disabled[alert] }

// anchored compiles a pattern as PromQL's =~ does: fully anchored RE2.
func anchored(p string) (*regexp.Regexp, error) { return regexp.Compile("^(?:" + p + ")$") }

// Alert holds what most alerts have.
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

// CPUThrottled fires when more than Ratio of a container's CFS periods
// were throttled.
type CPUThrottled struct {
	Alert `json:",inline"`
	Ratio float64 `json:"ratio"`
}

// RestartingOften fires when a container restarted more than Restarts
// times within Window.
type RestartingOften struct {
	Alert    `json:",inline"`
	Restarts int            `json:"restarts"`
	Window   model.Duration `json:"window"`
}

// Windowed alerts fire on what a counter did within Window, held for For.
type Windowed struct {
	Alert  `json:",inline"`
	Window model.Duration `json:"window"`
}

// Counter alerts fire on the first evaluation that sees the counter rise
// and resolve once it has not risen for Window. They have no `for`.
type Counter struct {
	Severity string         `json:"severity"`
	Window   model.Duration `json:"window"`
}

// SyscallsDeniedBurst fires when syscalls refused by seccomp run above
// Factor times the container's baseline and above MinRate per second.
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

// Down is BreakwaterDown: a target that is down, or no target at all.
type Down struct {
	Alert `json:",inline"`
	// OnlyAbsent keeps the "no target at all" half only, for a Prometheus
	// whose TargetDown (kube-prometheus-stack) already pages for a target
	// that is down; TargetDown never sees a job without targets.
	OnlyAbsent bool `json:"onlyAbsent"`
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

func off() *bool { return new(bool) }

// KnownWorkloads are the shipped exclusions, all off. Each names workloads
// that do by design what the escape alerts look for. Patterns on pod and
// image names are chosen by whoever deploys a pod: switch an entry on only
// where that is trusted (a namespace only admins deploy to).
func KnownWorkloads() map[string]Exclusion {
	return map[string]Exclusion{
		// CSI node plugins mount volumes for the kubelet.
		"csiNodePlugins": {Enabled: off(), Namespace: "kube-system", Pod: ".*csi.*", Technique: names.TechniqueMount},
		// eBPF networking and security agents load programs, open perf
		// events and mount bpffs and cgroup2.
		"ebpfAgents": {Enabled: off(), Namespace: "kube-system", Pod: "(cilium|tetragon|falco|retina|calico-node|anetd)-.*",
			Technique: names.TechniqueKernelInterface + "|" + names.TechniqueMount},
		// sshd and postfix chroot into their privilege-separation directories.
		"chrootDaemons": {Enabled: off(), Image: ".*(sshd|openssh|postfix).*", Technique: names.TechniqueChroot},
		// Rootless image builders create user and mount namespaces.
		"imageBuilders": {Enabled: off(), Image: ".*(buildkit|kaniko|buildah).*",
			Technique: names.TechniqueNamespace + "|" + names.TechniqueMount + "|" + names.TechniqueChroot},
	}
}

// Default is the configuration the committed files are generated from.
func Default() Config {
	return Config{
		Selector:                 `job="breakwater"`,
		ContainerSelector:        `container_id!="", container!="POD"`,
		CgroupSelector:           "id=~`.*[0-9a-f]{64}(\\.scope)?`",
		KubeStateMetricsSelector: `job="kube-state-metrics"`,
		TargetLabels:             []string{names.LabelJob, names.LabelInstance},
		ClusterLabel:             names.LabelCluster,
		RunbookURL:               "https://github.com/breakwater/breakwater/blob/main/docs/runbooks/",
		// The compose stack's Grafana (deploy/compose).
		GrafanaURL:                "http://127.0.0.1:3000",
		RateWindow:                dur("5m"),
		BaselineWindow:            dur("1h"),
		BaselineMinAge:            dur("30m"),
		CounterHistory:            dur("1h"),
		Exclusions:                KnownWorkloads(),
		Disabled:                  map[string]bool{},
		AdditionalRuleLabels:      map[string]string{},
		AdditionalRuleAnnotations: map[string]string{},
		MemoryNearLimit:           MemoryNearLimit{Alert: Alert{Severity: names.SeverityWarning, For: dur("2m")}, Ratio: 0.9},
		CPUSpike:                  CPUSpike{Alert: Alert{Severity: names.SeverityWarning, For: dur("5m")}, Factor: 2, MinCores: 0.1},
		CPUThrottled:              CPUThrottled{Alert: Alert{Severity: names.SeverityWarning, For: dur("15m")}, Ratio: 0.25},
		RestartingOften:           RestartingOften{Alert: Alert{Severity: names.SeverityWarning}, Restarts: 5, Window: dur("10m")},
		CrashLooping:              Windowed{Alert: Alert{Severity: names.SeverityWarning, For: dur("15m")}, Window: dur("10m")},
		OOMKilled:                 Counter{Severity: names.SeverityWarning, Window: dur("10m")},
		EscapeAttempt:             Counter{Severity: names.SeverityWarning, Window: dur("5m")},
		EscapeSucceeded:           Counter{Severity: names.SeverityCritical, Window: dur("5m")},
		NovelSyscall:              Counter{Severity: names.SeverityWarning, Window: dur("10m")},
		SyscallsDeniedBurst:       SyscallsDeniedBurst{Alert: Alert{Severity: names.SeverityWarning, For: dur("2m")}, Factor: 3, MinRate: 1},
		PrivilegedCapabilities:    PrivilegedCapabilities{Alert: Alert{Severity: names.SeverityInfo}},
		Down:                      Down{Alert: Alert{Severity: names.SeverityWarning, For: dur("5m")}},
		ProbeDetached:             Self{Alert: Alert{Severity: names.SeverityWarning, For: dur("2m")}},
		EventsLost:                Windowed{Alert: Alert{Severity: names.SeverityWarning}, Window: dur("10m")},
		CollectorFailed:           Self{Alert: Alert{Severity: names.SeverityWarning, For: dur("5m")}},
		PushFailing:               Windowed{Alert: Alert{Severity: names.SeverityWarning, For: dur("5m")}, Window: dur("10m")},
		StateFileProblem:          Self{Alert: Alert{Severity: names.SeverityWarning, For: dur("5m")}},
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

// Load returns Default overridden by the YAML or JSON file at path, merged
// the way Helm merges values: maps merge key by key, anything else (lists
// included) replaces, and null removes a default (an exclusion, say).
// Unknown keys are an error, so a typo does not silently keep a default.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Default(), err
	}
	c, err := Parse(b)
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse is Load of the file's content.
func Parse(b []byte) (Config, error) {
	var override any
	if err := yaml.Unmarshal(b, &override); err != nil {
		return Default(), err
	}
	merged, err := toMap(Default())
	if err != nil {
		return Default(), err
	}
	switch o := override.(type) {
	case nil:
	case map[string]any:
		merge(merged, o)
	default:
		return Default(), fmt.Errorf("want a mapping of settings, got %T", override)
	}
	j, err := json.Marshal(merged)
	if err != nil {
		return Default(), err
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Default(), err
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// toMap is c as the generic map its YAML/JSON form decodes to, the shape the
// rule templates and Helm see.
func toMap(c Config) (map[string]any, error) {
	j, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(j, &m)
}

// merge overlays src onto dst as Helm coalesces values.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// Validate rejects settings that would produce rules that never or always
// fire, or that do not parse.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	check(strings.TrimSpace(c.Selector) != "", "selector must not be empty")
	check(c.RunbookURL != "", "runbookURL must not be empty")
	for _, l := range append(slices.Clone(c.TargetLabels), c.ClusterLabel) {
		check(l == "" || model.LegacyValidation.IsValidLabelName(l), "%q is not a label name", l)
	}
	check(c.RateWindow >= model.Duration(time.Second), "rateWindow must be at least 1s")
	check(c.BaselineWindow > c.RateWindow, "baselineWindow must be longer than rateWindow")
	check(c.BaselineMinAge > 0, "baselineMinAge must be positive")
	check(c.CounterHistory > 0, "counterHistory must be positive")
	check(c.MemoryNearLimit.Ratio > 0 && c.MemoryNearLimit.Ratio <= 1, "memoryNearLimit.ratio must be in (0, 1]")
	check(c.CPUSpike.Factor > 1, "cpuSpike.factor must be above 1")
	check(c.CPUSpike.MinCores >= 0, "cpuSpike.minCores must not be negative")
	check(c.CPUThrottled.Ratio > 0 && c.CPUThrottled.Ratio <= 1, "cpuThrottled.ratio must be in (0, 1]")
	check(c.RestartingOften.Restarts >= 0, "restartingOften.restarts must not be negative")
	check(c.SyscallsDeniedBurst.Factor > 1, "syscallsDeniedBurst.factor must be above 1")
	check(c.SyscallsDeniedBurst.MinRate >= 0, "syscallsDeniedBurst.minRate must not be negative")
	check(c.PrometheusRule.Name != "", "prometheusRule.name must not be empty")
	for _, w := range []struct {
		key string
		w   model.Duration
	}{
		{"restartingOften", c.RestartingOften.Window}, {"crashLooping", c.CrashLooping.Window}, {"oomKilled", c.OOMKilled.Window},
		{"escapeAttempt", c.EscapeAttempt.Window}, {"escapeSucceeded", c.EscapeSucceeded.Window}, {"novelSyscall", c.NovelSyscall.Window},
		{"eventsLost", c.EventsLost.Window}, {"pushFailing", c.PushFailing.Window},
	} {
		check(w.w > 0, "%s.window must be positive", w.key)
	}
	for _, s := range []struct{ key, severity string }{
		{"memoryNearLimit", c.MemoryNearLimit.Severity}, {"cpuSpike", c.CPUSpike.Severity}, {"cpuThrottled", c.CPUThrottled.Severity},
		{"restartingOften", c.RestartingOften.Severity}, {"crashLooping", c.CrashLooping.Severity}, {"oomKilled", c.OOMKilled.Severity},
		{"escapeAttempt", c.EscapeAttempt.Severity},
		{"escapeSucceeded", c.EscapeSucceeded.Severity}, {"novelSyscall", c.NovelSyscall.Severity},
		{"syscallsDeniedBurst", c.SyscallsDeniedBurst.Severity}, {"privilegedCapabilities", c.PrivilegedCapabilities.Severity},
		{"breakwaterDown", c.Down.Severity}, {"probeDetached", c.ProbeDetached.Severity}, {"eventsLost", c.EventsLost.Severity},
		{"collectorFailed", c.CollectorFailed.Severity}, {"pushFailing", c.PushFailing.Severity},
		{"stateFileProblem", c.StateFileProblem.Severity},
	} {
		check(s.severity != "", "%s.severity must not be empty", s.key)
	}
	for _, name := range sortedKeys(c.Disabled) {
		check(slices.Contains(names.Alerts, name), "disabled.%s: no such alert (%s)", name, strings.Join(names.Alerts, ", "))
	}
	for _, l := range sortedKeys(c.AdditionalRuleLabels) {
		check(model.LegacyValidation.IsValidLabelName(l), "additionalRuleLabels: %q is not a label name", l)
		check(!slices.Contains(ownLabels, l), "additionalRuleLabels.%s: set by the pack itself (each alert has its severity setting)", l)
	}
	for _, a := range sortedKeys(c.AdditionalRuleAnnotations) {
		check(model.LegacyValidation.IsValidLabelName(a), "additionalRuleAnnotations: %q is not an annotation name", a)
		check(!slices.Contains(ownAnnotations, a), "additionalRuleAnnotations.%s: set by the pack itself (see runbookURL, grafanaURL)", a)
	}
	for _, name := range sortedKeys(c.Exclusions) {
		e := c.Exclusions[name]
		pats := e.patterns()
		check(len(pats) > 0, "exclusions.%s: sets no pattern, so it would exclude everything", name)
		for l, p := range pats {
			_, err := anchored(p)
			check(err == nil, "exclusions.%s.%s: %v", name, l, err)
		}
		if t := pats[names.LabelTechnique]; t != "" {
			if re, err := anchored(t); err == nil {
				check(slices.ContainsFunc(names.Techniques, re.MatchString), "exclusions.%s.technique %q matches no technique (%s)",
					name, t, strings.Join(names.Techniques, ", "))
			}
		}
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
