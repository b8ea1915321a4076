package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/testenv"
)

// Synthetic identity of the one container the target reports.
const (
	testContainerID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testName        = "bw-dash-web"
)

// syntheticTarget serves every metric of knownMetrics that a scrape yields,
// with the labels breakwater and its cAdvisor put on them. Counters grow with
// each scrape so that rates and increases are non-zero.
func syntheticTarget(t *testing.T) *httptest.Server {
	var scrapes atomic.Int64
	started := float64(time.Now().Add(-time.Hour).Unix())
	ident := fmt.Sprintf(`container_id=%q,name=%q,image="breakwater-test/busybox:latest",namespace="",pod="",container=""`, testContainerID, testName)
	cgroup := ident + fmt.Sprintf(`,id="/docker/%s"`, testContainerID)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := float64(scrapes.Add(1))
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		lines := []string{
			`breakwater_build_info{version="test",revision="dashboards",goversion="go1.26"} 1`,
			`breakwater_bpf_program_attached{program="sys_enter",hook="raw_tracepoint/sys_enter"} 1`,
			`breakwater_bpf_events_lost_total{reason="ringbuf_full"} ` + f(n),
			`breakwater_bpf_events_folded_total ` + f(n),
			`breakwater_tracked_containers 1`,
			`breakwater_series_expired_total ` + f(n),
			`breakwater_scrape_collector_duration_seconds{collector="security"} 0.002`,
			`breakwater_scrape_collector_success{collector="security"} 1`,
			`breakwater_alertmanager_notifications_total{result="sent"} ` + f(n),
			`breakwater_state_file{file="profiles.json",state="ok"} 1`,
			`breakwater_syscalls_denied_total{` + ident + `,syscall="mount",errno="EPERM",reason="seccomp"} ` + f(3*n),
			`breakwater_syscalls_denied_total{` + ident + `,syscall="epoll_ctl",errno="EPERM",reason="kernel"} ` + f(n),
			`breakwater_syscalls_novel_total{` + ident + `,syscall="ptrace"} ` + f(n),
			`breakwater_namespace_operations_total{` + ident + `,operation="unshare",namespace_type="user",result="denied"} ` + f(n),
			`breakwater_mount_operations_total{` + ident + `,operation="mount",result="denied"} ` + f(n),
			`breakwater_capability_checks_total{` + ident + `,capability="CAP_SYS_ADMIN",result="denied",scope="host"} ` + f(n),
			`breakwater_container_capabilities{` + ident + `,capability="CAP_SYS_ADMIN"} 1`,
			`breakwater_escape_attempts_total{` + ident + `,technique="mount",result="blocked"} ` + f(n),
			`breakwater_escape_attempts_total{` + ident + `,technique="runtime_socket",result="allowed"} ` + f(n),
			fmt.Sprintf(`breakwater_container_restarts_total{name=%q,image="breakwater-test/busybox:latest",namespace="",pod="",container=""} %s`, testName, f(n)),
			`container_memory_working_set_bytes{` + cgroup + `} 5e+07`,
			`container_memory_rss{` + cgroup + `} 4e+07`,
			`container_spec_memory_limit_bytes{` + cgroup + `} 1e+08`,
			`container_cpu_usage_seconds_total{` + cgroup + `} ` + f(0.5*n),
			`container_cpu_cfs_periods_total{` + cgroup + `} ` + f(10*n),
			`container_cpu_cfs_throttled_periods_total{` + cgroup + `} ` + f(n),
			`container_start_time_seconds{` + cgroup + `} ` + f(started),
			`container_oom_events_total{` + cgroup + `} ` + f(n),
			`machine_memory_bytes{boot_id="b",machine_id="m",system_uuid="s"} 8e+09`,
			// Two replicas of one container name on this node.
			replica("web-0", "1", n), replica("web-1", "2", n),
			`machine_cpu_cores{boot_id="b",machine_id="m",system_uuid="s"} 2`,
		}
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func f(v float64) string { return fmt.Sprintf("%g", v) }

// replica is the CPU counter of container "app" of pod shop/<pod>.
func replica(pod, digit string, n float64) string {
	id := strings.Repeat(digit, 64)
	return fmt.Sprintf(`container_cpu_usage_seconds_total{container_id=%q,name="app",image="shop/app:1",namespace="shop",pod=%q,container="app",id="/kubepods/pod%s/%s"} %s`,
		id, pod, digit, id, f(0.25*n))
}

// startPrometheus runs the pinned Prometheus on 127.0.0.1, scraping target
// every second as job "breakwater" and evaluating ruleFiles every second.
func startPrometheus(t *testing.T, target string, ruleFiles []string) string {
	t.Helper()
	quoted := make([]string, len(ruleFiles))
	for i, r := range ruleFiles {
		quoted[i] = fmt.Sprintf("%q", r)
	}
	return testenv.StartPrometheus(t, t.TempDir(), fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%s]
scrape_configs:
  - job_name: breakwater
    static_configs:
      - targets: [%q]
`, strings.Join(quoted, ", "), target))
}

// instantSeries runs an instant query and returns how many series it yields.
func instantSeries(ctx context.Context, base, expr string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("query failed: %s", body.Error)
	}
	if body.Data.ResultType == "scalar" {
		return 1, nil
	}
	return len(body.Data.Result), nil
}

// TestPanelsReturnDataFromPrometheus proves, against the real Prometheus, that
// every panel and variable query returns data once breakwater's metrics are
// there: joins, label sets and the recording rules' labels line up.
func TestPanelsReturnDataFromPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus")
	}
	root := testenv.RepoRoot(t)
	rules := filepath.Join(root, rulesFile)
	firing, _ := filepath.Abs(filepath.Join("testdata", "firing.rules.yml"))
	target := syntheticTarget(t)
	base := startPrometheus(t, strings.TrimPrefix(target.URL, "http://"), []string{rules, firing})

	vars := Vars{Job: "breakwater", Instance: strings.TrimPrefix(target.URL, "http://"), Container: testName, RateInterval: "1m"}
	var all []Query
	for _, uid := range uids {
		qs, err := AllQueries(uid, vars)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, qs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	var empty []Query
	for {
		empty = empty[:0]
		var lastErr error
		for _, q := range all {
			if n, err := instantSeries(ctx, base, q.Expr); n == 0 {
				empty = append(empty, q)
				if err != nil {
					lastErr = fmt.Errorf("%s: %w", q, err)
				}
			}
		}
		if len(empty) == 0 || onlyBaselines(empty) && !haveEmptyPanel(all, empty) {
			break
		}
		if ctx.Err() != nil {
			for _, q := range empty {
				t.Errorf("%s returns no data: %s", q, q.Expr)
			}
			if lastErr != nil {
				t.Error(lastErr)
			}
			return
		}
		time.Sleep(time.Second)
	}
	// Two replicas of one container name on one node stay two lines.
	replicas := Vars{Job: "breakwater", Instance: vars.Instance, Container: "app", RateInterval: "1m"}
	qs, err := Queries(ResourcesUID, replicas)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Panel == "CPU usage" {
			if n, err := instantSeries(ctx, base, q.Expr); n != 2 {
				t.Errorf("%s: %d series for two replicas of container app (%v): %s", q, n, err, q.Expr)
			}
		}
	}
	for _, q := range empty {
		t.Logf("%s is empty, as it must be for a container younger than the baseline minimum age: %s", q, q.Raw)
	}
	t.Logf("%d queries of %d dashboards returned data after %s", len(all)-len(empty), len(uids), time.Since(start).Round(time.Millisecond))
}

// onlyBaselines reports whether every empty query reads a 1h baseline
// recording rule: the rules only record a baseline for containers seen at
// least BaselineMinAge (30m) ago, which a test cannot wait for.
func onlyBaselines(empty []Query) bool {
	for _, q := range empty {
		if !strings.Contains(q.Raw, ":rate5m_avg_1h{") {
			return false
		}
	}
	return true
}

// haveEmptyPanel reports whether some panel has no query with data: what a
// user would see as an empty panel.
func haveEmptyPanel(all, empty []Query) bool {
	queries, blank := map[string]int{}, map[string]int{}
	key := func(q Query) string { return q.Dashboard + "/" + q.Panel + "/" + q.Variable }
	for _, q := range all {
		queries[key(q)]++
	}
	for _, q := range empty {
		blank[key(q)]++
	}
	for k, n := range blank {
		if n == queries[k] {
			return true
		}
	}
	return false
}
