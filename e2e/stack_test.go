package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/breakwater/breakwater/exporter/alertpush/amtest"
	"github.com/breakwater/breakwater/internal/testenv"
	"github.com/breakwater/breakwater/rules"
)

// prefix names every container the e2e test creates; nothing else is touched.
const prefix = "bw-e2e-"

// run is one end-to-end run: its log folder and what it started.
type run struct {
	t    *testing.T
	logs string // e2e/logs/<timestamp>, kept when the run fails
}

// newRun creates the log folder. A passing run removes it (unless
// $BREAKWATER_E2E_KEEP_LOGS is set); a failing one keeps it and says where.
// Registered first, this cleanup runs last, after every process stopped.
func newRun(t *testing.T) *run {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "e2e", "logs", time.Now().Format("20060102-150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("e2e: logs of every component are in %s", dir)
			return
		}
		if os.Getenv("BREAKWATER_E2E_KEEP_LOGS") != "" {
			t.Logf("e2e: logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return &run{t: t, logs: dir}
}

// path is a file in the log folder.
func (r *run) path(name string) string { return filepath.Join(r.logs, name) }

// write puts content into a file of the log folder.
func (r *run) write(name string, content []byte) string {
	r.t.Helper()
	p := r.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		r.t.Fatal(err)
	}
	return p
}

// proc is a component process whose stdout and stderr go to <name>.log.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// start runs bin until the test ends: SIGTERM at cleanup, SIGKILL after 10s.
func (r *run) start(name, bin string, args ...string) *proc {
	r.t.Helper()
	p := &proc{name: name, log: r.path(name + ".log"), done: make(chan struct{})}
	f := &cappedLog{path: p.log, limit: logCap}
	fmt.Fprintf(f, "# %s %s\n", bin, strings.Join(args, " "))
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		r.t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	r.t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// logCap bounds each log file. breakwater logs every escape attempt it
// sees on the host, and a container looping over attempts (other tests on a
// shared machine do) writes gigabytes in minutes.
const logCap = 32 << 20

// cappedLog keeps the first limit bytes in path (x.log) and the last one to
// two limits' worth in x.tail.log and x.tail.old.log.
type cappedLog struct {
	path    string
	limit   int64
	mu      sync.Mutex
	f       *os.File
	n       int64
	rotated bool
}

func (c *cappedLog) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil || c.n >= c.limit {
		base := strings.TrimSuffix(c.path, ".log")
		name := c.path
		if c.f != nil {
			c.f.Close()
			if c.rotated {
				_ = os.Rename(base+".tail.log", base+".tail.old.log")
			}
			c.rotated = true
			name = base + ".tail.log"
		}
		c.f, c.n = nil, 0
		f, err := os.Create(name)
		if err != nil {
			return len(b), nil // losing a log must not stop the component
		}
		c.f = f
	}
	n, _ := c.f.Write(b)
	c.n += int64(n)
	return len(b), nil
}

func (c *cappedLog) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f != nil {
		c.f.Close()
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail is the end of the process' log, for failure messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitReady polls url until ok accepts its answer, failing the test when p
// exits or timeout passes.
func waitReady(t *testing.T, p *proc, timeout time.Duration, url string, ok func(status int, body []byte) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 5 * time.Second}
	var last string
	for {
		if p.exited() {
			t.Fatalf("%s exited before it was ready:\n%s", p.name, p.tail())
		}
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if ok(resp.StatusCode, body) {
				return
			}
			last = fmt.Sprintf("HTTP %d", resp.StatusCode)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s (%s); log:\n%s", p.name, timeout, last, p.tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func statusOK(status int, _ []byte) bool { return status == http.StatusOK }

// getTo saves what url answers into a file of the log folder (best effort,
// for the post-mortem of a failed run).
func (r *run) getTo(name, url string) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		_ = os.WriteFile(r.path(name), []byte(err.Error()+"\n"), 0o644)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var pretty bytes.Buffer
	if json.Indent(&pretty, b, "", "  ") == nil {
		b = pretty.Bytes()
	}
	_ = os.WriteFile(r.path(name), b, 0o644)
}

// arrival is one firing alert as a receiver got it.
type arrival struct {
	path   string // receiver, /<receiver name>
	at     time.Time
	labels map[string]string
}

// webhook is the receiver every Alertmanager receiver of the example
// configuration is pointed at, one path per receiver. It logs every payload
// to webhook.jsonl.
type webhook struct {
	addr string
	mu   sync.Mutex
	got  []arrival
	log  *os.File
}

func (r *run) webhook() *webhook {
	r.t.Helper()
	f, err := os.Create(r.path("webhook.jsonl"))
	if err != nil {
		r.t.Fatal(err)
	}
	w := &webhook{log: f}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	w.addr = l.Addr().String()
	srv := &http.Server{Handler: w, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	r.t.Cleanup(func() {
		_ = srv.Close()
		w.mu.Lock()
		f.Close()
		w.mu.Unlock()
	})
	return w
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	var msg struct {
		Alerts []amtest.Alert `json:"alerts"`
	}
	decodeErr := json.Unmarshal(body, &msg)
	w.mu.Lock()
	defer w.mu.Unlock()
	line, _ := json.Marshal(map[string]any{"received": now, "path": req.URL.Path, "payload": json.RawMessage(body)})
	if decodeErr != nil {
		line, _ = json.Marshal(map[string]any{"received": now, "path": req.URL.Path, "undecodable": string(body)})
	}
	_, _ = w.log.Write(append(line, '\n'))
	for _, a := range msg.Alerts {
		if a.Status == "firing" {
			w.got = append(w.got, arrival{path: req.URL.Path, at: now, labels: a.Labels})
		}
	}
}

func (w *webhook) url(path string) string { return "http://" + w.addr + path }

// firing returns every firing alert received so far, in arrival order.
func (w *webhook) firing() []arrival {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]arrival(nil), w.got...)
}

// promSample is one series of an instant query result.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant query against Prometheus at base.
func query(ctx context.Context, base, expr string) ([]promSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", expr, body.Error)
	}
	switch body.Data.ResultType {
	case "vector":
		var out []promSample
		err := json.Unmarshal(body.Data.Result, &out)
		return out, err
	case "scalar":
		var v [2]any
		err := json.Unmarshal(body.Data.Result, &v)
		return []promSample{{Value: v}}, err
	default:
		return nil, fmt.Errorf("query %q: unexpected result type %s", expr, body.Data.ResultType)
	}
}

