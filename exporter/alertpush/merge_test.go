package alertpush

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/exporter/alertpush/amtest"
	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/internal/names"
	"github.com/breakwater/breakwater/internal/testenv"
	"github.com/breakwater/breakwater/rules"
)

// TestPushedAndEvaluatedAreOneAlert runs the real thing: the pinned
// Prometheus evaluates the rule pack on a target exposing an escape attempt
// and sends its alert, with its external labels cluster and
// prometheus="<namespace>/<name>" as prometheus-operator sets them, to the
// pinned Alertmanager; the pusher pushes the same attempt with the external
// labels configured to match. Alertmanager must hold one alert that both
// paths delivered. A second pusher without the prometheus label must make
// two of them: the check can fail.
func TestPushedAndEvaluatedAreOneAlert(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus and Alertmanager")
	}
	hook := amtest.NewWebhook(t)
	am := amtest.Start(t, amtest.PerAlertConfig(hook.URL("/am")))

	// The exporter's target: the container's counter is 0 until the attempt.
	e := escape.Event{Identity: podID, Technique: names.TechniqueMount, Result: escape.Blocked,
		Syscall: "mount", Errno: "EPERM", Comm: "sh", PID: 42}
	var attempts atomic.Int64
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var l []string
		for _, kv := range [][2]string{
			{"container_id", e.Identity.ContainerID}, {"name", e.Identity.Name}, {"image", e.Identity.Image},
			{"namespace", e.Identity.Namespace}, {"pod", e.Identity.Pod}, {"container", e.Identity.Container},
			{"technique", e.Technique}, {"result", e.Result},
		} {
			l = append(l, fmt.Sprintf("%s=%q", kv[0], kv[1]))
		}
		fmt.Fprintf(w, "%s{%s} %d\n", names.MetricEscapeAttempts, strings.Join(l, ","), attempts.Load())
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target.Listener = ln
	target.Start()
	t.Cleanup(target.Close)
	instance := strings.TrimPrefix(target.URL, "http://")

	// The shipped pack with windows short enough for a test.
	cfg, err := rules.Parse([]byte("escapeAttempt: {window: 5s}\nescapeSucceeded: {window: 5s}\ncounterHistory: 1m\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := rules.Write(cfg, filepath.Join(dir, "rules.yml"), filepath.Join(dir, "prometheusrule.yaml")); err != nil {
		t.Fatal(err)
	}
	external := map[string]string{"cluster": "test-eu", "prometheus": "monitoring/k8s"}
	prom := testenv.StartPrometheus(t, dir, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels: {cluster: %q, prometheus: %q}
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: breakwater
    static_configs:
      - targets: [%q]
`, external["cluster"], external["prometheus"], am.URL().Host, instance))

	pushCfg := testConfig(am.URL())
	pushCfg.Rules = &cfg
	pushCfg.ExternalLabels = map[string]string{"job": "breakwater", "instance": instance}
	for k, v := range external {
		pushCfg.ExternalLabels[k] = v
	}
	p := startPusher(t, pushCfg)

	// Let Prometheus see the counter at 0 for longer than the window, then
	// attempt: the push goes out at once, the rule fires a scrape and an
	// evaluation later.
	amtest.Eventually(t, 30*time.Second, "Prometheus scraping the target", func() bool { return promMetric(t, prom, "prometheus_sd_discovered_targets") > 0 })
	time.Sleep(8 * time.Second)
	attempts.Store(1)
	e.Time = time.Now()
	p.Push(e)

	amtest.Eventually(t, 30*time.Second, "the pushed alert accepted", func() bool { return p.count(names.PushSent) >= 1 })
	amtest.Eventually(t, 60*time.Second, "Prometheus sending the evaluated alert", func() bool {
		return promMetric(t, prom, "prometheus_notifications_sent_total") >= 1
	})
	alerts := escapeAlerts(t, am)
	if len(alerts) != 1 {
		t.Fatalf("Alertmanager holds %d ContainerEscapeAttempt alerts, want the pushed and the evaluated one as one: %v", len(alerts), alerts)
	}
	want := testPolicy.alertLabels(names.AlertEscapeAttempt, e, pushCfg.ExternalLabels)
	for k, v := range want {
		if alerts[0][k] != v {
			t.Errorf("alert label %s=%q, want %q (all: %v)", k, alerts[0][k], v, alerts[0])
		}
	}
	if len(alerts[0]) != len(want) {
		t.Errorf("alert labels %v, want %v", alerts[0], want)
	}

	// The same push without the label prometheus-operator adds is another
	// alert: what the test above would see if the labels drifted.
	drifted := testConfig(am.URL())
	drifted.Rules = &cfg
	drifted.ExternalLabels = map[string]string{"job": "breakwater", "instance": instance, "cluster": external["cluster"]}
	startPusher(t, drifted).Push(e)
	amtest.Eventually(t, 30*time.Second, "a second alert from the drifted push", func() bool { return len(escapeAlerts(t, am)) == 2 })
}

// escapeAlerts returns the label sets of the ContainerEscapeAttempt alerts
// Alertmanager holds.
func escapeAlerts(t *testing.T, am *amtest.Alertmanager) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, a := range amAlerts(t, am.URL()) {
		if a.Labels[names.LabelAlertname] == names.AlertEscapeAttempt {
			out = append(out, a.Labels)
		}
	}
	return out
}

// promMetric sums the samples of one metric on Prometheus' own /metrics.
func promMetric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}
