//lint:file-ignore SA1019 the v1 dashboard schema is what Grafana provisions from JSON files and the sidecar ConfigMap

package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/breakwater/breakwater/internal/names"
)

func health(o Options) *dashboard.DashboardBuilder {
	n := o.nodeSel()
	failedRe, failedColor := severityColors("(failed|dropped)")
	return newDashboard(HealthUID, "breakwater / Health",
		"Is breakwater able to see? Probes attached, events lost, tracked containers, scrape cost per collector and Alertmanager pushes.", false, o).
		WithRow(dashboard.NewRowBuilder("Overview")).
		WithPanel(singleStat("Exporters up", "Selected breakwater targets Prometheus scrapes successfully.", unitShort, 0,
			query(`sum(`+names.MetricUp+`{`+n+`})`, "up")).
			Thresholds(thresholds(step(nil, "red"), step(cog.ToPtr(1.0), "green")))).
		WithPanel(singleStat("Probes attached", "BPF programs attached across the selected nodes.", unitShort, 0,
			query(`sum(`+names.MetricBPFProgramAttached+`{`+n+`})`, "attached")).
			Thresholds(thresholds(step(nil, "red"), step(cog.ToPtr(1.0), "green")))).
		WithPanel(singleStat("Tracked containers", "Containers breakwater currently attributes events to.", unitShort, 1e9,
			query(`sum(`+names.MetricTrackedContainers+`{`+n+`})`, "containers")).
			ColorMode("value")).
		WithPanel(singleStat("Events lost", "Kernel records breakwater dropped within the time range (BreakwaterEventsLost); by reason on the panel below: ringbuf_full costs log lines and pushes, the other reasons undercount counters.", unitShort, 1,
			instantQuery(countInRange(names.MetricBPFEventsLost, n), "lost"))).
		WithPanel(instantTable("Build", "Version of each breakwater exporter.", unitShort,
			tableQuery(`max by (`+o.byNode("version", "revision", "goversion")+`) (`+names.MetricBuildInfo+`{`+n+`})`))).
		WithRow(dashboard.NewRowBuilder("Probes and events")).
		WithPanel(timeSeries("Probes attached by program", "1 while a BPF program is attached to its hook; a drop to 0 makes breakwater blind to what that hook sees (BreakwaterProbeDetached).", unitShort,
			query(`max by (`+o.byNode("program", "hook")+`) (`+names.MetricBPFProgramAttached+`{`+n+`})`, "{{program}} on {{hook}} ({{instance}})")).
			Max(1)).
		WithPanel(timeSeries("Events lost", "Kernel events dropped per second, by reason (BreakwaterEventsLost).", unitCountPerS,
			query(`sum by (`+o.byNode("reason")+`) (rate(`+names.MetricBPFEventsLost+`{`+n+`}[$__rate_interval]))`, "{{reason}} ({{instance}})"))).
		WithPanel(timeSeries("Escape events folded", "Repeated escape attempts that travel as a count with the next event instead of one event each (--collector.security.event-interval); the counters have them all. A high rate is a container hammering one attempt.", unitCountPerS,
			query(`sum by (`+o.byNode()+`) (rate(`+names.MetricBPFEventsFolded+`{`+n+`}[$__rate_interval]))`, "{{instance}}"))).
		WithPanel(timeSeries("Tracked containers", "Containers with live identity; capped by --collector.security.max-containers.", unitShort,
			query(`max by (`+o.byNode()+`) (`+names.MetricTrackedContainers+`{`+n+`})`, "{{instance}}"))).
		WithPanel(timeSeries("Series expired", "Per-container series dropped per second after their container exited.", unitOpsPerSec,
			query(`sum by (`+o.byNode()+`) (rate(`+names.MetricSeriesExpired+`{`+n+`}[$__rate_interval]))`, "{{instance}}"))).
		WithRow(dashboard.NewRowBuilder("Scrapes")).
		WithPanel(timeSeries("Scrape duration per collector", "Time each collector took in the last scrape.", unitSeconds,
			query(`max by (`+o.byNode("collector")+`) (`+names.MetricScrapeCollectorDuration+`{`+n+`})`, "{{collector}} ({{instance}})"))).
		WithPanel(timeSeries("Collector success", "1 when the collector's last scrape succeeded; a failing collector never takes the others down.", unitShort,
			query(`min by (`+o.byNode("collector")+`) (`+names.MetricScrapeCollectorSuccess+`{`+n+`})`, "{{collector}} ({{instance}})")).
			Max(1)).
		WithPanel(timeSeries("Prometheus scrape duration", "Whole scrape as Prometheus measured it.", unitSeconds,
			query(`max by (`+o.byNode()+`) (`+names.MetricScrapeDuration+`{`+n+`})`, "{{instance}}"))).
		WithRow(dashboard.NewRowBuilder("Alertmanager")).
		WithPanel(timeSeries("Alertmanager pushes by result", "Escape alerts pushed straight to Alertmanager per second, by result: sent, failed (retried), dropped, folded into an alert already sent.", unitReqPerSec,
			query(`sum by (`+o.byNode("result")+`) (rate(`+names.MetricAlertmanagerNotifications+`{`+n+`}[$__rate_interval]))`, "{{result}} ({{instance}})")).
			OverrideByRegexp(failedRe, failedColor)).
		WithRow(dashboard.NewRowBuilder("State")).
		WithPanel(timeSeries("State files", "Each state file's state (profiles, undelivered alerts): a line at 1 is the state it is in; anything but ok loses what the file holds at the next restart.", unitShort,
			query(`max by (`+o.byNode("file", "state")+`) (`+names.MetricStateFile+`{`+n+`})`, "{{file}} {{state}} ({{instance}})")))
}
