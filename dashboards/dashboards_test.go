//lint:file-ignore SA1019 the v1 dashboard schema is what Grafana provisions from JSON files and the sidecar ConfigMap

package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/internal/testenv"
)

// knownMetrics is the one list of metric names a dashboard may query, with
// who produces them: breakwater, its embedded cAdvisor, and Prometheus itself
// for the scrape and alert series, all spelt by package names. Recording
// rules come from rules/breakwater.rules.yml (see recordingRules).
func knownMetrics() map[string]string {
	known := map[string]string{
		names.MetricUp:             "Prometheus",
		names.MetricScrapeDuration: "Prometheus",
		names.MetricAlerts:         "Prometheus",
	}
	for _, m := range names.BreakwaterMetrics {
		known[m] = "breakwater"
	}
	for _, m := range names.CAdvisorMetrics {
		known[m] = "cAdvisor"
	}
	return known
}

const rulesFile = "rules/breakwater.rules.yml"

type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Record string `json:"record"`
			Alert  string `json:"alert"`
		} `json:"rules"`
	} `json:"groups"`
}

// readRules returns the recording and alerting rule names of the rules file,
// and false while that file does not exist yet.
func readRules(t *testing.T) (records, alerts []string, ok bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), rulesFile))
	if os.IsNotExist(err) {
		return nil, nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				records = append(records, r.Record)
			}
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	return records, alerts, true
}

func recordingRules(t *testing.T) []string {
	records, _, ok := readRules(t)
	if !ok {
		t.Fatalf("%s is missing: run make rules", rulesFile)
	}
	return records
}

// sentinelRate stands in for $__rate_interval so that the check below can
// tell it apart from a hard-coded range.
const sentinelRate = "7m13s"

var uids = []string{SecurityUID, ResourcesUID, HealthUID}

func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := Files(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	root := testenv.RepoRoot(t)
	for _, p := range Paths(files) {
		got, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Errorf("%s: %v (run `make dashboards` and commit)", p, err)
			continue
		}
		if !bytes.Equal(got, files[p]) {
			t.Errorf("%s differs from the generator's output: run `make dashboards` and commit", p)
		}
	}
	// A dashboard dropped from the generator must not linger as JSON.
	committed, _ := filepath.Glob(filepath.Join(root, "dashboards", "*.json"))
	for _, c := range committed {
		rel := "dashboards/" + filepath.Base(c)
		if _, ok := files[rel]; !ok {
			t.Errorf("%s is not produced by the generator: delete it or add it to Definitions", rel)
		}
	}
}

// TestQueriesUseKnownMetrics parses every panel and variable query with the
// Prometheus parser and fails on metrics nobody produces and on ranges that
// are not $__rate_interval.
func TestQueriesUseKnownMetrics(t *testing.T) {
	known := knownMetrics()
	for _, r := range recordingRules(t) {
		known[r] = "recording rule"
	}
	p := parser.NewParser(parser.Options{})
	used := map[string]bool{}
	for _, uid := range uids {
		qs, err := AllQueries(uid, Vars{Cluster: "eu", Job: "breakwater", Instance: "node-1:9760", Namespace: "shop", Pod: "web-0", Container: "web", RateInterval: sentinelRate})
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) < 5 {
			t.Fatalf("%s: only %d queries", uid, len(qs))
		}
		for _, q := range qs {
			expr, err := p.ParseExpr(q.Expr)
			if err != nil {
				t.Errorf("%s: %q does not parse: %v", q, q.Expr, err)
				continue
			}
			if q.Variable != "" {
				if _, ok := expr.(*parser.VectorSelector); !ok {
					t.Errorf("%s: label_values() needs a series selector, got %q", q, q.Expr)
				}
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				switch n := n.(type) {
				case *parser.VectorSelector:
					name := metricName(n)
					if name == "" {
						t.Errorf("%s: selector %s has no fixed metric name", q, n)
					} else if _, ok := known[name]; !ok {
						t.Errorf("%s: metric %q is produced by neither breakwater, cAdvisor, Prometheus nor the recording rules", q, name)
					}
					used[name] = true
				case *parser.MatrixSelector:
					// [$__range] (1h here) is for counts over the time range.
					if got := n.Range.String(); got != sentinelRate && !(got == "1h0m0s" && strings.Contains(q.Raw, "[$__range]")) {
						t.Errorf("%s: range [%s] in %q: use [$__rate_interval], or [$__range] for a count over the time range", q, got, q.Raw)
					}
				case *parser.SubqueryExpr:
					t.Errorf("%s: subquery in %q: use a recording rule", q, q.Raw)
				}
				return nil
			})
		}
	}
	// The issue asks for these on the dashboards; losing one is a regression.
	for _, m := range []string{
		"breakwater_escape_attempts_total", "breakwater_syscalls_denied_total", "breakwater_capability_checks_total",
		"breakwater_namespace_operations_total", "breakwater_mount_operations_total", "breakwater_container_capabilities", "ALERTS",
		"container_memory_working_set_bytes", "container_spec_memory_limit_bytes", "breakwater:container_cpu_usage_seconds:rate5m_avg_1h",
		"breakwater_container_restarts_total", "container_oom_events_total", "container_cpu_cfs_throttled_periods_total",
		"breakwater_bpf_program_attached", "breakwater_bpf_events_lost_total", "breakwater_bpf_events_folded_total", "breakwater_tracked_containers",
		"breakwater_scrape_collector_duration_seconds", "breakwater_alertmanager_notifications_total",
		names.MetricSyscallsNovel, names.MetricScrapeCollectorSuccess, names.MetricCPUCFSPeriods,
	} {
		if !used[m] {
			t.Errorf("no dashboard shows %s", m)
		}
	}
}

