package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/breakwater/breakwater/internal/names"
)

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

// The pack is written once, as rules whose configurable parts are
// text/template actions in [% %] (Prometheus' own {{ }} templates in the
// annotations stay as they are) over the configuration as its YAML map,
// $. Groups executes them with a Config; HelmTemplate hands the very same
// text to Helm, which executes it with the chart's `rules` values. The
// actions use only functions Helm has (sprig's list, concat, compact, uniq,
// join, quote), which template.go gives the Go side too.

// ref is a configuration value, by its key path: ref("cpuSpike.factor").
func ref(path string) string { return "[% $." + path + " %]" }

func quoted(xs []string) string {
	var b strings.Builder
	for _, x := range xs {
		b.WriteString(" " + strconv.Quote(x))
	}
	return b.String()
}

// by is a label list: the cluster label, the target labels, then extra,
// without empty or repeated names.
func by(extra ...string) string {
	return `[% concat (list $.clusterLabel) ($.targetLabels | default (list)) (list` + quoted(extra) + `) | compact | uniq | join ", " %]`
}

// byCluster is the cluster label then extra, for series of other targets.
func byCluster(extra ...string) string {
	return `[% concat (list $.clusterLabel) (list` + quoted(extra) + `) | compact | uniq | join ", " %]`
}

// Matcher sets a selector starts from: configured selectors (key paths
// starting with $.) and fixed matchers.
var (
	breakwaterSel = []string{"$.selector"}
	containerSel  = []string{"$.selector", "$.containerSelector"}
	cgroupSel     = []string{"$.selector", "$.containerSelector", "$.cgroupSelector"}
)

// matchers joins configured and fixed matchers, leaving out empty ones.
func matchers(parts ...string) string {
	var args []string
	for _, p := range parts {
		if strings.HasPrefix(p, "$.") {
			args = append(args, p)
		} else {
			args = append(args, "`"+p+"`")
		}
	}
	return `[% list ` + strings.Join(args, " ") + ` | compact | join ", " %]`
}

// sel is a series selector.
func sel(metric string, parts ...string) string { return metric + "{" + matchers(parts...) + "}" }

func with(parts []string, fixed ...string) []string { return append(slices.Clone(parts), fixed...) }

// indent indents every line of s but the first by n spaces, so that a
// multi-line sub-expression nests inside another.
func indent(s string, n int) string {
	return strings.ReplaceAll(s, "\n", "\n"+strings.Repeat(" ", n))
}

// risen is how much counter series rose within the window at key w: the
// latest value in the window against the last one seen before it (within
// counterHistory), never what an older sample said.
//
//   - Seen before: the difference. A stale marker (a failed scrape, a
//     failing collector), a scrape gap or a Prometheus restart hide samples
//     but change neither value, so they replay nothing.
//   - Lower than before: the exporter restarted and its counters started
//     over; what it counted since is the rise.
//   - Never seen within counterHistory: born in the window, its whole value
//     is the rise (the security counters appear with a container's first
//     event, which increase() would miss) if Prometheus saw it born: it
//     scraped the target successfully before the window (within
//     counterHistory), or within the window before the series' first
//     sample (the series has fewer samples than up has successes). A new
//     Prometheus, or one back after longer than counterHistory, finds old
//     series at its first successful scrape, sample for sample with up,
//     and cannot tell them from new ones: those stay quiet; a series born
//     after that fires, from the first window on.
//
// The latest value is last_over_time over the window, so one failed scrape
// does not resolve a firing alert either.
func risen(series, up, w string) string {
	now := fmt.Sprintf("last_over_time(%s[%s])", series, ref(w))
	before := fmt.Sprintf("last_over_time(%s[%s] offset %s)", series, ref("counterHistory"), ref(w))
	samples := fmt.Sprintf("count_over_time(%s[%s])", series, ref(w))
	seenBorn := fmt.Sprintf("(%s < on (%s) group_left sum_over_time(%s[%s]))\n  or\n(%s and on (%s) sum_over_time(%s[%s] offset %s) > 0)",
		samples, by(), up, ref(w), samples, by(), up, ref("counterHistory"), ref(w))
	return fmt.Sprintf("(%s - %s) >= 0\n  or\n%s < %s\n  or\n(\n  (%s unless %s)\n    and\n  (\n    %s\n  )\n)",
		now, before, now, before, now, before, indent(seenBorn, 4))
}

