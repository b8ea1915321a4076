package validate

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	monitoringv1alpha1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
)

const alertmanagerDir = "../alertmanager"

// route is a route of either file, in one form: what decides where an
// alert goes and how it is grouped.
type route struct {
	Receiver       string
	Matchers       []string // name op "value", sorted
	GroupBy        []string
	GroupWait      string
	GroupInterval  string
	RepeatInterval string
	Continue       bool
	Routes         []route
}

type inhibition struct {
	Source, Target, Equal []string
}

var matcherRe = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"(.*)"\s*$`)

// plainRoutes reads alertmanager.yml's route tree and inhibitions.
func plainRoutes(t *testing.T) (route, []inhibition, []string) {
	t.Helper()
	b, err := os.ReadFile(alertmanagerDir + "/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	type amRoute struct {
		Receiver       string    `json:"receiver"`
		Matchers       []string  `json:"matchers"`
		GroupBy        []string  `json:"group_by"`
		GroupWait      string    `json:"group_wait"`
		GroupInterval  string    `json:"group_interval"`
		RepeatInterval string    `json:"repeat_interval"`
		Continue       bool      `json:"continue"`
		Routes         []amRoute `json:"routes"`
	}
	var cfg struct {
		Route        amRoute `json:"route"`
		InhibitRules []struct {
			Source []string `json:"source_matchers"`
			Target []string `json:"target_matchers"`
			Equal  []string `json:"equal"`
		} `json:"inhibit_rules"`
		Receivers []struct {
			Name string `json:"name"`
		} `json:"receivers"`
	}
	if err := yamlUnmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	norm := func(ms []string) []string {
		var out []string
		for _, m := range ms {
			p := matcherRe.FindStringSubmatch(m)
			if p == nil {
				t.Fatalf("alertmanager.yml: matcher %q", m)
			}
			out = append(out, fmt.Sprintf("%s%s%q", p[1], p[2], p[3]))
		}
		sort.Strings(out)
		return out
	}
	var conv func(amRoute) route
	conv = func(r amRoute) route {
		out := route{Receiver: r.Receiver, Matchers: norm(r.Matchers), GroupBy: r.GroupBy, GroupWait: r.GroupWait,
			GroupInterval: r.GroupInterval, RepeatInterval: r.RepeatInterval, Continue: r.Continue}
		for _, s := range r.Routes {
			out.Routes = append(out.Routes, conv(s))
		}
		return out
	}
	var inh []inhibition
	for _, r := range cfg.InhibitRules {
		inh = append(inh, inhibition{norm(r.Source), norm(r.Target), r.Equal})
	}
	var receivers []string
	for _, r := range cfg.Receivers {
		receivers = append(receivers, r.Name)
	}
	return conv(cfg.Route), inh, receivers
}

// TestAlertmanagerConfig strictly decodes the AlertmanagerConfig example
// into the operator's types and requires the routing, grouping, timing and
// inhibition of alertmanager.yml, and the same receivers.
func TestAlertmanagerConfig(t *testing.T) {
	b, err := os.ReadFile(alertmanagerDir + "/alertmanagerconfig.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var amc monitoringv1alpha1.AlertmanagerConfig
	if err := UnmarshalStrict(b, &amc); err != nil {
		t.Fatalf("alertmanagerconfig.yaml: %v", err)
	}
	if amc.APIVersion != "monitoring.coreos.com/v1alpha1" || amc.Kind != "AlertmanagerConfig" || amc.Spec.Route == nil {
		t.Fatalf("alertmanagerconfig.yaml: %s %s, route %v", amc.APIVersion, amc.Kind, amc.Spec.Route)
	}
	norm := func(ms []monitoringv1alpha1.Matcher) []string {
		var out []string
		for _, m := range ms {
			op := string(m.MatchType)
			if op == "" {
				op = "="
			}
			out = append(out, fmt.Sprintf("%s%s%q", m.Name, op, m.Value))
		}
		sort.Strings(out)
		return out
	}
	dur := func(d any) string {
		v := reflect.ValueOf(d)
		if v.IsNil() {
			return ""
		}
		return fmt.Sprint(v.Elem().Interface())
	}
	var conv func(monitoringv1alpha1.Route) route
	conv = func(r monitoringv1alpha1.Route) route {
		out := route{Receiver: r.Receiver, Matchers: norm(r.Matchers), GroupBy: r.GroupBy,
			GroupWait: dur(r.GroupWait), GroupInterval: dur(r.GroupInterval), RepeatInterval: dur(r.RepeatInterval), Continue: r.Continue}
		for _, raw := range r.Routes {
			var sub monitoringv1alpha1.Route
			if err := UnmarshalStrict(raw.Raw, &sub); err != nil {
				t.Fatalf("alertmanagerconfig.yaml: sub-route: %v", err)
			}
			out.Routes = append(out.Routes, conv(sub))
		}
		return out
	}
	got := conv(*amc.Spec.Route)
	want, wantInh, wantReceivers := plainRoutes(t)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routes differ from alertmanager.yml:\n got %+v\nwant %+v", got, want)
	}
	var gotInh []inhibition
	for _, r := range amc.Spec.InhibitRules {
		gotInh = append(gotInh, inhibition{norm(r.SourceMatch), norm(r.TargetMatch), r.Equal})
	}
	if !reflect.DeepEqual(gotInh, wantInh) {
		t.Errorf("inhibitions differ from alertmanager.yml:\n got %+v\nwant %+v", gotInh, wantInh)
	}
	var gotReceivers []string
	for _, r := range amc.Spec.Receivers {
		gotReceivers = append(gotReceivers, r.Name)
		if len(r.WebhookConfigs)+len(r.SlackConfigs)+len(r.WeChatConfigs)+len(r.EmailConfigs) == 0 {
			t.Errorf("receiver %s notifies nobody", r.Name)
		}
		for _, s := range r.SlackConfigs {
			if s.APIURL == nil || s.APIURL.Name == "" {
				t.Errorf("receiver %s: slack without a Secret for its webhook URL", r.Name)
			}
		}
	}
	if !reflect.DeepEqual(gotReceivers, wantReceivers) {
		t.Errorf("receivers %v, alertmanager.yml %v", gotReceivers, wantReceivers)
	}
	if !strings.Contains(string(b), "alertmanagerConfigMatcherStrategy") {
		t.Error("the example must say that the operator's namespace matcher would drop breakwater's alerts")
	}
}