func metricName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == "__name__" && m.Type.String() == "=" {
			return m.Value
		}
	}
	return ""
}

// TestAlertPanelsCoverRules fails when the rules file defines an alert the
// firing-alerts panels would not show.
func TestAlertPanelsCoverRules(t *testing.T) {
	_, alerts, ok := readRules(t)
	if !ok {
		t.Skipf("%s not there yet", rulesFile)
	}
	re := regexp.MustCompile(`^(?:` + AlertNames + `)$`)
	if len(alerts) == 0 {
		t.Fatalf("%s defines no alerts", rulesFile)
	}
	for _, a := range alerts {
		if !re.MatchString(a) {
			t.Errorf("alert %s does not match the firing-alerts selector %q", a, AlertNames)
		}
	}
}

// dashboardJSON is what the convention checks read from the committed JSON.
type dashboardJSON struct {
	UID        string   `json:"uid"`
	Title      string   `json:"title"`
	Tags       []string `json:"tags"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panelJSON `json:"panels"`
}

func TestConventions(t *testing.T) {
	for _, d := range Definitions() {
		t.Run(d.UID, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "dashboards", d.File))
			if err != nil {
				t.Fatal(err)
			}
			var db dashboardJSON
			if err := json.Unmarshal(raw, &db); err != nil {
				t.Fatal(err)
			}
			// The SDK's strict decoder knows Grafana's schema: unknown or
			// mistyped fields in the committed JSON fail here.
			plugins.RegisterDefaultPlugins()
			var typed dashboard.Dashboard
			// The SDK returns a typed-nil cog.BuildErrors when all is well.
			var buildErrs cog.BuildErrors
			if err := typed.UnmarshalJSONStrict(raw); err != nil && !(errors.As(err, &buildErrs) && len(buildErrs) == 0) {
				t.Errorf("committed JSON does not match Grafana's dashboard schema: %v", err)
			}
			if db.UID != d.UID || db.Title != d.Title {
				t.Errorf("uid/title = %q/%q, want %q/%q", db.UID, db.Title, d.UID, d.Title)
			}
			if !slices.Contains(db.Tags, "breakwater") {
				t.Errorf("tags %v lack breakwater", db.Tags)
			}
			vars := map[string]string{}
			for _, v := range db.Templating.List {
				vars[v.Name] = v.Type
				if v.Type == "datasource" && string(v.Query) != `"prometheus"` {
					t.Errorf("datasource variable %s selects %s, want prometheus", v.Name, v.Query)
				}
				if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
					t.Errorf("variable %s does not query ${datasource}", v.Name)
				}
			}
			want := map[string]string{"datasource": "datasource", "cluster": "query", "job": "query", "instance": "query"}
			if d.UID != HealthUID {
				want["namespace"], want["pod"], want["container"] = "query", "query", "query"
			}
			for name, typ := range want {
				if vars[name] != typ {
					t.Errorf("variable %s: type %q, want %q", name, vars[name], typ)
				}
			}
			var walk func([]panelJSON)
			panels := 0
			walk = func(ps []panelJSON) {
				for _, p := range ps {
					walk(p.Panels)
					if p.Type == "row" {
						continue
					}
					panels++
					if p.FieldConfig.Defaults.Unit == "" {
						t.Errorf("panel %q has no unit", p.Title)
					}
					if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
						t.Errorf("panel %q does not use ${datasource}", p.Title)
					}
					if len(p.Targets) == 0 {
						t.Errorf("panel %q has no query", p.Title)
					}
					for _, tg := range p.Targets {
						if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
							t.Errorf("panel %q query %s does not use ${datasource}", p.Title, tg.RefID)
						}
						if strings.Contains(tg.Expr, "rate(") && !strings.Contains(tg.Expr, "$__rate_interval") {
							t.Errorf("panel %q: rate without $__rate_interval: %s", p.Title, tg.Expr)
						}
					}
				}
			}
			walk(db.Panels)
			if panels < 5 {
				t.Errorf("only %d panels", panels)
			}
		})
	}
}

func TestSubstitute(t *testing.T) {
	v := Vars{Job: "breakwater", Instance: "n1:9760", RateInterval: "2m"}
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: `rate(x{instance=~"$instance"}[$__rate_interval])`, want: `rate(x{instance=~"n1:9760"}[2m])`},
		{in: `x{job=~"${job}", name=~"${container:regex}"}`, want: `x{job=~"breakwater", name=~".*"}`},
		{in: `x{a="$nope"}`, err: "unknown Grafana variable(s) nope"},
	} {
		got, err := Substitute(tc.in, v)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Substitute(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Substitute(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := Queries("nope", v); err == nil {
		t.Error("Queries of an unknown uid did not fail")
	}
}

// TestQueriesKeepContainersApart: every per-container aggregation keeps the
// cluster, the node, the namespace and the pod, so two replicas of one
// container name on a node are two lines, and legends name them by the
// display label (namespace/pod/name, or the name alone).
func TestQueriesKeepContainersApart(t *testing.T) {
	by := regexp.MustCompile(`by \(([^)]*)\)`)
	for _, uid := range []string{SecurityUID, ResourcesUID} {
		raw, err := JSON(uid, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		var db struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr   string `json:"expr"`
					Legend string `json:"legendFormat"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(raw, &db); err != nil {
			t.Fatal(err)
		}
		for _, p := range db.Panels {
			for _, tg := range p.Targets {
				for _, m := range by.FindAllStringSubmatch(tg.Expr, -1) {
					l := strings.Split(m[1], ", ")
					if slices.Contains(l, "name") && !(slices.Contains(l, "cluster") && slices.Contains(l, "instance") && slices.Contains(l, "namespace") && slices.Contains(l, "pod")) {
						t.Errorf("%s panel %q aggregates by (%s): replicas of one name would merge", uid, p.Title, m[1])
					}
				}
				if strings.Contains(tg.Legend, "{{name}}") {
					t.Errorf("%s panel %q legend %q: use {{display}}", uid, p.Title, tg.Legend)
				}
				if strings.Contains(tg.Legend, "{{display}}") && !strings.Contains(tg.Expr, `"display"`) {
					t.Errorf("%s panel %q legend %q without the display label", uid, p.Title, tg.Legend)
				}
			}
		}
	}
}