// value is a sample's value as a float (NaN when unparsable).
func (s promSample) value() float64 {
	var f float64
	if str, ok := s.Value[1].(string); ok {
		if _, err := fmt.Sscan(str, &f); err == nil {
			return f
		}
	}
	return f
}

// scenario is a container of the run.
type scenario struct {
	name    string // full container name, with prefix
	id      string // 64-hex container id
	started time.Time
}

// container starts a detached scenario container from the test image and
// removes it when the test ends, saving its inspect output and logs first
// when the test failed.
func (r *run) container(name string, runArgs []string, cmd ...string) scenario {
	r.t.Helper()
	name = prefix + name
	_ = exec.Command("docker", "rm", "-f", name).Run()
	args := append([]string{"run", "-d", "--pull", "never", "--network", "none", "--name", name}, runArgs...)
	args = append(append(args, testenv.Image), cmd...)
	started := time.Now()
	id := testenv.Run(r.t, "docker", args...)
	r.t.Cleanup(func() {
		if r.t.Failed() {
			_ = os.MkdirAll(r.path("docker"), 0o755)
			out, _ := exec.Command("docker", "inspect", id).CombinedOutput()
			_ = os.WriteFile(r.path("docker/"+name+".inspect.json"), out, 0o644)
			out, _ = exec.Command("docker", "logs", "--timestamps", id).CombinedOutput()
			_ = os.WriteFile(r.path("docker/"+name+".log"), out, 0o644)
		}
		_ = exec.Command("docker", "rm", "-f", id).Run()
	})
	return scenario{name: name, id: id, started: started}
}

// removeStale removes containers a killed earlier run left behind: only
// this test's prefix, never anyone else's.
func removeStale(t *testing.T) {
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "name=^"+prefix).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	for _, id := range strings.Fields(string(out)) {
		_ = exec.Command("docker", "rm", "-f", id).Run()
	}
}

