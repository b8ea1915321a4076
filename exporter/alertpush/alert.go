package alertpush

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/rules"
)

// RunbookBase is where runbook_url points, one page per alert name, as in
// the rule pack.
const RunbookBase = "https://github.com/breakwater/breakwater/blob/main/docs/runbooks/"

// alertNames returns the alerts one event raises: every attempt is an
// attempt, and one the kernel allowed is also a success.
func alertNames(e escape.Event) []string {
	if e.Result == names.ResultAllowed {
		return []string{names.AlertEscapeAttempt, names.AlertEscapeSucceeded}
	}
	return []string{names.AlertEscapeAttempt}
}

// alertLabels is the label set of the alert named name for e. It equals
// the labels the rule alert carries, so Alertmanager deduplicates the two:
// empty values are left out as Prometheus drops empty labels, and external
// labels never override the alert's own.
func alertLabels(name string, e escape.Event, external map[string]string) map[string]string {
	def := rules.Default()
	l := map[string]string{
		names.LabelAlertname: name,
		names.LabelSeverity:  def.EscapeSucceeded.Severity,
		names.LabelTechnique: e.Technique,
	}
	if name == names.AlertEscapeAttempt {
		l[names.LabelSeverity] = def.EscapeAttempt.Severity.For(e.Result)
		l[names.LabelResult] = e.Result
	}
	for i, v := range e.Identity.LabelValues() {
		l[names.IdentityLabels[i]] = v
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

// annotations describe the latest attempt of a fold and count the fold.
func annotations(name string, e escape.Event, count int, first time.Time) map[string]string {
	w := who(e.Identity)
	var summary string
	if name == names.AlertEscapeSucceeded {
		summary = fmt.Sprintf("A %s escape from %s succeeded", e.Technique, w)
	} else {
		summary = fmt.Sprintf("Escape attempt (%s) from %s", e.Technique, w)
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

	return map[string]string{
		names.AnnotationSummary:     summary,
		names.AnnotationDescription: desc,
		names.AnnotationRunbookURL:  RunbookBase + name + ".md",
		names.AnnotationAttempts:    strconv.Itoa(count),
	}
}