// exclusionFields are the Exclusion keys and the labels they match.
var exclusionFields = []struct{ key, label string }{
	{"namespace", names.LabelNamespace}, {"pod", names.LabelPod}, {"image", names.LabelImage},
	{"name", names.LabelName}, {"container", names.LabelContainer}, {"technique", names.LabelTechnique},
}

// excluding appends "unless" the series of metric (with the given matchers)
// that an enabled exclusion names had samples within the window at key w;
// on lists the labels both sides share. Entries naming a technique only
// apply where technique is true (the escape alerts).
func excluding(on, metric string, parts []string, w string, technique bool) string {
	// index, not .field: a Helm user's entry has only the keys it sets.
	cond := `ne (printf "%v" (index $e "enabled")) "false"`
	if !technique {
		cond = `and (` + cond + `) (not (index $e "technique"))`
	}
	var fields strings.Builder
	for _, f := range exclusionFields {
		if f.key == "technique" && !technique {
			continue
		}
		fields.WriteString(`[% with index $e "` + f.key + `" %], ` + f.label + `=~[% quote . %][% end %]`)
	}
	return `[% range $name, $e := $.exclusions %][% if ` + cond + ` %]` +
		"\n  unless on (" + on + ")\n" +
		`present_over_time(` + metric + "{" + matchers(parts...) + fields.String() + "}[" + ref(w) + "])" +
		`[% end %][% end %]`
}

// templateGroups are the rule groups as templates.
func templateGroups() []Group {
	return []Group{
		{Name: "breakwater.container.rules", Rules: recordingRules()},
		{Name: "breakwater.resources", Rules: []Rule{memoryNearLimit(), cpuSpike(), cpuThrottled(), restartingOften(), crashLooping(), oomKilled()}},
		{Name: "breakwater.security", Rules: []Rule{
			escapeAttempt(), escapeSucceeded(),
			novelSyscall(), syscallsDeniedBurst(), privilegedCapabilities(),
		}},
		{Name: "breakwater.self", Rules: []Rule{breakwaterDown(), probeDetached(), eventsLost(), collectorFailed(), pushFailing(), stateFileProblem()}},
	}
}

// Groups returns the rule groups generated from c: the recording rules
// first, then one group of alerts per concern.
func Groups(c Config) []Group {
	gs, err := resolve(templateGroups(), c)
	if err != nil {
		panic(fmt.Sprintf("rules: the pack does not render: %v", err)) // a bug in this package, not in c
	}
	return gs
}

// The container labels: cluster, target and identity; cgroup adds cAdvisor's id.
var (
	containerLabels = names.IdentityLabels
	cgroupLabels    = append(slices.Clone(names.IdentityLabels), names.LabelCgroupID)
)

// normal is a rate without the samples where it ran above factor times its
// baseline and above floor, the samples its alert fires on: the baseline
// averages the normal samples only, so it never takes in the spike it is
// compared with, and a sustained step keeps firing until the samples from
// before it have left the baseline window.
func normal(rate, baseline, floor, factor string) string {
	return fmt.Sprintf("%s\n  unless\n(%s > %s and %s > %s * %s)", rate, rate, ref(floor), rate, ref(factor), baseline)
}

// baseline averages the normal samples, for containers seen baselineMinAge ago.
func baseline(normal, rate string) string {
	return fmt.Sprintf("avg_over_time(%s[%s])\n  and\n%s offset %s", normal, ref("baselineWindow"), rate, ref("baselineMinAge"))
}

