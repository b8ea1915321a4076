package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Label selectors every query starts from. The job and instance variables
// pick the breakwater exporters, the container variable the runtime name that
// both the security and the cAdvisor series carry.
const (
	nodeSel      = `job=~"$job", instance=~"$instance"`
	containerSel = `job=~"$job", instance=~"$instance", name=~"$container"`
)

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

// maxReduce makes a stat show the peak of the range: a burst of escape
// attempts must stay visible after it ends.
func maxReduce() *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{"max"})
}
