//lint:file-ignore SA1019 the v1 dashboard schema is what Grafana provisions from JSON files and the sidecar ConfigMap

package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// cgroupSel keeps cAdvisor series of container cgroups only, as the rules
// do: the root and system slices have no container_id, and a cgroup path
// that does not end in the 64-hex runtime id is nested inside a container
// and would count its usage twice.
const cgroupSel = containerSel + `, container_id!="", id=~".*[0-9a-f]{64}([.]scope)?"`

func resources() *dashboard.DashboardBuilder {
	limitLine := common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)
	return newDashboard(ResourcesUID, "breakwater / Container resources",
		"Memory against limits, CPU against each container's own baseline, restarts, OOM kills and CPU throttling, from breakwater's embedded cAdvisor.", true).
		WithRow(dashboard.NewRowBuilder("Memory")).
		WithPanel(timeSeries("Memory working set against limit", "Working set as a share of the container's memory limit (containers without a limit are left out). ContainerMemoryNearLimit fires above 90% for 2m.", unitPercent,
			query(`max by (instance, name) (container_memory_working_set_bytes{`+cgroupSel+`} / (container_spec_memory_limit_bytes{`+cgroupSel+`} > 0))`, "{{name}} ({{instance}})")).
			Thresholds(thresholds(step(nil, "green"), step(cog.ToPtr(0.9), "red"))).
			ThresholdsStyle(limitLine).
			Max(1)).
		WithPanel(timeSeries("Memory working set, RSS and limit", "What the kernel counts against the limit (working set), anonymous memory (RSS) and the limit itself.", unitBytes,
			query(`max by (instance, name) (container_memory_working_set_bytes{`+cgroupSel+`})`, "{{name}} working set ({{instance}})"),
			query(`max by (instance, name) (container_memory_rss{`+cgroupSel+`})`, "{{name}} RSS ({{instance}})"),
			query(`max by (instance, name) (container_spec_memory_limit_bytes{`+cgroupSel+`} > 0)`, "{{name}} limit ({{instance}})"))).
		WithPanel(timeSeries("Containers' share of node memory", "Working set of all selected containers against the node's memory.", unitPercent,
			query(`sum by (instance) (container_memory_working_set_bytes{`+cgroupSel+`}) / on (instance) max by (instance) (machine_memory_bytes{`+nodeSel+`})`, "{{instance}}")).
			Max(1)).
		WithPanel(bars("OOM events", "Out-of-memory kills inside each container.", unitShort,
			query(`sum by (instance, name) (increase(container_oom_events_total{`+cgroupSel+`}[$__rate_interval]))`, "{{name}} ({{instance}})"))).
		WithRow(dashboard.NewRowBuilder("CPU")).
		WithPanel(timeSeries("CPU usage against baseline", "Each container's 5m CPU rate next to its own 1h average; ContainerCPUSpike fires when the first runs well above the second.", unitShort,
			query(`sum by (instance, name) (breakwater:container_cpu_usage_seconds:rate5m{`+containerSel+`})`, "{{name}} ({{instance}})"),
			query(`sum by (instance, name) (breakwater:container_cpu_usage_seconds:rate5m_avg_1h{`+containerSel+`})`, "{{name}} 1h baseline ({{instance}})")).
			AxisLabel("CPU cores")).
		WithPanel(timeSeries("CPU usage", "CPU time used per second, in cores.", unitShort,
			query(`sum by (instance, name) (rate(container_cpu_usage_seconds_total{`+cgroupSel+`}[$__rate_interval]))`, "{{name}} ({{instance}})")).
			AxisLabel("CPU cores")).
		WithPanel(timeSeries("Containers' share of node CPU", "CPU used by all selected containers against the node's cores.", unitPercent,
			query(`sum by (instance) (rate(container_cpu_usage_seconds_total{`+cgroupSel+`}[$__rate_interval])) / on (instance) max by (instance) (machine_cpu_cores{`+nodeSel+`})`, "{{instance}}")).
			Max(1)).
		WithPanel(timeSeries("CPU throttling", "Share of CFS periods in which the container hit its CPU quota (containers with a quota only).", unitPercent,
			query(`sum by (instance, name) (rate(container_cpu_cfs_throttled_periods_total{`+cgroupSel+`}[$__rate_interval])) / (sum by (instance, name) (rate(container_cpu_cfs_periods_total{`+cgroupSel+`}[$__rate_interval])) > 0)`, "{{name}} ({{instance}})")).
			Max(1)).
		WithRow(dashboard.NewRowBuilder("Lifecycle")).
		WithPanel(bars("Restarts", "Starts of a container identity after its first start. ContainerRestartingOften fires above 5 in 10m.", unitShort,
			query(`sum by (instance, name) (increase(breakwater_container_restarts_total{`+containerSel+`}[$__rate_interval]))`, "{{name}} ({{instance}})"))).
		WithPanel(timeSeries("Container uptime", "Time since each container last started; a saw-tooth means restarts.", unitSeconds,
			query(`time() - max by (instance, name) (container_start_time_seconds{`+cgroupSel+`})`, "{{name}} ({{instance}})")))
}
