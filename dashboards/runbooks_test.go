package dashboards

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/internal/testenv"
)

// committedPanel is a panel of the committed JSON with its links.
type committedPanel struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	Links []struct {
		Title string `json:"title"`
		URL   string `json:"url"`
	} `json:"links"`
	Panels []committedPanel `json:"panels"`
}

// committedPanels returns every panel of the committed dashboards by
// dashboard title, and the schema versions.
func committedPanels(t *testing.T) (map[string]map[string]committedPanel, map[string]int) {
	t.Helper()
	out, versions := map[string]map[string]committedPanel{}, map[string]int{}
	for _, d := range Definitions() {
		raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "dashboards", d.File))
		if err != nil {
			t.Fatal(err)
		}
		var db struct {
			SchemaVersion int              `json:"schemaVersion"`
			Panels        []committedPanel `json:"panels"`
		}
		if err := json.Unmarshal(raw, &db); err != nil {
			t.Fatal(err)
		}
		versions[d.Title] = db.SchemaVersion
		out[d.Title] = map[string]committedPanel{}
		var walk func([]committedPanel)
		walk = func(ps []committedPanel) {
			for _, p := range ps {
				walk(p.Panels)
				if p.Type != "row" {
					out[d.Title][p.Title] = p
				}
			}
		}
		walk(db.Panels)
	}
	return out, versions
}

// runbookPanels returns the panels each runbook names, by dashboard: in a
// paragraph, **breakwater / <dashboard>** selects the dashboard and
// *<panel>* names one of its panels.
func runbookPanels(t *testing.T) map[string]map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "docs", "runbooks", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no runbooks: %v", err)
	}
	span := regexp.MustCompile(`\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*`)
	out := map[string]map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		alert := strings.TrimSuffix(filepath.Base(f), ".md")
		out[alert] = map[string][]string{}
		for _, para := range strings.Split(string(b), "\n\n") {
			if !strings.Contains(para, "**breakwater / ") {
				continue
			}
			dashboard := ""
			for _, m := range span.FindAllStringSubmatch(strings.Join(strings.Fields(para), " "), -1) {
				switch {
				case strings.HasPrefix(m[1], "breakwater / "):
					dashboard = m[1]
				case m[2] != "" && dashboard != "":
					out[alert][dashboard] = append(out[alert][dashboard], m[2])
				}
			}
		}
	}
	return out
}

// TestRunbookPanelsExist holds every panel a runbook names to a panel of
// the dashboard it names.
func TestRunbookPanelsExist(t *testing.T) {
	panels, _ := committedPanels(t)
	named := 0
	for alert, byDashboard := range runbookPanels(t) {
		for db, ps := range byDashboard {
			if panels[db] == nil {
				t.Errorf("runbook %s names dashboard %q, which does not exist", alert, db)
				continue
			}
			for _, p := range ps {
				named++
				if _, ok := panels[db][p]; !ok {
					t.Errorf("runbook %s names panel %q of %q, which has no such panel", alert, p, db)
				}
			}
		}
	}
	if named < len(names.Alerts) {
		t.Errorf("the runbooks name %d panels: fewer than one per alert, the parser misses them", named)
	}
}

// TestAlertPanelsLinkRunbooks: every alert has a panel, that panel links
// the alert's runbook, and the runbook names the panel.
func TestAlertPanelsLinkRunbooks(t *testing.T) {
	panels, _ := committedPanels(t)
	named := runbookPanels(t)
	for _, alert := range names.Alerts {
		title, ok := AlertPanels[alert]
		if !ok {
			t.Errorf("%s has no panel in AlertPanels", alert)
			continue
		}
		want := DefaultOptions().RunbookURL + alert + ".md"
		found := false
		for db, ps := range panels {
			p, ok := ps[title]
			if !ok {
				continue
			}
			found = true
			if !slices.ContainsFunc(p.Links, func(l struct {
				Title string `json:"title"`
				URL   string `json:"url"`
			}) bool {
				return l.URL == want
			}) {
				t.Errorf("%s: panel %q of %q does not link %s: %+v", alert, title, db, want, p.Links)
			}
			if !slices.Contains(named[alert][db], title) {
				t.Errorf("%s: the runbook does not name its panel %q of %q (it names %v)", alert, title, db, named[alert])
			}
		}
		if !found {
			t.Errorf("%s: no dashboard has its panel %q", alert, title)
		}
	}
}

// TestGrafanaVersions: the dashboards import into Grafana 10 and 11: their
// schema version is one those write, and they use only panel types both
// ship.
func TestGrafanaVersions(t *testing.T) {
	panels, versions := committedPanels(t)
	for db, v := range versions {
		if v != SchemaVersion || v > 39 {
			t.Errorf("%s: schemaVersion %d, want %d (Grafana 10.4 and 11.0 write 39)", db, v, SchemaVersion)
		}
		for title, p := range panels[db] {
			if !slices.Contains([]string{"timeseries", "stat", "table"}, p.Type) {
				t.Errorf("%s: panel %q is a %s, which Grafana 10 may not have", db, title, p.Type)
			}
		}
	}
}

// TestCountsAreCounts evaluates the "Escapes allowed" stat with promtool
// over an hour (Grafana's $__range): one escape of a container born within
// the range reads 1, a counter that rose by one reads 1, an old one that did
// not rise 0, so the stat shows 2, not a rate.
func TestCountsAreCounts(t *testing.T) {
	qs, err := Queries(SecurityUID, Vars{})
	if err != nil {
		t.Fatal(err)
	}
	var expr string
	for _, q := range qs {
		if q.Panel == "Escapes allowed" {
			expr = q.Expr
		}
	}
	if expr == "" {
		t.Fatal("no Escapes allowed stat")
	}
	series := func(id, values string) string {
		return `      - series: 'breakwater_escape_attempts_total{job="breakwater", instance="n1", container_id="` + id + `", name="` + id + `", technique="mount", result="allowed"}'` + "\n        values: '" + values + "'\n"
	}
	test := "evaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n" +
		series("born", "_x10 1x50") + series("rose", "2x20 3x40") + series("old", "5x60") +
		"    promql_expr_test:\n      - expr: '" + strings.ReplaceAll(expr, "'", "''") + "'\n        eval_time: 60m\n        exp_samples:\n          - value: 2\n"
	f := filepath.Join(t.TempDir(), "count.test.yml")
	if err := os.WriteFile(f, []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(testenv.Tool(t, "promtool"), "test", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
}
