//lint:file-ignore SA1019 the v1 dashboard schema is what Grafana provisions from JSON files and the sidecar ConfigMap

package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// AlertNames selects breakwater's alerts in Prometheus' ALERTS series: every
// alert of design.md starts with Container or Breakwater, so alerts added
// later show up without a dashboard change (the test checks the rule file).
const AlertNames = `(Container|Breakwater).+`

func firingAlerts() string {
	return `ALERTS{alertstate="firing", alertname=~"` + AlertNames + `"}`
}

func security() *dashboard.DashboardBuilder {
	allowedRe, allowedColor := severityColors("allowed")
	deniedRe, deniedColor := severityColors("denied")
	return newDashboard(SecurityUID, "breakwater / Container security",
		"Container escape attempts, denied syscalls and privileged operations per container, from breakwater's eBPF counters.", true).
		WithRow(dashboard.NewRowBuilder("Overview")).
		WithPanel(singleStat("Escapes allowed", "Peak rate of escape attempts the kernel let succeed. Anything above zero is the most severe signal breakwater has.", unitOpsPerSec, 0.0001,
			query(`sum(rate(breakwater_escape_attempts_total{`+containerSel+`, result="allowed"}[$__rate_interval]))`, "allowed")).
			ReduceOptions(maxReduce())).
		WithPanel(singleStat("Escapes blocked", "Peak rate of escape attempts the kernel refused.", unitOpsPerSec, 0.0001,
			query(`sum(rate(breakwater_escape_attempts_total{`+containerSel+`, result="blocked"}[$__rate_interval]))`, "blocked")).
			ReduceOptions(maxReduce())).
		WithPanel(singleStat("Containers with dangerous capabilities", "Containers that executed a process with a dangerous capability in its effective set.", unitShort, 1,
			query(`count(count by (instance, name) (breakwater_container_capabilities{`+containerSel+`}))`, "containers"))).
		WithPanel(singleStat("Firing breakwater alerts", "breakwater alerts firing now, from Prometheus' ALERTS series.", unitShort, 1,
			query(`count(`+firingAlerts()+`)`, "alerts"))).
		WithPanel(instantTable("Firing breakwater alerts", "Every firing breakwater alert with its labels, as Prometheus evaluates it.", unitShort,
			tableQuery(firingAlerts()))).
		WithRow(dashboard.NewRowBuilder("Escape attempts")).
		WithPanel(bars("Escape attempts by technique", "Classified escape attempts per second by technique; allowed ones are red.", unitOpsPerSec,
			query(`sum by (technique, result) (rate(breakwater_escape_attempts_total{`+containerSel+`}[$__rate_interval]))`, "{{technique}} {{result}}")).
			OverrideByRegexp(allowedRe, allowedColor)).
		WithPanel(bars("Escape attempts by container", "Classified escape attempts per second by container; allowed ones are red.", unitOpsPerSec,
			query(`sum by (instance, name, technique, result) (rate(breakwater_escape_attempts_total{`+containerSel+`}[$__rate_interval]))`, "{{name}} {{technique}} {{result}} ({{instance}})")).
			OverrideByRegexp(allowedRe, allowedColor)).
		WithRow(dashboard.NewRowBuilder("Denied syscalls")).
		WithPanel(timeSeries("Top denied syscalls by container and syscall", "The ten container/syscall pairs with the most calls failing with EPERM or EACCES: seccomp, a missing capability or an LSM said no.", unitOpsPerSec,
			query(`topk(10, sum by (instance, name, syscall) (rate(breakwater_syscalls_denied_total{`+containerSel+`}[$__rate_interval])))`, "{{name}} {{syscall}} ({{instance}})"))).
		WithPanel(timeSeries("Denied syscalls against baseline", "Each container's denied-syscall rate next to its own 1h average; ContainerSyscallsDeniedBurst fires when the first runs well above the second.", unitOpsPerSec,
			query(`sum by (instance, name) (breakwater:container_syscalls_denied:rate5m{`+containerSel+`})`, "{{name}} ({{instance}})"),
			query(`sum by (instance, name) (breakwater:container_syscalls_denied:rate5m_avg_1h{`+containerSel+`})`, "{{name}} 1h baseline ({{instance}})"))).
		WithRow(dashboard.NewRowBuilder("Privileged operations")).
		WithPanel(timeSeries("Capability checks", "Privileged operations attempted, by the capability they need; denied ones are red.", unitOpsPerSec,
			query(`sum by (capability, result) (rate(breakwater_capability_checks_total{`+containerSel+`}[$__rate_interval]))`, "{{capability}} {{result}}")).
			OverrideByRegexp(deniedRe, deniedColor)).
		WithPanel(timeSeries("Capability checks by container", "Privileged operations attempted per container and capability.", unitOpsPerSec,
			query(`sum by (instance, name, capability, result) (rate(breakwater_capability_checks_total{`+containerSel+`}[$__rate_interval]))`, "{{name}} {{capability}} {{result}} ({{instance}})")).
			OverrideByRegexp(deniedRe, deniedColor)).
		WithPanel(timeSeries("Namespace operations", "unshare, setns and clone of namespaces from inside containers.", unitOpsPerSec,
			query(`sum by (instance, name, operation, namespace_type, result) (rate(breakwater_namespace_operations_total{`+containerSel+`}[$__rate_interval]))`, "{{name}} {{operation}} {{namespace_type}} {{result}} ({{instance}})")).
			OverrideByRegexp(deniedRe, deniedColor)).
		WithPanel(timeSeries("Mount operations", "Mount-table and root changes from inside containers.", unitOpsPerSec,
			query(`sum by (instance, name, operation, result) (rate(breakwater_mount_operations_total{`+containerSel+`}[$__rate_interval]))`, "{{name}} {{operation}} {{result}} ({{instance}})")).
			OverrideByRegexp(deniedRe, deniedColor)).
		WithPanel(instantTable("Containers running with dangerous capabilities", "Dangerous capabilities seen in the effective set of a process each container executed.", unitShort,
			tableQuery(`max by (instance, name, image, namespace, pod, container, capability) (breakwater_container_capabilities{`+containerSel+`})`)))
}
