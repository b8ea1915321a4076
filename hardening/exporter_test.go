package hardening

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/breakwater/breakwater/internal/testenv"
)

// shared holds what the tests build once: the exporter and the static C
// helpers, in a directory every user may read (the least-privilege test
// runs them as nobody).
var shared struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// artifacts builds the exporter and the static helpers once per test binary.
func artifacts(t *testing.T) (dir string) {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "bw-hardening")
		if shared.err != nil {
			return
		}
		if shared.err = os.Chmod(shared.dir, 0o755); shared.err != nil {
			return
		}
		root := testenv.RepoRoot(t)
		build := exec.Command("go", "build", "-o", filepath.Join(shared.dir, "breakwater"), "./cmd/breakwater")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			shared.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		for out, src := range map[string]string{
			"attempt": filepath.Join(root, "collectors", "security", "testdata", "attempt.c"),
			"storm":   filepath.Join(root, "hardening", "testdata", "storm.c"),
		} {
			if _, err := exec.LookPath("gcc"); err != nil {
				continue // only the container tests need them; they fail on use
			}
			cc := exec.Command("gcc", "-static", "-O2", "-o", filepath.Join(shared.dir, out), src)
			if b, err := cc.CombinedOutput(); err != nil {
				shared.err = fmt.Errorf("gcc %s: %v\n%s", src, err, b)
				return
			}
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.dir
}

func built(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(artifacts(t), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s was not built (gcc missing?): %v", name, err)
	}
	return p
}

// exporter is one running breakwater process.
type exporter struct {
	t    *testing.T
	addr string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // exit status once done is closed
}

// start runs the exporter on a free loopback port, behind the wrapper
// command (setpriv ...) if any, and stops it with SIGTERM when the test ends.
func start(t *testing.T, wrapper []string, args ...string) *exporter {
	t.Helper()
	return startOn(t, testenv.FreeAddr(t), wrapper, args...)
}

func startOn(t *testing.T, addr string, wrapper []string, args ...string) *exporter {
	t.Helper()
	e := &exporter{t: t, addr: addr, log: filepath.Join(t.TempDir(), "breakwater.log"), done: make(chan struct{})}
	f, err := os.Create(e.log)
	if err != nil {
		t.Fatal(err)
	}
	argv := append(append([]string{}, wrapper...), built(t, "breakwater"), "--web.listen-address="+addr)
	argv = append(argv, args...)
	e.cmd = exec.Command(argv[0], argv[1:]...)
	e.cmd.Stdout, e.cmd.Stderr = f, f
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		e.err = e.cmd.Wait()
		f.Close()
		close(e.done)
	}()
	t.Cleanup(func() { e.stop() })
	return e
}

// stop sends SIGTERM and waits; a process that does not exit is killed.
func (e *exporter) stop() error {
	select {
	case <-e.done:
		return e.err
	default:
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(15 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
		return fmt.Errorf("no exit 15s after SIGTERM")
	}
	return e.err
}

func (e *exporter) pid() int { return e.cmd.Process.Pid }

func (e *exporter) logText() string {
	b, _ := os.ReadFile(e.log)
	return string(b)
}

// metrics scrapes until the exporter answers (or it exits, or 60s pass).
func (e *exporter) metrics() families {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		fams, err := scrape(http.DefaultClient, "http://"+e.addr+"/metrics")
		if err == nil {
			return fams
		}
		select {
		case <-e.done:
			e.t.Fatalf("exporter exited (%v) before serving:\n%s", e.err, e.logText())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("scraping %s: %v\n%s", e.addr, err, e.logText())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// families is a parsed exposition, by metric name.
type families map[string]*dto.MetricFamily

func scrape(c *http.Client, url string) (families, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, body)
	}
	return parse(body)
}

func parse(body []byte) (families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(bytes.NewReader(body))
}

// sum adds the samples of a metric whose labels include every pair of
// match; n is how many matched.
func (f families) sum(name string, match map[string]string) (v float64, n int) {
	mf, ok := f[name]
	if !ok {
		return 0, 0
	}
	for _, m := range mf.Metric {
		if !labelsMatch(m, match) {
			continue
		}
		n++
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Untyped != nil:
			v += m.Untyped.GetValue()
		}
	}
	return v, n
}

// value is sum for a metric that must be there.
func (f families) value(t *testing.T, name string, match map[string]string) float64 {
	t.Helper()
	v, n := f.sum(name, match)
	if n == 0 {
		t.Fatalf("no %s%v in the exposition", name, match)
	}
	return v
}

func labelsMatch(m *dto.Metric, match map[string]string) bool {
	for k, want := range match {
		got := ""
		for _, l := range m.Label {
			if l.GetName() == k {
				got = l.GetValue()
			}
		}
		if got != want {
			return false
		}
	}
	return true
}

// series counts every sample line (histogram buckets included), as
// Prometheus would store them.
func (f families) series() int {
	n := 0
	for _, mf := range f {
		for _, m := range mf.Metric {
			switch {
			case m.Histogram != nil:
				n += len(m.Histogram.Bucket) + 3
			case m.Summary != nil:
				n += len(m.Summary.Quantile) + 2
			default:
				n++
			}
		}
	}
	return n
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// procStatus returns the fields of /proc/<pid>/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

func capMask(t *testing.T, hex string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// docker runs the docker CLI and returns its trimmed output.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	return testenv.Run(t, "docker", args...)
}

// removeContainers force-removes this area's containers by name prefix
// when the test ends.
func removeContainers(t *testing.T, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			_ = exec.Command("docker", "rm", "-f", n).Run()
		}
	})
}