// stack is the monitoring path as a user runs it: the built breakwater
// pushing to a real Alertmanager with the example routes, whose receivers
// all point at a webhook run here, and a real Prometheus scraping
// breakwater with the generated rule pack (rulesConfig's shortened windows).
type stack struct {
	hook    *webhook
	bw      *proc
	bwAddr  string
	promURL string
	amAddr  string
	attempt string // the static escape-attempt program
}

// startStack builds breakwater and starts the stack; bwArgs are added to
// breakwater's flags. Everything stops when the test ends; a failed test
// first saves each component's view of the alerts and the exposition.
func (r *run) startStack(bwArgs ...string) *stack {
	t := r.t
	t.Helper()
	promBin, amBin := testenv.Tool(t, "prometheus"), testenv.Tool(t, "alertmanager")
	root := testenv.RepoRoot(t)
	began := time.Now()
	st := &stack{}
	var bwBin string
	bwBin, st.attempt = build(t, r, root)

	ruleCfg, err := rules.Load(r.write("rules/config.yml", []byte(rulesConfig)))
	if err != nil {
		t.Fatal(err)
	}
	ruleFile := r.path("rules/breakwater.rules.yml")
	if err := rules.Write(ruleCfg, ruleFile, r.path("rules/prometheusrule.yaml")); err != nil {
		t.Fatal(err)
	}

	st.hook = r.webhook()
	st.amAddr = testenv.FreeAddr(t)
	amCfg := r.write("alertmanager.yml", alertmanagerConfig(t, root, st.hook))
	am := r.start("alertmanager", amBin, "--config.file="+amCfg, "--storage.path="+filepath.Join(t.TempDir(), "am"),
		"--web.listen-address="+st.amAddr, "--cluster.listen-address=", "--log.level=debug")
	waitReady(t, am, 30*time.Second, "http://"+st.amAddr+"/-/ready", statusOK)

	// Pushed alerts get the target labels Prometheus puts on the rule
	// alerts, so Alertmanager sees one alert whichever path comes first.
	st.bwAddr = testenv.FreeAddr(t)
	args := append([]string{"--web.listen-address=" + st.bwAddr,
		"--alertmanager.url=http://" + st.amAddr,
		"--alertmanager.external-label=job=breakwater", "--alertmanager.external-label=instance=" + st.bwAddr}, bwArgs...)
	st.bw = r.start("breakwater", bwBin, args...)
	waitReady(t, st.bw, 60*time.Second, "http://"+st.bwAddr+"/metrics", func(status int, body []byte) bool {
		s := string(body)
		return status == http.StatusOK &&
			strings.Contains(s, `breakwater_scrape_collector_success{collector="security"} 1`) &&
			strings.Contains(s, `breakwater_scrape_collector_success{collector="resources"} 1`)
	})

	promAddr := testenv.FreeAddr(t)
	promCfg := r.write("prometheus.yml", []byte(fmt.Sprintf(`global:
  scrape_interval: 2s
  evaluation_interval: 1s
rule_files: [%q]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: breakwater
    static_configs:
      - targets: [%q]
`, ruleFile, st.amAddr, st.bwAddr)))
	prom := r.start("prometheus", promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(t.TempDir(), "prom"),
		"--web.listen-address="+promAddr)
	st.promURL = "http://" + promAddr
	waitReady(t, prom, 60*time.Second, st.promURL+"/-/ready", statusOK)
	waitReady(t, prom, 30*time.Second, st.promURL+`/api/v1/query?query=up{job="breakwater"}==1`, func(status int, body []byte) bool {
		return status == http.StatusOK && strings.Contains(string(body), st.bwAddr)
	})
	t.Logf("stack up after %s: breakwater %s, Prometheus %s, Alertmanager %s, webhook %s",
		time.Since(began).Round(time.Millisecond), st.bwAddr, st.promURL, st.amAddr, st.hook.addr)

	// Registered after the processes' own clean-ups, this runs before
	// they stop.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		r.getTo("breakwater.metrics.txt", "http://"+st.bwAddr+"/metrics")
		r.getTo("prometheus.alerts.json", st.promURL+"/api/v1/alerts")
		r.getTo("prometheus.rules.json", st.promURL+"/api/v1/rules")
		r.getTo("prometheus.targets.json", st.promURL+"/api/v1/targets")
		r.getTo("alertmanager.alerts.json", "http://"+st.amAddr+"/api/v2/alerts")
	})
	return st
}