func recordingRules() []Rule {
	cadvisor := func(metric string) string { return sel(metric, cgroupSel...) }
	return []Rule{
		{
			// Per-CPU series (cAdvisor's percpu set) are summed; the inner max
			// removes duplicates of one series that differ only in labels
			// outside the identity.
			Record: names.RecordCPURate,
			Expr: fmt.Sprintf("sum by (%s) (\n  max by (%s) (\n    rate(%s[%s])\n  )\n)",
				by(cgroupLabels...), by(append(cgroupLabels, names.LabelCPU)...), cadvisor(names.MetricCPUUsage), ref("rateWindow")),
		},
		{Record: names.RecordCPUBaseline, Expr: baseline(names.RecordCPUNormal, names.RecordCPURate)},
		{Record: names.RecordCPUNormal, Expr: normal(names.RecordCPURate, names.RecordCPUBaseline, "cpuSpike.minCores", "cpuSpike.factor")},
		{
			// A limit of 0 is cAdvisor's "no limit" and never divides.
			Record: names.RecordMemoryRatio,
			Expr: fmt.Sprintf("max by (%s) (%s)\n  /\nmax by (%s) (%s > 0)",
				by(cgroupLabels...), cadvisor(names.MetricMemoryWorkingSet), by(cgroupLabels...), cadvisor(names.MetricMemoryLimit)),
		},
		{
			// Syscalls the seccomp filter refused. The counters of a container
			// appear with its first denial; a container with a CPU series and
			// no denials is recorded as 0, so the baseline of a long quiet
			// container is 0, not missing.
			Record: names.RecordDeniedRate,
			Expr: fmt.Sprintf("sum by (%s) (\n  max by (%s) (\n    rate(%s[%s])\n  )\n)\n  or\n0 * group by (%s) (%s)",
				by(containerLabels...), by(append(slices.Clone(containerLabels), names.LabelSyscall, names.LabelErrno)...),
				sel(names.MetricSyscallsDenied, with(containerSel, names.LabelReason+`="`+names.ReasonSeccomp+`"`)...), ref("rateWindow"),
				by(containerLabels...), names.RecordCPURate),
		},
		{Record: names.RecordDeniedBaseline, Expr: baseline(names.RecordDeniedNormal, names.RecordDeniedRate)},
		{Record: names.RecordDeniedNormal, Expr: normal(names.RecordDeniedRate, names.RecordDeniedBaseline, "syscallsDeniedBurst.minRate", "syscallsDeniedBurst.factor")},
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

// dashboardURL links the dashboard uid with the alert's labels as its
// variables; labels the alert lacks leave the variable at its default.
func dashboardURL(uid string, container bool) string {
	u := ref("grafanaURL") + "/d/" + uid + "?from=now-3h&to=now" +
		`{{ with index $labels "` + ref("clusterLabel") + `" }}&var-` + names.VarCluster + `={{ . | urlquery }}{{ end }}`
	vars := []struct{ v, label string }{{names.VarJob, names.LabelJob}, {names.VarInstance, names.LabelInstance}}
	if container {
		vars = append(vars, struct{ v, label string }{names.VarNamespace, names.LabelNamespace},
			struct{ v, label string }{names.VarPod, names.LabelPod}, struct{ v, label string }{names.VarContainer, names.LabelName})
	}
	for _, v := range vars {
		u += `{{ with $labels.` + v.label + ` }}&var-` + v.v + `={{ . | urlquery }}{{ end }}`
	}
	return u
}

// alertRule fills in what every alert has: severity, runbook, dashboard,
// `for` when the alert has one (at key+".for"), and the <name>/<who>
// placeholders of summary and description.
type alertRule struct {
	name, key   string
	expr        string
	hasFor      bool
	severity    string // a template; ref(key + ".severity") when empty
	dashboard   string
	container   bool // per-container: the dashboard link names the container
	summary     string
	description string
}

func (a alertRule) rule() Rule {
	r := strings.NewReplacer("<name>", nameTmpl, "<who>", whoTmpl)
	sev := a.severity
	if sev == "" {
		sev = ref(a.key + ".severity")
	}
	rule := Rule{
		Alert:  a.name,
		Expr:   a.expr,
		Labels: map[string]string{names.LabelSeverity: sev},
		Annotations: map[string]string{
			names.AnnotationSummary:      r.Replace(a.summary),
			names.AnnotationDescription:  r.Replace(a.description),
			names.AnnotationRunbookURL:   ref("runbookURL") + a.name + ".md",
			names.AnnotationDashboardURL: dashboardURL(a.dashboard, a.container),
		},
	}
	if a.hasFor {
		rule.For = ref(a.key + ".for")
	}
	return rule
}

func memoryNearLimit() Rule {
	return alertRule{
		name: names.AlertMemoryNearLimit, key: "memoryNearLimit", hasFor: true, dashboard: names.DashboardResources, container: true,
		expr:    fmt.Sprintf("%s > %s", names.RecordMemoryRatio, ref("memoryNearLimit.ratio")),
		summary: `Container <name> is at {{ $value | humanizePercentage }} of its memory limit`,
		description: `<who> has been above {{ ` + ref("memoryNearLimit.ratio") + ` | humanizePercentage }} of its memory limit for ` + ref("memoryNearLimit.for") +
			`: its working set is {{ $value | humanizePercentage }} of the limit. At the limit the kernel reclaims its page cache and then OOM-kills it.`,
	}.rule()
}

func cpuSpike() Rule {
	return alertRule{
		name: names.AlertCPUSpike, key: "cpuSpike", hasFor: true, dashboard: names.DashboardResources, container: true,
		expr: fmt.Sprintf("%s > %s\n  and\n%s > %s * %s",
			names.RecordCPURate, ref("cpuSpike.minCores"), names.RecordCPURate, ref("cpuSpike.factor"), names.RecordCPUBaseline),
		summary: `Container <name> uses {{ printf "%.2f" $value }} CPU cores, far above its usual`,
		description: `<who> has used {{ printf "%.2f" $value }} CPU cores for ` + ref("cpuSpike.for") + `, more than ` + ref("cpuSpike.factor") +
			` times its ` + ref("baselineWindow") + ` average of ` + baselineTmpl(names.RecordCPUBaseline) + ` cores.`,
	}.rule()
}

func cpuThrottled() Rule {
	cadvisor := func(metric string) string { return sel(metric, cgroupSel...) }
	return alertRule{
		name: names.AlertCPUThrottled, key: "cpuThrottled", hasFor: true, dashboard: names.DashboardResources, container: true,
		// Only containers with a CPU quota have CFS periods.
		expr: fmt.Sprintf("max by (%s) (rate(%s[%s]))\n  /\nmax by (%s) (rate(%s[%s]) > 0)\n  > %s",
			by(cgroupLabels...), cadvisor(names.MetricCPUCFSThrottled), ref("rateWindow"),
			by(cgroupLabels...), cadvisor(names.MetricCPUCFSPeriods), ref("rateWindow"), ref("cpuThrottled.ratio")),
		summary: `Container <name> is CPU-throttled in {{ $value | humanizePercentage }} of its periods`,
		description: `<who> has hit its CPU quota in {{ $value | humanizePercentage }} of its CFS periods for ` + ref("cpuThrottled.for") +
			` (more than {{ ` + ref("cpuThrottled.ratio") + ` | humanizePercentage }}): it runs slower than it asks to, and its latency suffers.`,
	}.rule()
}

// restarts counts restarts within the window at key w, per container
// identity: breakwater's own count, and kube-state-metrics' for containers
// breakwater does not track (Kubernetes nodes it does not run on).
func restarts(w, cmp string) string {
	bw := sel(names.MetricContainerRestarts, breakwaterSel[0], names.LabelContainer+`!="POD"`)
	k8s := []string{names.LabelNamespace, names.LabelPod, names.LabelContainer}
	ksm := sel(names.MetricKSMContainerRestarts, "$.kubeStateMetricsSelector")
	ksmUp := sel(names.MetricUp, "$.kubeStateMetricsSelector")
	return fmt.Sprintf("floor(max by (%s) (\n  %s\n)) %s", by(names.RestartIdentityLabels...), indent(risen(bw, sel(names.MetricUp, breakwaterSel...), w), 2), cmp) +
		// Where breakwater tracks the container its own count wins, so one
		// restart loop is one alert.
		`[% if $.kubeStateMetricsSelector %]` +
		fmt.Sprintf("\n  or\n(\n  floor(max by (%s) (\n    %s\n  )) %s\n    unless on (%s)\n  %s\n)",
			byCluster(k8s...), indent(risen(ksm, ksmUp, w), 4), cmp, byCluster(k8s...),
			sel(names.MetricContainerRestarts, breakwaterSel[0], names.LabelNamespace+`!=""`)) +
		`[% end %]`
}

func restartingOften() Rule {
	return alertRule{
		name: names.AlertRestartingOften, key: "restartingOften", hasFor: true, dashboard: names.DashboardResources, container: true,
		expr:    restarts("restartingOften.window", "> "+ref("restartingOften.restarts")),
		summary: `Container <name> restarted {{ printf "%.0f" $value }} times in ` + ref("restartingOften.window"),
		description: `<who> restarted {{ printf "%.0f" $value }} times in the last ` + ref("restartingOften.window") +
			` (more than ` + ref("restartingOften.restarts") + `): it is crash-looping or being killed.`,
	}.rule()
}

func crashLooping() Rule {
	return alertRule{
		name: names.AlertCrashLooping, key: "crashLooping", hasFor: true, dashboard: names.DashboardResources, container: true,
		// Restarted within every window for `for`: whatever the backoff
		// (kubelet's grows to 5m), a loop keeps the count at 1 or more.
		expr:    restarts("crashLooping.window", ">= 1"),
		summary: `Container <name> has been crash-looping for ` + ref("crashLooping.for"),
		description: `<who> has restarted again and again for ` + ref("crashLooping.for") + `, the last ` + ref("crashLooping.window") +
			` included ({{ printf "%.0f" $value }} restarts), however long its restarts are delayed: it does not stay up.`,
	}.rule()
}

func oomKilled() Rule {
	return alertRule{
		name: names.AlertOOMKilled, key: "oomKilled", dashboard: names.DashboardResources, container: true,
		expr: fmt.Sprintf("max by (%s) (\n  %s\n) > 0", by(cgroupLabels...),
			indent(risen(sel(names.MetricOOMEvents, cgroupSel...), sel(names.MetricUp, breakwaterSel...), "oomKilled.window"), 2)),
		summary: `The kernel OOM-killed a process of container <name>`,
		description: `The kernel killed {{ printf "%.0f" $value }} process(es) of <who> in the last ` + ref("oomKilled.window") +
			` because the container ran out of memory.`,
	}.rule()
}

// EscapeAlertLabels are the labels an escape alert carries besides
// alertname and severity: cluster, target labels, identity, technique, and
// for ContainerEscapeAttempt the result (always blocked). The Alertmanager push sends the
// same set (labels with empty values are absent in both), so Alertmanager
// sees one alert whichever path arrives first.
func EscapeAlertLabels(c Config, alert string) []string {
	l := append(append([]string{c.ClusterLabel}, c.TargetLabels...), names.IdentityLabels...)
	l = append(l, names.LabelTechnique)
	if alert == names.AlertEscapeAttempt {
		l = append(l, names.LabelResult)
	}
	var out []string
	for _, x := range l {
		if x != "" && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// escapeExpr counts the attempts of one container and technique with the
// given result within the window at key w.
func escapeExpr(result, w string, labels []string) string {
	s := sel(names.MetricEscapeAttempts, with(containerSel, names.LabelResult+`="`+result+`"`)...)
	return fmt.Sprintf("max by (%s) (\n  %s\n) > 0", by(labels...), indent(risen(s, sel(names.MetricUp, breakwaterSel...), w), 2)) +
		excluding(by(append(slices.Clone(containerLabels), names.LabelTechnique)...), names.MetricEscapeAttempts, containerSel, w, true)
}

// escapeAttempt is the blocked attempts only: the allowed ones are
// ContainerEscapeSucceeded's. One alert name, one severity, so that no
// inhibition on [namespace, alertname] (kube-prometheus-stack's default)
// can let one container's attempt silence another's.
func escapeAttempt() Rule {
	key := "escapeAttempt"
	return alertRule{
		name: names.AlertEscapeAttempt, key: key, dashboard: names.DashboardSecurity, container: true,
		expr:    escapeExpr(names.ResultBlocked, key+".window", append(slices.Clone(containerLabels), names.LabelTechnique, names.LabelResult)),
		summary: `Escape attempt ({{ $labels.technique }}, {{ $labels.result }}) from container <name>`,
		description: `<who> made {{ printf "%.0f" $value }} {{ $labels.technique }} escape attempt(s) in the last ` + ref(key+".window") +
			` that the kernel refused. Ordinary workloads never do this.`,
	}.rule()
}

func escapeSucceeded() Rule {
	key := "escapeSucceeded"
	return alertRule{
		name: names.AlertEscapeSucceeded, key: key, dashboard: names.DashboardSecurity, container: true,
		expr:    escapeExpr(names.ResultAllowed, key+".window", append(slices.Clone(containerLabels), names.LabelTechnique)),
		summary: `A {{ $labels.technique }} escape from container <name> succeeded`,
		description: `<who> made {{ printf "%.0f" $value }} {{ $labels.technique }} escape attempt(s) in the last ` + ref(key+".window") +
			` that the kernel allowed. Treat the host as compromised.`,
	}.rule()
}

func novelSyscall() Rule {
	key := "novelSyscall"
	s := sel(names.MetricSyscallsNovel, containerSel...)
	return alertRule{
		name: names.AlertNovelSyscall, key: key, dashboard: names.DashboardSecurity, container: true,
		expr: fmt.Sprintf("max by (%s) (\n  %s\n) > 0", by(append(slices.Clone(containerLabels), names.LabelSyscall)...),
			indent(risen(s, sel(names.MetricUp, breakwaterSel...), key+".window"), 2)) +
			excluding(by(containerLabels...), names.MetricSyscallsNovel, containerSel, key+".window", false),
		summary: `Container <name> called {{ $labels.syscall }}, new to its image`,
		description: `<who> called {{ $labels.syscall }} {{ printf "%.0f" $value }} time(s) in the last ` + ref(key+".window") +
			`, a syscall outside the profile breakwater learned for its image: new code is running in it, or its workload changed.`,
	}.rule()
}

func syscallsDeniedBurst() Rule {
	key := "syscallsDeniedBurst"
	return alertRule{
		name: names.AlertSyscallsDeniedBurst, key: key, hasFor: true, dashboard: names.DashboardSecurity, container: true,
		expr: fmt.Sprintf("%s > %s\n  and\n%s > %s * %s", names.RecordDeniedRate, ref(key+".minRate"), names.RecordDeniedRate, ref(key+".factor"), names.RecordDeniedBaseline) +
			excluding(by(containerLabels...), names.MetricSyscallsDenied, containerSel, "rateWindow", false),
		summary: `Container <name> has {{ printf "%.2f" $value }} syscalls per second refused by seccomp`,
		description: `<who> has had {{ printf "%.2f" $value }} syscalls per second refused by its seccomp filter for ` + ref(key+".for") +
			`, more than ` + ref(key+".factor") + ` times its ` + ref("baselineWindow") + ` average of ` + baselineTmpl(names.RecordDeniedBaseline) +
			` per second. It is probing what its seccomp profile allows, or a profile change broke it.`,
	}.rule()
}

func privilegedCapabilities() Rule {
	key := "privilegedCapabilities"
	return alertRule{
		name: names.AlertPrivilegedCapabilities, key: key, hasFor: true, dashboard: names.DashboardSecurity, container: true,
		expr: fmt.Sprintf("max by (%s) (%s) == 1", by(append(slices.Clone(containerLabels), names.LabelCapability)...),
			sel(names.MetricContainerCapabilities, containerSel...)) +
			excluding(by(containerLabels...), names.MetricContainerCapabilities, containerSel, "rateWindow", false),
		summary: `Container <name> runs with {{ $labels.capability }}`,
		description: `<who> executed a process with {{ $labels.capability }} in its effective capability set. ` +
			`That capability opens escape techniques; drop it unless the workload needs it.`,
	}.rule()
}

func breakwaterDown() Rule {
	up := sel(names.MetricUp, breakwaterSel...)
	return alertRule{
		name: names.AlertBreakwaterDown, key: "breakwaterDown", hasFor: true, dashboard: names.DashboardHealth,
		// onlyAbsent leaves a target that is down to kube-prometheus-stack's TargetDown.
		expr:    fmt.Sprintf("[%% if not $.breakwaterDown.onlyAbsent %%]%s == 0\n  or\n[%% end %%]absent(%s)", up, up),
		summary: `breakwater {{ with $labels.instance }}on {{ . }} {{ end }}is down`,
		description: `Prometheus has not scraped breakwater (job {{ $labels.job }}{{ with $labels.instance }}, instance {{ . }}{{ else }}: no target at all{{ end }}) for ` +
			ref("breakwaterDown.for") + `. Security and resource alerts of the containers it watches are blind.`,
	}.rule()
}

func probeDetached() Rule {
	return alertRule{
		name: names.AlertProbeDetached, key: "probeDetached", hasFor: true, dashboard: names.DashboardHealth,
		expr:    fmt.Sprintf("max by (%s) (%s) == 0", by(names.LabelProgram, names.LabelHook), sel(names.MetricBPFProgramAttached, breakwaterSel...)),
		summary: `breakwater probe {{ $labels.program }} is detached on {{ $labels.instance }}`,
		description: `The BPF program {{ $labels.program }} (hook {{ $labels.hook }}) of breakwater on {{ $labels.instance }} has not been attached for ` +
			ref("probeDetached.for") + `: what it watches is not counted, so escape attempts can go unnoticed.`,
	}.rule()
}

func eventsLost() Rule {
	return alertRule{
		name: names.AlertEventsLost, key: "eventsLost", hasFor: true, dashboard: names.DashboardHealth,
		expr: fmt.Sprintf("max by (%s) (\n  %s\n) > 0", by(names.LabelReason),
			indent(risen(sel(names.MetricBPFEventsLost, breakwaterSel...), sel(names.MetricUp, breakwaterSel...), "eventsLost.window"), 2)),
		summary: `breakwater on {{ $labels.instance }} lost {{ printf "%.0f" $value }} BPF events`,
		description: `breakwater on {{ $labels.instance }} lost {{ printf "%.0f" $value }} BPF events ({{ $labels.reason }}) in the last ` +
			ref("eventsLost.window") + `: counters and pushed alerts miss what those events were.`,
	}.rule()
}

func collectorFailed() Rule {
	return alertRule{
		name: names.AlertCollectorFailed, key: "collectorFailed", hasFor: true, dashboard: names.DashboardHealth,
		// A target that is down is BreakwaterDown's; this is a collector
		// failing inside an exporter that answers.
		expr: fmt.Sprintf("max by (%s) (%s) == 0\n  and on (%s)\nmax by (%s) (%s) == 1",
			by(names.LabelCollector), sel(names.MetricScrapeCollectorSuccess, breakwaterSel...), by(), by(), sel(names.MetricUp, breakwaterSel...)),
		summary: `breakwater's {{ $labels.collector }} collector fails on {{ $labels.instance }}`,
		description: `The {{ $labels.collector }} collector of breakwater on {{ $labels.instance }} has failed every scrape for ` +
			ref("collectorFailed.for") + ` while the exporter answers: its metrics, and the alerts on them, are missing.`,
	}.rule()
}

func pushFailing() Rule {
	key := "pushFailing"
	n := func(result string) string {
		return fmt.Sprintf("sum by (%s) (increase(%s[%s]))", by(), sel(names.MetricAlertmanagerNotifications, with(breakwaterSel, names.LabelResult+`="`+result+`"`)...), ref(key+".window"))
	}
	return alertRule{
		name: names.AlertPushFailing, key: key, hasFor: true, dashboard: names.DashboardHealth,
		// Failed deliveries are retried: they matter when none got through.
		// A dropped alert is lost.
		expr: fmt.Sprintf("(\n  %s > 0\n    unless on (%s)\n  %s > 0\n)\n  or\n%s > 0",
			n(names.PushFailed), by(), n(names.PushSent), n(names.PushDropped)),
		summary: `breakwater on {{ $labels.instance }} cannot push alerts to Alertmanager`,
		description: `breakwater on {{ $labels.instance }} could not deliver {{ printf "%.0f" $value }} alert pushes to Alertmanager in the last ` + ref(key+".window") +
			` (they failed with none accepted, or were dropped): escape alerts arrive only through the rules, a scrape and an evaluation later.`,
	}.rule()
}

func stateFileProblem() Rule {
	return alertRule{
		name: names.AlertStateFileProblem, key: "stateFileProblem", hasFor: true, dashboard: names.DashboardHealth,
		expr: fmt.Sprintf("max by (%s) (%s) == 1", by(names.LabelFile, names.LabelState),
			sel(names.MetricStateFile, with(breakwaterSel, names.LabelState+`!="`+names.StateFileOK+`"`)...)),
		summary: `breakwater's state file {{ $labels.file }} is {{ $labels.state }} on {{ $labels.instance }}`,
		description: `breakwater on {{ $labels.instance }} reports its state file {{ $labels.file }} {{ $labels.state }} for ` + ref("stateFileProblem.for") +
			`: {{ if eq $labels.state "corrupt" }}it could not read it at start, kept it as {{ $labels.file }}.corrupt and started afresh, so what it held (learned profiles, undelivered alerts) is not in use` +
			`{{ else }}saving it fails, so a restart would lose what it holds (learned profiles, undelivered alerts){{ end }}.`,
	}.rule()
}
