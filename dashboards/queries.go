package dashboards

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Vars are the values Grafana would put in for the dashboard variables.
// Empty fields mean "All" (".*"); an empty RateInterval means 1m, which is
// $__rate_interval for a 15s scrape interval.
type Vars struct {
	Cluster, Job, Instance, Namespace, Pod, Container string
	RateInterval                                      string
}

func (v Vars) values() map[string]string {
	or := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	return map[string]string{
		"cluster":         or(v.Cluster, ".*"),
		"job":             or(v.Job, ".*"),
		"instance":        or(v.Instance, ".*"),
		"namespace":       or(v.Namespace, ".*"),
		"pod":             or(v.Pod, ".*"),
		"container":       or(v.Container, ".*"),
		"datasource":      "prometheus",
		"__rate_interval": or(v.RateInterval, "1m"),
		"__range":         "1h",
	}
}

// varRef matches $name, ${name} and ${name:format}. A name starts with a
// letter or _: $1 is a regular expression's group (label_replace), which
// Grafana leaves alone.
var varRef = regexp.MustCompile(`\$(?:\{([A-Za-z_]\w*)(?::\w+)?\}|([A-Za-z_]\w*))`)

// Substitute replaces Grafana variables in expr as Grafana would for a
// single selected value. Unknown variables are an error: a query that only
// works in Grafana is a bug.
func Substitute(expr string, v Vars) (string, error) {
	vals := v.values()
	var missing []string
	out := varRef.ReplaceAllStringFunc(expr, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		val, ok := vals[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return val
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown Grafana variable(s) %s in %q", strings.Join(missing, ", "), expr)
	}
	return out, nil
}

// Query is one PromQL expression of a dashboard, located by panel and refId
// (or by variable name, for variable queries).
type Query struct {
	Dashboard string // uid
	Panel     string // panel title; empty for a variable
	RefID     string
	Variable  string // variable name; empty for a panel query
	Raw       string // as committed, with Grafana variables
	Expr      string // variables substituted; for a variable, the selector of label_values
	Instant   bool
}

func (q Query) String() string {
	if q.Variable != "" {
		return fmt.Sprintf("%s variable %s", q.Dashboard, q.Variable)
	}
	return fmt.Sprintf("%s panel %q %s", q.Dashboard, q.Panel, q.RefID)
}

// Queries returns every panel query of the dashboard with the given uid (as
// committed, DefaultOptions), with Grafana variables replaced from v, in
// panel order. The e2e test runs them
// against a live Prometheus to prove no panel is empty.
func Queries(uid string, v Vars) ([]Query, error) {
	all, err := AllQueries(uid, v)
	if err != nil {
		return nil, err
	}
	var out []Query
	for _, q := range all {
		if q.Variable == "" {
			out = append(out, q)
		}
	}
	return out, nil
}

// labelValues matches Grafana's label_values(selector, label) variable query.
var labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*(\w+)\s*\)\s*$`)

// AllQueries is Queries plus the variable queries, whose Expr is the series
// selector inside label_values().
func AllQueries(uid string, v Vars) ([]Query, error) {
	raw, err := JSON(uid, DefaultOptions())
	if err != nil {
		return nil, err
	}
	var db struct {
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []panelJSON `json:"panels"`
	}
	if err := json.Unmarshal(raw, &db); err != nil {
		return nil, err
	}
	var out []Query
	for _, tv := range db.Templating.List {
		if tv.Type != "query" {
			continue
		}
		var s string
		if err := json.Unmarshal(tv.Query, &s); err != nil {
			return nil, fmt.Errorf("%s variable %s: query is not a string: %w", uid, tv.Name, err)
		}
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			return nil, fmt.Errorf("%s variable %s: not a label_values() query: %q", uid, tv.Name, s)
		}
		expr, err := Substitute(m[1], v)
		if err != nil {
			return nil, fmt.Errorf("%s variable %s: %w", uid, tv.Name, err)
		}
		out = append(out, Query{Dashboard: uid, Variable: tv.Name, Raw: s, Expr: expr})
	}
	var walk func([]panelJSON) error
	walk = func(ps []panelJSON) error {
		for _, p := range ps {
			for _, t := range p.Targets {
				expr, err := Substitute(t.Expr, v)
				if err != nil {
					return fmt.Errorf("%s panel %q: %w", uid, p.Title, err)
				}
				out = append(out, Query{Dashboard: uid, Panel: p.Title, RefID: t.RefID, Raw: t.Expr, Expr: expr, Instant: t.Instant})
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(db.Panels)
}

// panelJSON is the part of a committed panel the query checks read.
type panelJSON struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Instant    bool   `json:"instant"`
		Datasource *struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []panelJSON `json:"panels"` // collapsed rows nest their panels
}
