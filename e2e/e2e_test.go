package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/breakwater/breakwater/dashboards"
	"github.com/breakwater/breakwater/exporter/alertpush/amtest"
	"github.com/breakwater/breakwater/internal/testenv"
)

// rulesConfig shortens the rule pack's windows so that every alert can fire
// within minutes; thresholds stay as shipped (memory > 90% of the limit,
// more than 5 restarts, CPU above 2x the baseline and 0.1 cores). It goes
// through the same rules.Load / rules.Write path as `rules/generate -config`.
// The pack counts exactly the restarts inside the window: Docker's restart
// backoff (100ms doubling to 1m) starts the restarting container about 10
// times in its first 2 minutes and 13 in 4, and the first, fastest restarts
// are where breakwater's count can fall short, so the window is 4m.
const rulesConfig = `# e2e: shortened windows, shipped thresholds
rateWindow: 20s
baselineWindow: 5m
baselineMinAge: 30s
memoryNearLimit: {for: 10s}
cpuSpike: {for: 10s}
restartingOften: {window: 4m}
`

// cpuIdle is how long the CPU scenario idles before it spikes, at least.
// The rule compares the rate with the container's average since it started:
// the spike stays "2x the baseline" for about as long as the idle phase
// lasted, which must outlast the alert's for (10s) plus the warning route's
// group_wait (30s) with a margin.
const cpuIdle = 80 * time.Second

// escapeDelay is how long the escape containers run before their attempts.
// The security collector learns of a new container from a ring-buffer record
// and, should that record be lost (a container flooding the ring buffer
// elsewhere on the host), from its rescan every 15s at the latest; an
// attempt before either is not counted.
const escapeDelay = 16 * time.Second

// alertDeadline bounds the wait for every alert after the scenarios start.
const alertDeadline = 6 * time.Minute

// expectation is a headline alert the receiver must get.
type expectation struct {
	alert     string
	sc        *scenario
	technique string   // escapes only
	result    string   // ContainerEscapeAttempt only
	severity  string   // as the rule pack sets it
	receivers []string // webhook paths the example routes send it to
	withID    bool     // container_id label (restart counts have none)
	from      string   // what the time is measured from
	start     func() time.Time
	labels    map[string]string // more labels the alert must carry, or other values (image)

	seen   map[string]time.Time // receiver -> first arrival
	first  arrival
	errors []string
}

func (e *expectation) matches(a arrival) bool {
	for _, k := range []string{"namespace", "pod", "syscall"} {
		if v, ok := e.labels[k]; ok && a.labels[k] != v {
			return false
		}
	}
	return a.labels["alertname"] == e.alert && a.labels["name"] == e.sc.name &&
		(e.technique == "" || a.labels["technique"] == e.technique)
}

// check compares the labels of a matching alert with the contract's.
func (e *expectation) check(a arrival, instance string) {
	want := map[string]string{"severity": e.severity, "image": testenv.Image, "job": "breakwater", "instance": instance}
	if e.withID {
		want["container_id"] = e.sc.id
	}
	if e.technique != "" {
		want["technique"] = e.technique
	}
	if e.result != "" {
		want["result"] = e.result
	}
	for k, v := range e.labels {
		want[k] = v
	}
	for k, v := range want {
		if a.labels[k] != v {
			e.errors = append(e.errors, fmt.Sprintf("label %s=%q, want %q", k, a.labels[k], v))
		}
	}
	if _, ok := a.labels["container_id"]; ok && !e.withID {
		e.errors = append(e.errors, "unexpected container_id label")
	}
}

func (e *expectation) done() bool { return len(e.seen) == len(e.receivers) }

