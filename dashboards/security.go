//lint:file-ignore SA1019 the v1 dashboard schema is what Grafana provisions from JSON files and the sidecar ConfigMap

package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/breakwater/breakwater/internal/names"
)

// AlertNames selects breakwater's alerts in Prometheus' ALERTS series: every
// alert in internal/names starts with Container or Breakwater, so alerts added
// later show up without a dashboard change (the test checks the rule file).
const AlertNames = `(Container|Breakwater).+`

// firingAlerts are the breakwater alerts of the selected exporters. Alerts
// without a job or instance (kube-state-metrics restarts, a missing target)
// show under All.
func firingAlerts(o Options) string {
	return names.MetricAlerts + `{alertstate="firing", alertname=~"` + AlertNames + `", ` + o.nodeSel() + `}`
}

func security(o Options) *dashboard.DashboardBuilder {
	allowedRe, allowedColor := severityColors(names.ResultAllowed)
	deniedRe, deniedColor := severityColors(names.ResultDenied)
	c := o.containerSel()
	seccomp := c + `, ` + names.LabelReason + `="` + names.ReasonSeccomp + `"`
	return newDashboard(SecurityUID, "breakwater / Container security",
		"Container escape attempts, denied syscalls and privileged operations per container, from breakwater's eBPF counters.", true, o).
		WithRow(dashboard.NewRowBuilder("Overview")).
		WithPanel(singleStat("Escapes allowed", "Escape attempts the kernel let succeed within the time range (ContainerEscapeSucceeded). Anything above zero is the most severe signal breakwater has.", unitShort, 1,
			instantQuery(countInRange(names.MetricEscapeAttempts, c+`, result="allowed"`), "allowed"))).
		WithPanel(singleStat("Escapes blocked", "Escape attempts the kernel refused within the time range (ContainerEscapeAttempt).", unitShort, 1,
			instantQuery(countInRange(names.MetricEscapeAttempts, c+`, result="blocked"`), "blocked"))).
		WithPanel(singleStat("Containers with dangerous capabilities", "Containers that executed a process with a dangerous capability in its effective set.", unitShort, 1,
			query(`count(count by (`+o.by()+`) (`+names.MetricContainerCapabilities+`{`+c+`}))`, "containers"))).
		WithPanel(singleStat("Firing breakwater alerts", "breakwater alerts of the selected exporters firing now, from Prometheus' ALERTS series.", unitShort, 1,
			query(`count(`+firingAlerts(o)+`)`, "alerts"))).
		WithPanel(instantTable("Firing breakwater alerts", "Every firing breakwater alert of the selected exporters with its labels, as Prometheus evaluates it.", unitShort,
			tableQuery(firingAlerts(o)))).
		WithRow(dashboard.NewRowBuilder("Escape attempts")).
		WithPanel(bars("Escape attempts by technique", "Classified escape attempts per second by technique; allowed ones are red.", unitOpsPerSec,
			query(`sum by (technique, result) (rate(`+names.MetricEscapeAttempts+`{`+c+`}[$__rate_interval]))`, "{{technique}} {{result}}")).
			OverrideByRegexp(allowedRe, allowedColor)).
		WithPanel(bars("Escape attempts by container", "Classified escape attempts per second by container; allowed ones are red.", unitOpsPerSec,
			query(display(`sum by (`+o.by("technique", "result")+`) (rate(`+names.MetricEscapeAttempts+`{`+c+`}[$__rate_interval]))`), legend("{{technique}} {{result}}"))).
			OverrideByRegexp(allowedRe, allowedColor)).
		WithPanel(bars("Novel syscalls", "Syscalls a container made outside the profile learned for its image, per container and syscall (ContainerNovelSyscall).", unitShort,
			query(display(`sum by (`+o.by("syscall")+`) (increase(`+names.MetricSyscallsNovel+`{`+c+`}[$__rate_interval]))`), legend("{{syscall}}")))).
		WithRow(dashboard.NewRowBuilder("Denied syscalls")).
		WithPanel(timeSeries("Top syscalls refused by seccomp", "The ten container/syscall pairs the seccomp filter refused most: the container asked for what its profile forbids.", unitOpsPerSec,
			query(display(`topk(10, sum by (`+o.by("syscall")+`) (rate(`+names.MetricSyscallsDenied+`{`+seccomp+`}[$__rate_interval])))`), legend("{{syscall}}")))).
		WithPanel(timeSeries("Seccomp refusals against baseline", "Each container's seccomp refusal rate next to its own 1h average; ContainerSyscallsDeniedBurst fires when the first runs well above the second.", unitOpsPerSec,
			query(display(`sum by (`+o.by()+`) (`+names.RecordDeniedRate+`{`+c+`})`), legend("")),
			query(display(`sum by (`+o.by()+`) (`+names.RecordDeniedBaseline+`{`+c+`})`), legend("1h baseline")))).
		WithPanel(timeSeries("Syscalls the kernel refused", "Calls that ran and failed with EPERM or EACCES (a missing capability or permission, an LSM): many programs make some; a change in the mix is worth a look.", unitOpsPerSec,
			query(display(`topk(10, sum by (`+o.by("syscall", "errno")+`) (rate(`+names.MetricSyscallsDenied+`{`+c+`, `+names.LabelReason+`="`+names.ReasonKernel+`"}[$__rate_interval])))`), legend("{{syscall}} {{errno}}")))).
		WithRow(dashboard.NewRowBuilder("Privileged operations")).
		WithPanel(timeSeries("Capability checks", "Privileged operations attempted, by the capability they need and where it was checked (host or a user namespace); denied ones are red.", unitOpsPerSec,
			query(`sum by (capability, scope, result) (rate(`+names.MetricCapabilityChecks+`{`+c+`}[$__rate_interval]))`, "{{capability}} {{scope}} {{result}}")).
			OverrideByRegexp(deniedRe, deniedColor)).
		WithPanel(timeSeries("Capability checks by container", "Privileged operations attempted per container and capability.", unitOpsPerSec,
			query(display(`sum by (`+o.by("capability", "result")+`) (rate(`+names.MetricCapabilityChecks+`{`+c+`}[$__rate_interval]))`), legend("{{capability}} {{result}}"))).
			OverrideByRegexp(deniedRe, deniedColor)).
		WithPanel(timeSeries("Namespace operations", "unshare, setns and clone of namespaces from inside containers.", unitOpsPerSec,
			query(display(`sum by (`+o.by("operation", "namespace_type", "result")+`) (rate(`+names.MetricNamespaceOperations+`{`+c+`}[$__rate_interval]))`), legend("{{operation}} {{namespace_type}} {{result}}"))).
			OverrideByRegexp(deniedRe, deniedColor)).
		WithPanel(timeSeries("Mount operations", "Mount-table and root changes from inside containers.", unitOpsPerSec,
			query(display(`sum by (`+o.by("operation", "result")+`) (rate(`+names.MetricMountOperations+`{`+c+`}[$__rate_interval]))`), legend("{{operation}} {{result}}"))).
			OverrideByRegexp(deniedRe, deniedColor)).
		WithPanel(instantTable("Containers running with dangerous capabilities", "Dangerous capabilities seen in the effective set of a process each container executed.", unitShort,
			tableQuery(`max by (`+o.by("image", "container", "capability")+`) (`+names.MetricContainerCapabilities+`{`+c+`})`)))
}
