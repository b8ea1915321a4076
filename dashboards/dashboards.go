//lint:file-ignore SA1019 the v1 dashboard schema is what Grafana provisions from JSON files and the sidecar ConfigMap

// Package dashboards builds breakwater's Grafana dashboards with the
// grafana-foundation-sdk. The committed JSON under dashboards/ and the Grafana
// provisioning files under deploy/grafana/ are outputs of this package
// (`make dashboards`), never edited by hand.
package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"

	"github.com/breakwater/breakwater/internal/names"
)

// Stable dashboard uids: links, bookmarks and the e2e test depend on them.
const (
	SecurityUID  = names.DashboardSecurity
	ResourcesUID = names.DashboardResources
	HealthUID    = names.DashboardHealth
)

// Tags every breakwater dashboard carries, so Grafana's dashboard links and
// search group them.
var tags = []string{"breakwater", "containers"}

// Definition is one dashboard: its uid, the file it is committed as and its
// builder.
type Definition struct {
	UID   string
	Title string
	File  string // file name under dashboards/ and key in the ConfigMap
	build func(Options) *dashboard.DashboardBuilder
}

// Definitions lists the dashboards in a fixed order.
func Definitions() []Definition {
	return []Definition{
		{UID: SecurityUID, Title: "breakwater / Container security", File: "breakwater-security.json", build: security},
		{UID: ResourcesUID, Title: "breakwater / Container resources", File: "breakwater-resources.json", build: resources},
		{UID: HealthUID, Title: "breakwater / Health", File: "breakwater-health.json", build: health},
	}
}

func lookup(uid string) (Definition, error) {
	for _, d := range Definitions() {
		if d.UID == uid {
			return d, nil
		}
	}
	return Definition{}, fmt.Errorf("dashboards: unknown uid %q", uid)
}

// Build returns the dashboard with the given uid.
func Build(uid string, o Options) (dashboard.Dashboard, error) {
	d, err := lookup(uid)
	if err != nil {
		return dashboard.Dashboard{}, err
	}
	db, err := d.build(o).Build()
	if err != nil {
		return dashboard.Dashboard{}, err
	}
	numberPanels(db.Panels)
	linkRunbooks(db.Panels, o)
	// What Grafana 10.4 and 11 write: both import it (the SDK's default,
	// 42, is Grafana 12's).
	db.SchemaVersion = SchemaVersion
	return db, nil
}

// SchemaVersion is the dashboard schema version of the committed JSON.
const SchemaVersion = 39

// AlertPanels are the panel each alert is seen on, by alert: it links the
// alert's runbook, and the runbook names it first.
var AlertPanels = map[string]string{
	names.AlertMemoryNearLimit:        "Memory working set against limit",
	names.AlertCPUSpike:               "CPU usage against baseline",
	names.AlertCPUThrottled:           "CPU throttling",
	names.AlertRestartingOften:        "Restarts",
	names.AlertCrashLooping:           "Restarts",
	names.AlertOOMKilled:              "OOM events",
	names.AlertEscapeAttempt:          "Escape attempts by container",
	names.AlertEscapeSucceeded:        "Escapes allowed",
	names.AlertNovelSyscall:           "Novel syscalls",
	names.AlertSyscallsDeniedBurst:    "Seccomp refusals against baseline",
	names.AlertPrivilegedCapabilities: "Containers running with dangerous capabilities",
	names.AlertBreakwaterDown:         "Exporters up",
	names.AlertProbeDetached:          "Probes attached",
	names.AlertEventsLost:             "Events lost",
	names.AlertCollectorFailed:        "Collector success",
	names.AlertPushFailing:            "Alertmanager pushes by result",
	names.AlertStateFileProblem:       "State files",
}

// linkRunbooks gives each alert's panel a link to the alert's runbook.
func linkRunbooks(ps []dashboard.PanelOrRowPanel, o Options) {
	byPanel := map[string][]string{}
	for _, a := range sortedKeys(AlertPanels) {
		byPanel[AlertPanels[a]] = append(byPanel[AlertPanels[a]], a)
	}
	link := func(p *dashboard.Panel) {
		if p.Title == nil {
			return
		}
		for _, a := range byPanel[*p.Title] {
			p.Links = append(p.Links, dashboard.DashboardLink{
				Title: "Runbook: " + a, Type: dashboard.DashboardLinkTypeLink, Url: cog.ToPtr(o.RunbookURL + a + ".md"),
				Tags: []string{}, TargetBlank: true,
			})
		}
	}
	for _, p := range ps {
		switch {
		case p.Panel != nil:
			link(p.Panel)
		case p.RowPanel != nil:
			for i := range p.RowPanel.Panels {
				link(&p.RowPanel.Panels[i])
			}
		}
	}
}