// awaitAlerts watches the webhook until every expectation has reached all
// its receivers or deadline passes; step runs every round (scenario
// triggers).
func awaitAlerts(t *testing.T, hook *webhook, expect []*expectation, instance string, deadline time.Time, step func()) {
	t.Helper()
	for _, e := range expect {
		e.seen = map[string]time.Time{}
	}
	for {
		step()
		for _, a := range hook.firing() {
			for _, e := range expect {
				if !e.matches(a) || !e.seen[a.path].IsZero() {
					continue
				}
				if len(e.seen) == 0 {
					e.first = a
					e.check(a, instance)
				}
				e.seen[a.path] = a.at
				if e.done() {
					t.Logf("%s for %s reached %s %s after %s", e.alert, e.sc.name, strings.Join(e.receivers, ", "),
						e.from, a.at.Sub(e.start()).Round(10*time.Millisecond))
				}
			}
		}
		pending := 0
		for _, e := range expect {
			if !e.done() {
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// reportAlerts fails the test for each wrong label and each receiver an
// expected alert never reached.
func reportAlerts(t *testing.T, hook *webhook, expect []*expectation) {
	t.Helper()
	for _, e := range expect {
		for _, msg := range e.errors {
			t.Errorf("%s for %s: %s; labels %v", e.alert, e.sc.name, msg, e.first.labels)
		}
		for _, recv := range e.receivers {
			if e.seen[recv].IsZero() {
				got := map[string]bool{}
				for _, a := range hook.firing() {
					if a.labels["name"] == e.sc.name {
						got[a.path+" "+a.labels["alertname"]] = true
					}
				}
				t.Errorf("%s for %s never reached %s within %s; what reached the receivers for this container: %v",
					e.alert, e.sc.name, recv, alertDeadline, got)
			}
		}
	}
}

// TestEndToEnd runs the whole path: scenario containers on the real Docker
// engine, the built breakwater, a real Prometheus with the generated rule
// pack (shortened windows) and a real Alertmanager with the example routes,
// whose receivers all point at a webhook run here. Every headline alert
// must reach its receiver with the contract's labels, and every panel of the
// security and resources dashboards must return data afterwards.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: takes minutes")
	}
	testenv.Docker(t)
	r := newRun(t)
	t.Logf("logs of this run: %s", r.logs)
	removeStale(t)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	st := r.startStack("--collector.resources.housekeeping-interval=1s")
	hook, promURL, bwAddr, attempt := st.hook, st.promURL, st.bwAddr, st.attempt
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "ps", "-a", "--no-trunc", "--filter", "name=^"+prefix).CombinedOutput()
			_ = os.WriteFile(r.path("docker-ps.txt"), out, 0o644)
		}
	})

	// Scenarios, all at once.
	attemptVol := []string{"-v", attempt + ":/attempt:ro"}
	privileged := append(append(testenv.PrivilegedArgs(), "--security-opt", "systempaths=unconfined"), attemptVol...)
	// tmpfs pages are charged to the container and, without swap, cannot be
	// reclaimed: 60 MiB of 64 MiB is held for good (as collectors/resources
	// tests do).
	memory := r.container("memory", []string{"--memory", "64m", "--memory-swap", "64m", "--shm-size", "64m"},
		"sh", "-c", "head -c 60m /dev/zero > /dev/shm/fill && exec sleep 900")
	restarts := r.container("restarts", []string{"--restart=always"}, "sh", "-c", "sleep 1; exit 1")
	// Idle until the test has seen its baseline, then a busy loop capped at
	// half a core, so CFS throttling shows as well.
	cpu := r.container("cpu", []string{"--cpus", "0.5"},
		"sh", "-c", "while [ ! -e /tmp/spike ]; do sleep 1; done; while :; do :; done")
	// The escape containers make their attempts when the test says so.
	const await = "while [ ! -e /tmp/go ]; do sleep 0.2; done; "
	blocked := r.container("escape-blocked", attemptVol, "sh", "-c", await+"/attempt mount; /attempt namespace; exec sleep 900")
	allowed := r.container("escape-allowed", privileged, "sh", "-c", await+"/attempt mount; exec sleep 900")
	// dd's 48 MiB buffer cannot fit in 32 MiB: the kernel OOM-kills dd every
	// round while the container lives on, for the OOM panel.
	oom := r.container("oom", []string{"--memory", "32m", "--memory-swap", "32m"},
		"sh", "-c", "while :; do dd if=/dev/zero of=/dev/null bs=48M count=1; sleep 5; done")
	var spikeAt, escapeAt time.Time

	escapes := []string{"/security-webhook", "/oncall-pager"}
	blockedEscapes := []string{"/security-webhook", "/team-slack"}
	warnings := []string{"/team-slack"}
	since := func(sc *scenario) func() time.Time { return func() time.Time { return sc.started } }
	attempted := func() time.Time { return escapeAt }
	expect := []*expectation{
		// A blocked attempt is a warning: the incident webhook and the team
		// channel, no page.
		{alert: "ContainerEscapeAttempt", sc: &blocked, technique: "mount", result: "blocked", severity: "warning", receivers: blockedEscapes, withID: true,
			from: "attempt", start: attempted},
		{alert: "ContainerEscapeSucceeded", sc: &allowed, technique: "mount", severity: "critical", receivers: escapes, withID: true,
			from: "attempt", start: attempted},
		{alert: "ContainerMemoryNearLimit", sc: &memory, severity: "warning", receivers: warnings, withID: true,
			from: "container start", start: since(&memory)},
		{alert: "ContainerRestartingOften", sc: &restarts, severity: "warning", receivers: warnings,
			from: "container start", start: since(&restarts)},
		{alert: "ContainerCPUSpike", sc: &cpu, severity: "warning", receivers: warnings, withID: true,
			from: "busy loop start", start: func() time.Time { return spikeAt }},
	}
	defer summary(t, expect)

	awaitAlerts(t, hook, expect, bwAddr, time.Now().Add(alertDeadline), func() {
		if escapeAt.IsZero() && time.Since(allowed.started) >= escapeDelay {
			escapeAt = time.Now()
			testenv.Run(t, "docker", "exec", blocked.id, "touch", "/tmp/go")
			testenv.Run(t, "docker", "exec", allowed.id, "touch", "/tmp/go")
		}
		if spikeAt.IsZero() && time.Since(cpu.started) >= cpuIdle {
			base, err := query(ctx, promURL, fmt.Sprintf(`breakwater:container_cpu_usage_seconds:rate5m_avg_1h{name=%q}`, cpu.name))
			if err != nil {
				t.Fatal(err)
			}
			if len(base) > 0 {
				testenv.Run(t, "docker", "exec", cpu.id, "touch", "/tmp/spike")
				spikeAt = time.Now()
				t.Logf("%s: baseline %.4f cores after %s idle; busy loop started", cpu.name, base[0].value(),
					spikeAt.Sub(cpu.started).Round(time.Second))
			}
		}
	})
	// A scenario container that stopped points at the engine (restarted by
	// another test on a shared machine?) rather than at breakwater.
	for _, sc := range []scenario{memory, cpu, blocked, allowed, oom} {
		if state := testenv.Run(t, "docker", "inspect", "-f", "{{.State.Status}} since {{.State.StartedAt}}, exit {{.State.ExitCode}} at {{.State.FinishedAt}}", sc.id); !strings.HasPrefix(state, "running") {
			t.Errorf("scenario container %s is no longer running: %s", sc.name, state)
		}
	}
	reportAlerts(t, hook, expect)
	// The example inhibition: a succeeded escape silences the attempts of
	// the same container, whichever path (push or rule) brought them.
	for _, a := range hook.firing() {
		if a.labels["alertname"] == "ContainerEscapeAttempt" && a.labels["name"] == allowed.name {
			t.Errorf("ContainerEscapeAttempt of %s reached %s although ContainerEscapeSucceeded inhibits it: %v", allowed.name, a.path, a.labels)
		}
	}

	checkDashboards(ctx, t, promURL, bwAddr)

	// OOM kills are counted for the container that survives them.
	oomQuery := fmt.Sprintf(`max(container_oom_events_total{name=%q})`, oom.name)
	var ooms float64
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		if s, err := query(ctx, promURL, oomQuery); err == nil && len(s) > 0 {
			ooms = s[0].value()
		}
		if ooms > 0 || time.Now().After(end) {
			break
		}
	}
	if ooms == 0 {
		t.Errorf("%s: no OOM event counted (%s)", oom.name, oomQuery)
	} else {
		t.Logf("%s: %v OOM kills counted", oom.name, ooms)
	}

	if s, err := query(ctx, promURL, `sum(breakwater_alertmanager_push_latency_seconds_sum) / sum(breakwater_alertmanager_push_latency_seconds_count)`); err == nil && len(s) > 0 {
		c, _ := query(ctx, promURL, `sum(breakwater_alertmanager_push_latency_seconds_count)`)
		if len(c) > 0 {
			t.Logf("breakwater push latency (event to Alertmanager accepted): mean %.1fms over %v alerts", 1000*s[0].value(), c[0].value())
		}
	}
	t.Logf("e2e run took %s", time.Since(began).Round(time.Second))
}

