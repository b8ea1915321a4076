//lint:file-ignore SA1019 the v1 dashboard schema is what Grafana provisions from JSON files and the sidecar ConfigMap

package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/breakwater/breakwater/internal/names"
)

// cgroupSel keeps cAdvisor series of container cgroups only, as the rules
// do: the root and system slices have no container_id, and a cgroup path
// that does not end in the 64-hex runtime id is nested inside a container
// and would count its usage twice.
func (o Options) cgroupSel() string {
	return o.containerSel() + `, container_id!="", id=~".*[0-9a-f]{64}([.]scope)?"`
}

func resources(o Options) *dashboard.DashboardBuilder {
	limitLine := common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)
	cg, c, node := o.cgroupSel(), o.containerSel(), o.nodeSel()
	rate := func(metric string) string { return `rate(` + metric + `{` + cg + `}[$__rate_interval])` }
	return newDashboard(ResourcesUID, "breakwater / Container resources",
		"Memory against limits, CPU against each container's own baseline, restarts, OOM kills and CPU throttling, from breakwater's embedded cAdvisor.", true, o).
		WithRow(dashboard.NewRowBuilder("Memory")).
		WithPanel(timeSeries("Memory working set against limit", "Working set as a share of the container's memory limit (containers without a limit are left out). ContainerMemoryNearLimit fires above 90% for 2m.", unitPercent,
			query(display(`max by (`+o.by()+`) (`+names.MetricMemoryWorkingSet+`{`+cg+`} / (`+names.MetricMemoryLimit+`{`+cg+`} > 0))`), legend(""))).
			Thresholds(thresholds(step(nil, "green"), step(cog.ToPtr(0.9), "red"))).
			ThresholdsStyle(limitLine).
			Max(1)).
		WithPanel(timeSeries("Memory working set, RSS and limit", "What the kernel counts against the limit (working set), anonymous memory (RSS) and the limit itself.", unitBytes,
			query(display(`max by (`+o.by()+`) (`+names.MetricMemoryWorkingSet+`{`+cg+`})`), legend("working set")),
			query(display(`max by (`+o.by()+`) (`+names.MetricMemoryRSS+`{`+cg+`})`), legend("RSS")),
			query(display(`max by (`+o.by()+`) (`+names.MetricMemoryLimit+`{`+cg+`} > 0)`), legend("limit")))).
		WithPanel(timeSeries("Containers' share of node memory", "Working set of all selected containers against the node's memory.", unitPercent,
			query(`sum by (`+o.byNode()+`) (`+names.MetricMemoryWorkingSet+`{`+cg+`}) / on (`+o.byNode()+`) max by (`+o.byNode()+`) (`+names.MetricMachineMemoryBytes+`{`+node+`})`, "{{instance}}")).
			Max(1)).
		WithPanel(bars("OOM events", "Out-of-memory kills inside each container (ContainerOOMKilled).", unitShort,
			query(display(`sum by (`+o.by()+`) (increase(`+names.MetricOOMEvents+`{`+cg+`}[$__rate_interval]))`), legend("")))).
		WithRow(dashboard.NewRowBuilder("CPU")).
		WithPanel(timeSeries("CPU usage against baseline", "Each container's 5m CPU rate next to its own 1h average; ContainerCPUSpike fires when the first runs well above the second.", unitShort,
			query(display(`sum by (`+o.by()+`) (`+names.RecordCPURate+`{`+c+`})`), legend("")),
			query(display(`sum by (`+o.by()+`) (`+names.RecordCPUBaseline+`{`+c+`})`), legend("1h baseline"))).
			AxisLabel("CPU cores")).
		WithPanel(timeSeries("CPU usage", "CPU time used per second, in cores.", unitShort,
			query(display(`sum by (`+o.by()+`) (`+rate(names.MetricCPUUsage)+`)`), legend(""))).
			AxisLabel("CPU cores")).
		WithPanel(timeSeries("Containers' share of node CPU", "CPU used by all selected containers against the node's cores.", unitPercent,
			query(`sum by (`+o.byNode()+`) (`+rate(names.MetricCPUUsage)+`) / on (`+o.byNode()+`) max by (`+o.byNode()+`) (`+names.MetricMachineCPUCores+`{`+node+`})`, "{{instance}}")).
			Max(1)).
		WithPanel(timeSeries("CPU throttling", "Share of CFS periods in which the container hit its CPU quota (containers with a quota only). ContainerCPUThrottled fires above 25% for 15m.", unitPercent,
			query(display(`sum by (`+o.by()+`) (`+rate(names.MetricCPUCFSThrottled)+`) / (sum by (`+o.by()+`) (`+rate(names.MetricCPUCFSPeriods)+`) > 0)`), legend(""))).
			Max(1)).
		WithRow(dashboard.NewRowBuilder("Lifecycle")).
		WithPanel(bars("Restarts", "Starts of a container identity after its first start. ContainerRestartingOften fires above 5 in 10m, ContainerCrashLooping on restarts in every 10m for 15m.", unitShort,
			query(display(`sum by (`+o.by()+`) (increase(`+names.MetricContainerRestarts+`{`+c+`}[$__rate_interval]))`), legend("")))).
		WithPanel(timeSeries("Container uptime", "Time since each container last started; a saw-tooth means restarts.", unitSeconds,
			query(display(`time() - max by (`+o.by()+`) (`+names.MetricStartTime+`{`+cg+`})`), legend(""))))
}
