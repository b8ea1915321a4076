package dashboards

import (
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/rules"
)

// Options are what the dashboards take from the rule pack's configuration
// (rules.Config): the same cluster label as the rules.
type Options struct {
	// ClusterLabel tells clusters apart; empty leaves out the cluster
	// variable and matcher.
	ClusterLabel string
	// RunbookURL is the base the alert panels' runbook links append
	// "<alert>.md" to, as the rules' runbook_url does.
	RunbookURL string
}

// DefaultOptions are the options of the committed dashboards: the pack's defaults.
func DefaultOptions() Options {
	return Options{ClusterLabel: rules.Default().ClusterLabel, RunbookURL: rules.Default().RunbookURL}
}

// nodeSel picks the selected exporters; with All (".*") a variable also
// matches series without the label, so the dashboards work on a plain
// Docker host (no namespace, pod) and on one cluster (no cluster label).
func (o Options) nodeSel() string { return o.jobSel() + `, instance=~"$instance"` }

// jobSel picks the selected cluster and job.
func (o Options) jobSel() string {
	if o.ClusterLabel == "" {
		return `job=~"$job"`
	}
	return o.ClusterLabel + `=~"$cluster", job=~"$job"`
}

// clusterSel is the selected cluster as a whole selector, or nothing.
func (o Options) clusterSel() string {
	if o.ClusterLabel == "" {
		return ""
	}
	return `{` + o.ClusterLabel + `=~"$cluster"}`
}

// containerSel picks the selected containers: by Kubernetes namespace and
// pod, and by runtime name, which both the security and the cAdvisor series
// carry.
func (o Options) containerSel() string {
	return o.nodeSel() + `, namespace=~"$namespace", pod=~"$pod", name=~"$container"`
}

// by is the aggregation that keeps one line per container: two replicas of
// a container name on one node are two pods. extra are added after.
func (o Options) by(extra ...string) string {
	l := []string{names.LabelInstance, names.LabelNamespace, names.LabelPod, names.LabelName}
	if o.ClusterLabel != "" {
		l = append([]string{o.ClusterLabel}, l...)
	}
	return strings.Join(append(l, extra...), ", ")
}

// byNode is the aggregation per exporter.
func (o Options) byNode(extra ...string) string {
	l := []string{names.LabelInstance}
	if o.ClusterLabel != "" {
		l = append([]string{o.ClusterLabel}, l...)
	}
	return strings.Join(append(l, extra...), ", ")
}

// display labels a per-container series "namespace/pod/name", or "name"
// where it has no pod (a plain Docker container), for legends: what keeps
// replicas apart without "//" before every Docker name.
func display(expr string) string {
	return `label_replace(label_join(` + expr + `, "display", "/", "namespace", "pod", "name"), "display", "$1", "display", "//(.*)")`
}

// Legend of a per-container series: display, then what, then the node.
func legend(what string) string {
	if what == "" {
		return "{{display}} ({{instance}})"
	}
	return "{{display}} " + what + " ({{instance}})"
}

// Grafana unit ids used below.
const (
	unitOpsPerSec = "ops"   // operations per second
	unitCountPerS = "cps"   // counts per second
	unitReqPerSec = "reqps" // requests per second
	unitShort     = "short" // plain numbers, SI-shortened
	unitPercent   = "percentunit"
	unitBytes     = "bytes"
	unitSeconds   = "s"
)

// timeSeries is a line panel; every panel gets a unit.
func timeSeries(title, description, unit string, qs ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit(unit).
		Min(0).
		FillOpacity(10).
		ShowPoints(common.VisibilityModeNever).
		Legend(tableLegend()).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)).
		Targets(targets(qs...)).
		Height(8).
		Span(12)
}

// bars is a time series drawn as bars, for sparse events (restarts, OOMs).
func bars(title, description, unit string, qs ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	return timeSeries(title, description, unit, qs...).
		DrawStyle(common.GraphDrawStyleBars).
		FillOpacity(80).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))
}

// singleStat shows one number, red when it reaches red.
func singleStat(title, description, unit string, red float64, q *prometheus.DataqueryBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit(unit).
		NoValue("0").
		GraphMode(common.BigValueGraphModeArea).
		ColorMode(common.BigValueColorModeBackground).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		Thresholds(thresholds(step(nil, "green"), step(cog.ToPtr(red), "red"))).
		Targets(targets(q)).
		Height(4).
		Span(6)
}

// instantTable lists the current series of an instant query.
func instantTable(title, description, unit string, q *prometheus.DataqueryBuilder) *table.PanelBuilder {
	return table.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit(unit).
		Targets(targets(q)).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"})).
		// The table format returns a Time column that says nothing here.
		WithTransformation(dashboard.DataTransformerConfig{
			Id:      "organize",
			Options: map[string]any{"excludeByName": map[string]any{"Time": true}},
		}).
		Height(8).
		Span(24)
}

// severityColors paints the severe half of a result pair red.
func severityColors(severe string) (string, []dashboard.DynamicConfigValue) {
	return ".*" + severe + ".*", []dashboard.DynamicConfigValue{
		{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "red"}},
	}
}