// build compiles breakwater and the static escape-attempt program.
func build(t *testing.T, r *run, root string) (breakwater, attempt string) {
	t.Helper()
	dir := t.TempDir()
	breakwater, attempt = filepath.Join(dir, "breakwater"), filepath.Join(dir, "attempt")
	cmd := exec.Command("go", "build", "-o", breakwater, "./cmd/breakwater")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		r.write("build.log", out)
		t.Fatalf("go build ./cmd/breakwater: %v\n%s", err, out)
	}
	out, err := exec.Command("gcc", "-static", "-O2", "-o", attempt,
		filepath.Join(root, "collectors", "security", "testdata", "attempt.c")).CombinedOutput()
	if err != nil {
		r.write("build.log", out)
		t.Fatalf("gcc attempt.c: %v\n%s", err, out)
	}
	return breakwater, attempt
}

// alertmanagerConfig is deploy/alertmanager/alertmanager.yml with its route
// tree and inhibit rules untouched and every receiver replaced by the
// webhook on path /<receiver name>, as deploy/alertmanager's tests do.
func alertmanagerConfig(t *testing.T, root string, hook *webhook) []byte {
	t.Helper()
	return []byte(amtest.ExampleConfig(t, filepath.Join(root, "deploy", "alertmanager", "alertmanager.yml"), func(name string) string { return hook.url("/" + name) }))
}

