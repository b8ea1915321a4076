package alertpush

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/rules"
)

// policy decides which alerts an escape event raises and how they look,
// from the rule pack's configuration: the push fires what the rules fire,
// with the same labels, severities, exclusions and links.
type policy struct {
	cfg rules.Config
	// containers are cfg.ContainerSelector's matchers: events of what the
	// rules do not count as a container (host processes, pod sandboxes)
	// raise nothing.
	containers []*labels.Matcher
}

func newPolicy(cfg rules.Config) (policy, error) {
	if err := cfg.Validate(); err != nil {
		return policy{}, err
	}
	ms, err := matchers(cfg.ContainerSelector)
	if err != nil {
		return policy{}, fmt.Errorf("containerSelector: %w", err)
	}
	return policy{cfg: cfg, containers: ms}, nil
}

// matchers parses the matchers of a rules selector as PromQL does.
func matchers(sel string) ([]*labels.Matcher, error) {
	if strings.TrimSpace(sel) == "" {
		return nil, nil
	}
	return parser.NewParser(parser.Options{}).ParseMetricSelector("{" + sel + "}")
}

// matches applies matchers to a label set in which absent labels are empty,
// as PromQL sees a series.
func matches(ms []*labels.Matcher, l map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(l[m.Name]) {
			return false
		}
	}
	return true
}

// subject is what the rules' selectors and exclusions see of an event: the
// identity labels and the technique.
func subject(e escape.Event) map[string]string {
	l := map[string]string{names.LabelTechnique: e.Technique}
	for i, v := range e.Identity.LabelValues() {
		l[names.IdentityLabels[i]] = v
	}
	return l
}

// alertNames returns the alert one event raises: a blocked attempt is a
// ContainerEscapeAttempt, one the kernel allowed a ContainerEscapeSucceeded
// (never both, as in the rules); none for what is not a container or what
// an exclusion names.
func (p policy) alertNames(e escape.Event) []string {
	s := subject(e)
	if !matches(p.containers, s) {
		return nil
	}
	for _, x := range p.cfg.Exclusions {
		if x.Matches(s) {
			return nil
		}
	}
	name := names.AlertEscapeAttempt
	if e.Result == names.ResultAllowed {
		name = names.AlertEscapeSucceeded
	}
	if !p.cfg.Enabled(name) {
		return nil
	}
	return []string{name}
}

// alertLabels is the label set of the alert named name for e. It equals
// the labels the rule alert carries, so Alertmanager deduplicates the two:
// empty values are left out as Prometheus drops empty labels, and external
// labels never override the alert's own.
func (p policy) alertLabels(name string, e escape.Event, external map[string]string) map[string]string {
	l := subject(e)
	// Rule labels override the series' labels in Prometheus.
	for k, v := range p.cfg.AdditionalRuleLabels {
		l[k] = v
	}
	l[names.LabelAlertname] = name
	l[names.LabelSeverity] = p.cfg.EscapeSucceeded.Severity
	if name == names.AlertEscapeAttempt {
		l[names.LabelSeverity] = p.cfg.EscapeAttempt.Severity
		l[names.LabelResult] = e.Result
	}
	for k, v := range external {
		if _, ok := l[k]; !ok {
			l[k] = v
		}
	}
	for k, v := range l {
		if v == "" {
			delete(l, k)
		}
	}
	return l
}

// who names a container for a human: name, image and pod when known.
func who(id identity.Identity) string {
	name := id.Name
	if name == "" {
		name = id.ContainerID
		if len(name) > 12 {
			name = name[:12]
		}
	}
	if name == "" {
		name = "(unknown)"
	}
	var extra []string
	if id.Image != "" {
		extra = append(extra, "image "+id.Image)
	}
	if id.Pod != "" {
		extra = append(extra, "pod "+id.Namespace+"/"+id.Pod)
	}
	if len(extra) == 0 {
		return "container " + name
	}
	return "container " + name + " (" + strings.Join(extra, ", ") + ")"
}

// dashboardURL links the security dashboard with the alert's labels as its
// variables, as the rules' dashboard_url does.
func (p policy) dashboardURL(l map[string]string) string {
	u := p.cfg.GrafanaURL + "/d/" + names.DashboardSecurity + "?from=now-3h&to=now"
	for _, v := range []struct{ v, label string }{
		{names.VarCluster, p.cfg.ClusterLabel}, {names.VarJob, names.LabelJob}, {names.VarInstance, names.LabelInstance},
		{names.VarNamespace, names.LabelNamespace}, {names.VarPod, names.LabelPod}, {names.VarContainer, names.LabelName},
	} {
		if val := l[v.label]; v.label != "" && val != "" {
			u += "&var-" + v.v + "=" + url.QueryEscape(val)
		}
	}
	return u
}

// annotations describe the latest attempt of a fold and count the fold.
func (p policy) annotations(name string, l map[string]string, e escape.Event, count int, first time.Time) map[string]string {
	w := who(e.Identity)
	var summary string
	if name == names.AlertEscapeSucceeded {
		summary = fmt.Sprintf("A %s escape from %s succeeded", e.Technique, w)
	} else {
		summary = fmt.Sprintf("Escape attempt (%s, %s) from %s", e.Technique, e.Result, w)
	}

	call := e.Syscall
	if e.Detail != "" {
		call += " on " + e.Detail
	}
	outcome := "the kernel allowed it"
	if e.Result != names.ResultAllowed {
		outcome = "it was blocked"
		if e.Errno != "" {
			outcome += " with " + e.Errno
		}
	}
	desc := fmt.Sprintf("Process %s (pid %d) in %s called %s, a %s escape technique, and %s. %d attempt(s) of this kind since %s.",
		strconv.Quote(e.Comm), e.PID, w, call, e.Technique, outcome, count, first.UTC().Format(time.RFC3339))

	a := map[string]string{}
	for k, v := range p.cfg.AdditionalRuleAnnotations {
		a[k] = v
	}
	for k, v := range map[string]string{
		names.AnnotationSummary:      summary,
		names.AnnotationDescription:  desc,
		names.AnnotationRunbookURL:   p.cfg.RunbookURL + name + ".md",
		names.AnnotationDashboardURL: p.dashboardURL(l),
		names.AnnotationAttempts:     strconv.Itoa(count),
	} {
		a[k] = v
	}
	return a
}

// checkLabels returns what keeps pushed alerts from merging with the
// evaluated ones: a target label of the pack the external labels do not
// set, or a selector matcher they contradict.
func (p policy) checkLabels(external map[string]string) []string {
	var problems []string
	for _, l := range p.cfg.TargetLabels {
		if external[l] == "" {
			problems = append(problems, fmt.Sprintf("the rules keep the target label %q, which no --alertmanager.external-label sets", l))
		}
	}
	sel, err := matchers(p.cfg.Selector)
	if err != nil {
		return append(problems, fmt.Sprintf("selector: %v", err))
	}
	for _, m := range sel {
		if v, ok := external[m.Name]; ok && !m.Matches(v) {
			problems = append(problems, fmt.Sprintf("the rules select %s, the external label says %s=%q", m, m.Name, v))
		}
	}
	return problems
}