// TestAlertPanelsScoped: the firing-alerts panels show the selected
// cluster, job and instance only.
func TestAlertPanelsScoped(t *testing.T) {
	qs, err := Queries(SecurityUID, Vars{Cluster: "eu", Job: "bw", Instance: "n1:9760"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, q := range qs {
		if !strings.Contains(q.Expr, "ALERTS{") {
			continue
		}
		n++
		for _, m := range []string{`cluster=~"eu"`, `job=~"bw"`, `instance=~"n1:9760"`} {
			if !strings.Contains(q.Expr, m) {
				t.Errorf("%s: %s lacks %s", q, q.Expr, m)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d alert queries, want the stat and the table", n)
	}
}

// TestWithoutClusterLabel: a pack configured without a cluster label gets
// dashboards without the cluster variable, whose queries still parse.
func TestWithoutClusterLabel(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	for _, uid := range uids {
		raw, err := JSON(uid, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), "$cluster") || strings.Contains(string(raw), `"name": "cluster"`) {
			t.Errorf("%s mentions the cluster without a cluster label", uid)
		}
		var db struct {
			Panels []panelJSON `json:"panels"`
		}
		if err := json.Unmarshal(raw, &db); err != nil {
			t.Fatal(err)
		}
		for _, pj := range db.Panels {
			for _, tg := range pj.Targets {
				expr, err := Substitute(tg.Expr, Vars{})
				if err == nil {
					_, err = p.ParseExpr(expr)
				}
				if err != nil {
					t.Errorf("%s panel %q: %v", uid, pj.Title, err)
				}
			}
		}
	}
}
