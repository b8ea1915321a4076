package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/breakwater/breakwater/internal/testenv"
)

// learningPeriod is the containerd run's image learning period: short, so
// that the image has learned before the escape attempt, which is then a
// novel syscall as well. Learning ends at a resync (every 15s).
const learningPeriod = 20 * time.Second

// TestContainerdEndToEnd is a Kubernetes node without Docker: pods made
// through containerd alone the way kubelet's CRI plugin makes them (namespace
// k8s.io, CRI labels, kubepods cgroups), and breakwater pointed at a Docker
// socket that does not exist. Pod, namespace and container labels come from
// containerd; the pause container has no series; a container kubelet
// restarts (a new container each time) is counted by pod and container; an
// escape attempt and the novel syscall it is reach the receivers through
// Prometheus and Alertmanager.
func TestContainerdEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: takes minutes")
	}
	image := testenv.CtrImage(t)
	r := newRun(t)
	t.Logf("logs of this run: %s", r.logs)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	st := r.startStack(
		"--runtime.docker-host=unix:///nonexistent/docker.sock",
		"--runtime.containerd-socket="+testenv.CtrSocket,
		"--collector.security.learning-period="+learningPeriod.String(),
		"--collector.security.profile-dir="+t.TempDir(),
		"--collector.resources.housekeeping-interval=1s")

	ns := "bw-e2e"
	pod := podName(t)
	uid := testenv.NewID(t)[:32]
	pc := func(container string, sandbox bool, mounts ...string) testenv.PodContainer {
		return testenv.PodContainer{Namespace: ns, Pod: pod, Container: container, PodUID: uid,
			Sandbox: sandbox, Mounts: mounts, Detach: true}
	}
	// The trigger directory: the web container waits for its go file.
	trigger := t.TempDir()
	sandboxID, _ := testenv.CtrRun(t, pc("", true), "sleep", "900")
	webID, _ := testenv.CtrRun(t, pc("web", false, st.attempt+":/attempt", trigger+":/trigger"),
		"sh", "-c", "while [ ! -e /trigger/go ]; do sleep 0.2; done; /attempt mount; exec sleep 900")
	web := scenario{name: "web", id: webID, started: time.Now()}

	// kubelet restarts a container as a new container with the same pod
	// and container name: eight starts are seven restarts, more than the
	// pack's five.
	crash := scenario{name: "crash", started: time.Now()}
	const starts = 8
	for i := 0; i < starts; i++ {
		c := pc("crash", false)
		c.Detach = false
		crash.id, _ = testenv.CtrRun(t, c, "true")
	}
	t.Logf("%d starts of %s/%s/crash took %s", starts, ns, pod, time.Since(crash.started).Round(time.Millisecond))

	// The image learns while web and the crashing container run.
	waitMetric(ctx, t, st, `breakwater_syscall_profiles{state="learned"}`, func(v float64) bool { return v >= 1 },
		learningPeriod+45*time.Second)
	escapeAt := time.Now()
	if err := os.WriteFile(filepath.Join(trigger, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	ident := map[string]string{"namespace": ns, "pod": pod, "image": image}
	withContainer := func(c string, more ...string) map[string]string {
		m := map[string]string{"container": c}
		for k, v := range ident {
			m[k] = v
		}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i]] = more[i+1]
		}
		return m
	}
	attempted := func() time.Time { return escapeAt }
	expect := []*expectation{
		{alert: "ContainerEscapeAttempt", sc: &web, technique: "mount", result: "blocked", severity: "warning",
			receivers: []string{"/security-webhook", "/team-slack"}, withID: true, labels: withContainer("web"),
			from: "attempt", start: attempted},
		{alert: "ContainerNovelSyscall", sc: &web, severity: "warning",
			receivers: []string{"/security-webhook", "/team-slack"}, withID: true, labels: withContainer("web", "syscall", "mount"),
			from: "attempt", start: attempted},
		{alert: "ContainerRestartingOften", sc: &crash, severity: "warning", receivers: []string{"/team-slack"},
			labels: withContainer("crash"), from: "first start", start: func() time.Time { return crash.started }},
	}
	defer summary(t, expect)
	awaitAlerts(t, st.hook, expect, st.bwAddr, time.Now().Add(alertDeadline), func() {})
	reportAlerts(t, st.hook, expect)

	// The restarts are counted exactly, by pod and container.
	restarts := fmt.Sprintf(`breakwater_container_restarts_total{namespace=%q, pod=%q, container="crash"}`, ns, pod)
	if s, err := query(ctx, st.promURL, restarts); err != nil || len(s) != 1 || s[0].value() != starts-1 {
		t.Errorf("%s = %v (%v), want one series of %d", restarts, s, err, starts-1)
	}
	// Resource metrics of the pod's containers, named by containerd.
	mem := fmt.Sprintf(`container_memory_working_set_bytes{namespace=%q, pod=%q, container="web", image=%q}`, ns, pod, image)
	waitQuery(ctx, t, st, mem, 30*time.Second)

	// The pause container is the pod's, not a workload: no series of
	// breakwater's own carries its id.
	for _, mf := range scrape(t, st) {
		if !strings.HasPrefix(mf.GetName(), "breakwater_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "container_id" && l.GetValue() == sandboxID {
					t.Errorf("the pod sandbox has a series: %s %v", mf.GetName(), m.GetLabel())
				}
			}
		}
	}
	t.Logf("containerd e2e run took %s", time.Since(began).Round(time.Second))
}

// podName is a pod name unique to this run.
func podName(t *testing.T) string { return "bw-e2e-" + testenv.NewID(t)[:8] }

// waitMetric polls breakwater's exposition until a sample matching the
// selector satisfies ok.
func waitMetric(ctx context.Context, t *testing.T, st *stack, selector string, ok func(float64) bool, timeout time.Duration) {
	t.Helper()
	matchers, err := parser.NewParser(parser.Options{}).ParseMetricSelector(selector)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		for _, mf := range scrape(t, st) {
			for _, m := range mf.GetMetric() {
				b := labels.NewScratchBuilder(len(m.GetLabel()) + 1)
				b.Add(model.MetricNameLabel, mf.GetName())
				for _, l := range m.GetLabel() {
					b.Add(l.GetName(), l.GetValue())
				}
				b.Sort()
				ls := b.Labels()
				matched := true
				for _, mt := range matchers {
					matched = matched && mt.Matches(ls.Get(mt.Name))
				}
				if matched && ok(m.GetGauge().GetValue()+m.GetCounter().GetValue()) {
					return
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s never got its value within %s:\n%s", selector, timeout, st.bw.tail())
		}
		time.Sleep(time.Second)
	}
}

// waitQuery waits until a Prometheus query returns a series.
func waitQuery(ctx context.Context, t *testing.T, st *stack, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := query(ctx, st.promURL, expr)
		if err == nil && len(s) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s returned nothing within %s (%v)", expr, timeout, err)
			return
		}
		time.Sleep(2 * time.Second)
	}
}

// scrape reads breakwater's exposition.
func scrape(t *testing.T, st *stack) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + st.bwAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}
