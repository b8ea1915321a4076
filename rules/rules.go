package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"

	"github.com/breakwater/breakwater/internal/names"
)

// AlertNames lists every alert the pack ships, in file order.
var AlertNames = []string{
	names.AlertMemoryNearLimit, names.AlertCPUSpike, names.AlertRestartingOften,
	names.AlertEscapeAttempt, names.AlertEscapeSucceeded, names.AlertSyscallsDeniedBurst, names.AlertPrivilegedCapabilities,
	names.AlertBreakwaterDown, names.AlertProbeDetached, names.AlertEventsLost,
}

// Group is a rule group, in the field names of Prometheus' rule file format
// and of the PrometheusRule spec, which are the same.
type Group struct {
	Name  string `json:"name"`
	Rules []Rule `json:"rules"`
}

// Rule is a recording rule (Record) or an alerting rule (Alert).
type Rule struct {
	Record      string            `json:"record,omitempty"`
	Alert       string            `json:"alert,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// builder holds the label lists and selectors every expression shares.
type builder struct {
	c Config
	// container: target + identity labels; cgroup: those plus cAdvisor's id.
	container, cgroup string
}

func newBuilder(c Config) builder {
	container := append(slices.Clone(c.TargetLabels), names.IdentityLabels...)
	return builder{
		c:         c,
		container: strings.Join(container, ", "),
		cgroup:    strings.Join(append(container, "id"), ", "),
	}
}

// sel joins matchers into a series selector, skipping empty ones.
func sel(metric string, matchers ...string) string {
	var parts []string
	for _, m := range matchers {
		if m = strings.TrimSpace(m); m != "" {
			parts = append(parts, m)
		}
	}
	return metric + "{" + strings.Join(parts, ", ") + "}"
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// indent indents every line of s but the first by n spaces, so that a
// multi-line sub-expression nests inside another.
func indent(s string, n int) string {
	return strings.ReplaceAll(s, "\n", "\n"+strings.Repeat(" ", n))
}

// risen is how much a counter rose within w. A series born within w counts
// from zero: the security counters appear with a container's first event,
// and increase() alone needs two samples, so it would miss that event.
func risen(series string, w model.Duration) string {
	return fmt.Sprintf("(%s unless %s offset %s)\n  or\nincrease(%s[%s])", series, series, w, series, w)
}

// Groups returns the rule groups generated from c: the recording rules
// first, then one group of alerts per concern.
func Groups(c Config) []Group {
	b := newBuilder(c)
	return []Group{
		{Name: "breakwater.container.rules", Rules: b.recordingRules()},
		{Name: "breakwater.resources", Rules: []Rule{b.memoryNearLimit(), b.cpuSpike(), b.restartingOften()}},
		{Name: "breakwater.security", Rules: []Rule{b.escapeAttempt(), b.escapeSucceeded(), b.syscallsDeniedBurst(), b.privilegedCapabilities()}},
		{Name: "breakwater.self", Rules: []Rule{b.breakwaterDown(), b.probeDetached(), b.eventsLost()}},
	}
}

func (b builder) recordingRules() []Rule {
	c := b.c
	cadvisor := func(metric string) string {
		return sel(metric, c.Selector, c.ContainerSelector, c.CgroupSelector)
	}
	return []Rule{
		{
			// Per-CPU series (cAdvisor's percpu set) are summed; the inner max
			// removes duplicates of one series that differ only in labels
			// outside the identity.
			Record: names.RecordCPURate,
			Expr: fmt.Sprintf("sum by (%s) (\n  max by (%s, cpu) (\n    rate(%s[%s])\n  )\n)",
				b.cgroup, b.cgroup, cadvisor(names.MetricCPUUsage), c.RateWindow),
		},
		{
			// Only containers seen BaselineMinAge ago have a baseline.
			Record: names.RecordCPUBaseline,
			Expr: fmt.Sprintf("avg_over_time(%s[%s])\n  and\n%s offset %s",
				names.RecordCPURate, c.BaselineWindow, names.RecordCPURate, c.BaselineMinAge),
		},
		{
			// A limit of 0 is cAdvisor's "no limit" and never divides.
			Record: names.RecordMemoryRatio,
			Expr: fmt.Sprintf("max by (%s) (%s)\n  /\nmax by (%s) (%s > 0)",
				b.cgroup, cadvisor(names.MetricMemoryWorkingSet),
				b.cgroup, cadvisor(names.MetricMemoryLimit)),
		},
		{
			// The denied counters of a container appear with its first denial;
			// a container with a CPU series and no denials is recorded as 0, so
			// the baseline of a long quiet container is 0, not missing.
			Record: names.RecordDeniedRate,
			Expr: fmt.Sprintf("sum by (%s) (\n  max by (%s, syscall, errno) (\n    rate(%s[%s])\n  )\n)\n  or\n0 * group by (%s) (%s)",
				b.container, b.container, sel(names.MetricSyscallsDenied, c.Selector, c.ContainerSelector), c.RateWindow,
				b.container, names.RecordCPURate),
		},
		{
			Record: names.RecordDeniedBaseline,
			Expr: fmt.Sprintf("avg_over_time(%s[%s])\n  and\n%s offset %s",
				names.RecordDeniedRate, c.BaselineWindow, names.RecordDeniedRate, c.BaselineMinAge),
		},
	}
}

// Annotation templates: the container named by what is known of it.
const (
	nameTmpl = `{{ with $labels.name }}{{ . }}{{ else }}{{ $labels.namespace }}/{{ $labels.pod }}/{{ $labels.container }}{{ end }}`
	whoTmpl  = `container {{ with $labels.name }}{{ . }}{{ else }}{{ $labels.container }}{{ end }}` +
		`{{ with $labels.image }} (image {{ . }}){{ end }}` +
		`{{ with $labels.pod }} in pod {{ $labels.namespace }}/{{ . }}{{ end }}` +
		`{{ with $labels.instance }} on {{ . }}{{ end }}`
)

// baselineTmpl renders the baseline recorded for the alert's container.
func baselineTmpl(record string) string {
	return `{{ with printf "` + record + `{container_id=%q}" $labels.container_id | query }}` +
		`{{ . | first | value | printf "%.2f" }}{{ else }}unknown{{ end }}`
}

// alert fills in what every alert has: severity, runbook, and the
// <name>/<who> placeholders of summary and description.
func (b builder) alert(name, expr string, forDur model.Duration, severity, summary, description string) Rule {
	r := strings.NewReplacer("<name>", nameTmpl, "<who>", whoTmpl)
	rule := Rule{
		Alert:  name,
		Expr:   expr,
		Labels: map[string]string{"severity": severity},
		Annotations: map[string]string{
			"summary":     r.Replace(summary),
			"description": r.Replace(description),
			"runbook_url": b.c.RunbookURL + name + ".md",
		},
	}
	if forDur > 0 {
		rule.For = forDur.String()
	}
	return rule
}

func (b builder) memoryNearLimit() Rule {
	a := b.c.MemoryNearLimit
	return b.alert(names.AlertMemoryNearLimit,
		fmt.Sprintf("%s > %s", names.RecordMemoryRatio, num(a.Ratio)),
		a.For, a.Severity,
		`Container <name> is at {{ $value | humanizePercentage }} of its memory limit`,
		fmt.Sprintf(`<who> has been above %s of its memory limit for %s: its working set is {{ $value | humanizePercentage }} of the limit. At the limit the kernel reclaims its page cache and then OOM-kills it.`,
			strconv.FormatFloat(a.Ratio*100, 'g', -1, 64)+"%", a.For))
}

func (b builder) cpuSpike() Rule {
	a := b.c.CPUSpike
	return b.alert(names.AlertCPUSpike,
		fmt.Sprintf("%s > %s\n  and\n%s > %s * %s", names.RecordCPURate, num(a.MinCores), names.RecordCPURate, num(a.Factor), names.RecordCPUBaseline),
		a.For, a.Severity,
		`Container <name> uses {{ printf "%.2f" $value }} CPU cores, far above its usual`,
		fmt.Sprintf(`<who> has used {{ printf "%%.2f" $value }} CPU cores for %s, more than %s times its %s average of %s cores.`,
			a.For, num(a.Factor), b.c.BaselineWindow, baselineTmpl(names.RecordCPUBaseline)))
}

func (b builder) restartingOften() Rule {
	c, a := b.c, b.c.RestartingOften
	bw := sel(names.MetricContainerRestarts, c.Selector, `container!="POD"`)
	by := strings.Join(append(slices.Clone(c.TargetLabels), "name", "image", "namespace", "pod", "container"), ", ")
	expr := fmt.Sprintf("floor(max by (%s) (\n  %s\n)) > %d", by, indent(risen(bw, a.Window), 2), a.Restarts)
	if c.KubeStateMetricsSelector != "" {
		// kube-state-metrics covers Kubernetes nodes breakwater does not run
		// on; where breakwater tracks the container, its own count wins, so
		// one restart loop is one alert.
		ksm := sel(names.MetricKSMContainerRestarts, c.KubeStateMetricsSelector)
		expr += fmt.Sprintf("\n  or\n(\n  floor(max by (namespace, pod, container) (\n    %s\n  )) > %d\n    unless on (namespace, pod, container)\n  %s\n)",
			indent(risen(ksm, a.Window), 4), a.Restarts, sel(names.MetricContainerRestarts, c.Selector, `namespace!=""`))
	}
	return b.alert(names.AlertRestartingOften, expr, a.For, a.Severity,
		fmt.Sprintf(`Container <name> restarted {{ printf "%%.0f" $value }} times in %s`, a.Window),
		fmt.Sprintf(`<who> restarted {{ printf "%%.0f" $value }} times in the last %s (more than %d): it is crash-looping or being killed.`, a.Window, a.Restarts))
}

// EscapeAlertLabels are the labels ContainerEscapeAttempt and
// ContainerEscapeSucceeded carry besides alertname and severity: the target
// labels, the identity and the technique. The Alertmanager push sends the
// same set (labels with empty values are absent in both), so Alertmanager
// sees one alert whichever path arrives first.
func EscapeAlertLabels(c Config) []string {
	return append(append(slices.Clone(c.TargetLabels), names.IdentityLabels...), "technique")
}

// escapeExpr counts the attempts of one container and technique within w,
// over both results.
func (b builder) escapeExpr(result string, w model.Duration) string {
	c := b.c
	s := sel(names.MetricEscapeAttempts, c.Selector, result)
	by := strings.Join(EscapeAlertLabels(c), ", ")
	return fmt.Sprintf("sum by (%s) (\n  max by (%s, result) (\n    %s\n  )\n) > 0",
		by, by, indent(risen(s, w), 4))
}

func (b builder) escapeAttempt() Rule {
	a := b.c.EscapeAttempt
	return b.alert(names.AlertEscapeAttempt, b.escapeExpr("", a.Window), 0, a.Severity,
		`Escape attempt ({{ $labels.technique }}) from container <name>`,
		fmt.Sprintf(`<who> made {{ printf "%%.0f" $value }} {{ $labels.technique }} escape attempt(s) in the last %s. Ordinary workloads never do this.`, a.Window))
}

func (b builder) escapeSucceeded() Rule {
	a := b.c.EscapeSucceeded
	return b.alert(names.AlertEscapeSucceeded, b.escapeExpr(`result="allowed"`, a.Window), 0, a.Severity,
		`A {{ $labels.technique }} escape from container <name> succeeded`,
		fmt.Sprintf(`<who> made {{ printf "%%.0f" $value }} {{ $labels.technique }} escape attempt(s) in the last %s that the kernel allowed. Treat the host as compromised.`, a.Window))
}

func (b builder) syscallsDeniedBurst() Rule {
	a := b.c.SyscallsDeniedBurst
	return b.alert(names.AlertSyscallsDeniedBurst,
		fmt.Sprintf("%s > %s\n  and\n%s > %s * %s", names.RecordDeniedRate, num(a.MinRate), names.RecordDeniedRate, num(a.Factor), names.RecordDeniedBaseline),
		a.For, a.Severity,
		`Container <name> has {{ printf "%.2f" $value }} denied syscalls per second`,
		fmt.Sprintf(`<who> has had {{ printf "%%.2f" $value }} syscalls per second denied (EPERM or EACCES) for %s, more than %s times its %s average of %s per second. It is probing what seccomp, capabilities or an LSM allow, or a policy change broke it.`,
			a.For, num(a.Factor), b.c.BaselineWindow, baselineTmpl(names.RecordDeniedBaseline)))
}

func (b builder) privilegedCapabilities() Rule {
	c, a := b.c, b.c.PrivilegedCapabilities
	return b.alert(names.AlertPrivilegedCapabilities,
		fmt.Sprintf("max by (%s, capability) (%s) == 1", b.container, sel(names.MetricContainerCapabilities, c.Selector, c.ContainerSelector)),
		a.For, a.Severity,
		`Container <name> runs with {{ $labels.capability }}`,
		`<who> executed a process with {{ $labels.capability }} in its effective capability set. That capability opens escape techniques; drop it unless the workload needs it.`)
}

func (b builder) breakwaterDown() Rule {
	c, a := b.c, b.c.Down
	up := sel(names.MetricUp, c.Selector)
	return b.alert(names.AlertBreakwaterDown,
		fmt.Sprintf("%s == 0\n  or\nabsent(%s)", up, up),
		a.For, a.Severity,
		`breakwater {{ with $labels.instance }}on {{ . }} {{ end }}is down`,
		fmt.Sprintf(`Prometheus has not scraped breakwater (job {{ $labels.job }}{{ with $labels.instance }}, instance {{ . }}{{ else }}: no target at all{{ end }}) for %s. Security and resource alerts of the containers it watches are blind.`, a.For))
}

func (b builder) probeDetached() Rule {
	c, a := b.c, b.c.ProbeDetached
	by := strings.Join(append(slices.Clone(c.TargetLabels), "program", "hook"), ", ")
	return b.alert(names.AlertProbeDetached,
		fmt.Sprintf("max by (%s) (%s) == 0", by, sel(names.MetricBPFProgramAttached, c.Selector)),
		a.For, a.Severity,
		`breakwater probe {{ $labels.program }} is detached on {{ $labels.instance }}`,
		fmt.Sprintf(`The BPF program {{ $labels.program }} (hook {{ $labels.hook }}) of breakwater on {{ $labels.instance }} has not been attached for %s: what it watches is not counted, so escape attempts can go unnoticed.`, a.For))
}

func (b builder) eventsLost() Rule {
	c, a := b.c, b.c.EventsLost
	by := strings.Join(append(slices.Clone(c.TargetLabels), "reason"), ", ")
	return b.alert(names.AlertEventsLost,
		fmt.Sprintf("max by (%s) (\n  %s\n) > 0", by, indent(risen(sel(names.MetricBPFEventsLost, c.Selector), a.Window), 2)),
		a.For, a.Severity,
		`breakwater on {{ $labels.instance }} lost {{ printf "%.0f" $value }} BPF events`,
		fmt.Sprintf(`breakwater on {{ $labels.instance }} lost {{ printf "%%.0f" $value }} BPF events ({{ $labels.reason }}) in the last %s: counters and pushed alerts miss what those events were.`, a.Window))
}