// numberPanels gives rows and panels unique ids in layout order: Grafana
// keys panel links, view mode and library references by id.
func numberPanels(ps []dashboard.PanelOrRowPanel) {
	id := uint32(0)
	next := func() uint32 { id++; return id }
	for _, p := range ps {
		switch {
		case p.Panel != nil:
			p.Panel.Id = cog.ToPtr(next())
		case p.RowPanel != nil:
			p.RowPanel.Id = next()
			for i := range p.RowPanel.Panels {
				p.RowPanel.Panels[i].Id = cog.ToPtr(next())
			}
		}
	}
}

// JSON returns the dashboard as the indented JSON that is committed (with
// DefaultOptions).
func JSON(uid string, o Options) ([]byte, error) {
	db, err := Build(uid, o)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keep PromQL's <, > and & readable in review
	if err := enc.Encode(db); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// datasource is the reference every panel, query and variable uses: the
// dashboard's own `datasource` variable, never a hard-wired name.
func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
}

// newDashboard sets what all three dashboards share: uid, tags, time, the
// datasource/cluster/job/instance variables and links to each other; the
// per-container dashboards add namespace, pod and container.
func newDashboard(uid, title, description string, container bool, o Options) *dashboard.DashboardBuilder {
	b := dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags(tags).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Link(dashboard.NewDashboardLinkBuilder("breakwater").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"breakwater"}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true)).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Type("prometheus"))
	// Every filter offers All (".*"), which also matches series without
	// the label: a single cluster has no cluster label, a Docker host no
	// namespace or pod.
	if o.ClusterLabel != "" {
		b = b.WithVariable(queryVariable(names.VarCluster, "Cluster", `label_values(`+names.MetricBuildInfo+`, `+o.ClusterLabel+`)`, false, true))
	}
	b = b.WithVariable(queryVariable(names.VarJob, "Job", `label_values(`+names.MetricBuildInfo+o.clusterSel()+`, job)`, false, false)).
		WithVariable(queryVariable(names.VarInstance, "Node (instance)", `label_values(`+names.MetricBuildInfo+`{`+o.jobSel()+`}, instance)`, true, true))
	if container {
		started := names.MetricStartTime + `{` + o.nodeSel() + `, container_id!=""`
		b = b.WithVariable(queryVariable(names.VarNamespace, "Namespace", `label_values(`+started+`}, namespace)`, true, true)).
			WithVariable(queryVariable(names.VarPod, "Pod", `label_values(`+started+`, namespace=~"$namespace"}, pod)`, true, true)).
			WithVariable(queryVariable(names.VarContainer, "Container", `label_values(`+started+`, namespace=~"$namespace", pod=~"$pod"}, name)`, true, true))
	}
	return b
}

// queryVariable is a variable from label_values(); all adds All as ".*"
// rather than Grafana's joined list: containers come and go within the time
// range and must not fall out of "All", and ".*" matches an absent label.
func queryVariable(name, label, query string, multi, all bool) *dashboard.QueryVariableBuilder {
	v := dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
	if multi {
		v = v.Multi(true)
	}
	if all {
		v = v.IncludeAll(true).AllValue(".*")
	}
	return v
}

// query is a range query with a legend.
func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(datasource()).
		Expr(expr).
		LegendFormat(legend).
		Range()
}

// instantQuery is one value at the end of the time range, for a stat.
func instantQuery(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(datasource()).
		Expr(expr).
		LegendFormat(legend).
		Instant()
}

// countInRange is how much the counters metric{sel} rose within the
// dashboard's time range, summed, as a count: one escape reads 1, not a
// rate of 0.003/s. A series born within the range counts whole (the security
// counters appear with their first event, which increase() would miss); one
// that restarted from zero counts nothing rather than a negative.
func countInRange(metric, sel string) string {
	s := metric + "{" + sel + "}"
	now := "last_over_time(" + s + "[$__range])"
	before := "last_over_time(" + s + "[$__range] offset $__range)"
	return "sum((" + now + " - " + before + ") >= 0 or (" + now + " unless " + before + "))"
}

// tableQuery is an instant query formatted as a table.
func tableQuery(expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(datasource()).
		Expr(expr).
		Format(prometheus.PromQueryFormatTable).
		Instant()
}

// targets turns query builders into the panel targets with stable refIds.
func targets(qs ...*prometheus.DataqueryBuilder) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(qs))
	for i, q := range qs {
		out[i] = q.RefId(string(rune('A' + i)))
	}
	return out
}

func thresholds(steps ...dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(steps)
}

func step(value *float64, color string) dashboard.Threshold {
	return dashboard.Threshold{Value: value, Color: color}
}

func tableLegend() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().
		DisplayMode(common.LegendDisplayModeTable).
		Placement(common.LegendPlacementBottom).
		ShowLegend(true).
		Calcs([]string{"max", "lastNotNull"}).
		SortBy("Max").
		SortDesc(true)
}

// sortedKeys keeps generated output deterministic.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