// checkDashboards runs every panel query of the security and resources
// dashboards, with the container filter set to this run's containers,
// against the live Prometheus: each panel must show data. A panel whose
// every query reads a baseline recording rule may be empty (the rules only
// record a baseline once a container is older than the minimum age), and
// says so.
func checkDashboards(ctx context.Context, t *testing.T, promURL, instance string) {
	t.Helper()
	vars := dashboards.Vars{Job: "breakwater", Instance: instance, Container: prefix + ".*", RateInterval: "1m"}
	type panel struct {
		uid, title string
		queries    []dashboards.Query
		series     int
	}
	var panels []*panel
	for _, uid := range []string{dashboards.SecurityUID, dashboards.ResourcesUID} {
		qs, err := dashboards.Queries(uid, vars)
		if err != nil {
			t.Fatal(err)
		}
		byTitle := map[string]*panel{}
		for _, q := range qs {
			p := byTitle[q.Panel]
			if p == nil {
				p = &panel{uid: uid, title: q.Panel}
				byTitle[q.Panel] = p
				panels = append(panels, p)
			}
			p.queries = append(p.queries, q)
		}
	}
	start := time.Now()
	deadline := start.Add(90 * time.Second)
	var empty []*panel
	for {
		empty = empty[:0]
		for _, p := range panels {
			p.series = 0
			for _, q := range p.queries {
				s, err := query(ctx, promURL, q.Expr)
				if err != nil {
					t.Errorf("%s: %v", q, err)
				}
				p.series += len(s)
			}
			if p.series == 0 {
				empty = append(empty, p)
			}
		}
		if len(empty) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	for _, p := range empty {
		baselineOnly := true
		for _, q := range p.queries {
			if !strings.Contains(q.Raw, ":rate5m_avg_1h{") {
				baselineOnly = false
			}
		}
		if baselineOnly {
			t.Logf("%s panel %q is empty: it only reads a baseline, which needs containers older than the minimum age", p.uid, p.title)
			continue
		}
		// A panel whose input series do not exist at all shows what this
		// run did not produce (novel syscalls need an image's learning
		// period); one whose inputs exist and still shows nothing is broken.
		if inputs := inputSeries(ctx, t, promURL, p.queries); inputs == 0 {
			t.Logf("%s panel %q is empty: none of its input series exist in this run", p.uid, p.title)
			continue
		}
		var exprs []string
		for _, q := range p.queries {
			exprs = append(exprs, q.RefID+": "+q.Expr)
		}
		t.Errorf("%s panel %q shows no data:\n  %s", p.uid, p.title, strings.Join(exprs, "\n  "))
	}
	var lines []string
	for _, p := range panels {
		lines = append(lines, fmt.Sprintf("  %-20s %-50q %3d series", p.uid, p.title, p.series))
	}
	t.Logf("dashboard panels after %s:\n%s", time.Since(start).Round(time.Second), strings.Join(lines, "\n"))
}

// summary prints how long each alert took to reach its receiver. Which
// path brought an escape alert first cannot be told from the notification:
// inputSeries counts the series the vector selectors of the queries select.
func inputSeries(ctx context.Context, t *testing.T, promURL string, qs []dashboards.Query) int {
	t.Helper()
	n := 0
	for _, q := range qs {
		expr, err := parser.NewParser(parser.Options{}).ParseExpr(q.Expr)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
			if vs, ok := node.(*parser.VectorSelector); ok {
				s, err := query(ctx, promURL, vs.String())
				if err != nil {
					t.Errorf("%s: %v", q, err)
				}
				n += len(s)
			}
			return nil
		})
	}
	return n
}

// Alertmanager merges the pushed and the evaluated alert into one; the
// pusher's own latency is logged separately.
func summary(t *testing.T, expect []*expectation) {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "alert\tcontainer\tfrom\tto receiver")
	sorted := append([]*expectation(nil), expect...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].alert < sorted[j].alert })
	for _, e := range sorted {
		took := "never"
		if !e.first.at.IsZero() && !e.start().IsZero() {
			took = e.first.at.Sub(e.start()).Round(10 * time.Millisecond).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.alert, e.sc.name, e.from, took)
	}
	w.Flush()
	t.Logf("time from each scenario to the receiver:\n%s", b.String())
}
