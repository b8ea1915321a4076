package alertpush

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/breakwater/breakwater/internal/testenv"
)

// webhook is the HTTP receiver the test Alertmanagers notify: it records
// every alert per request path, one path per Alertmanager.
type webhook struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string][]hookAlert
}

type hookAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{got: map[string][]hookAlert{}}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var msg struct {
			Alerts []hookAlert `json:"alerts"`
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			// A request cut off by an Alertmanager killed mid-send.
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			t.Errorf("webhook: bad payload %q: %v", body, err)
		}
		w.mu.Lock()
		w.got[r.URL.Path] = append(w.got[r.URL.Path], msg.Alerts...)
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// firing returns the distinct firing alerts notified on path, by label set.
func (w *webhook) firing(path string) map[string]hookAlert {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]hookAlert{}
	for _, a := range w.got[path] {
		if a.Status == "firing" {
			out[labelsKey(a.Labels)] = a
		}
	}
	return out
}

// alertmanager is a real, pinned Alertmanager on a random 127.0.0.1 port,
// gossip off, notifying the webhook at hookURL.
type alertmanager struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newAlertmanager(t *testing.T, hookURL string) *alertmanager {
	t.Helper()
	am := &alertmanager{t: t, bin: testenv.Tool(t, "alertmanager"), dir: t.TempDir(), addr: freeAddr(t)}
	// group_by '...' makes every alert its own group, so each one is
	// notified on its own after a short group_wait.
	cfg := fmt.Sprintf(`route:
  receiver: hook
  group_by: ['...']
  group_wait: 100ms
  group_interval: 200ms
  repeat_interval: 1h
receivers:
- name: hook
  webhook_configs:
  - url: %q
`, hookURL)
	if err := os.WriteFile(filepath.Join(am.dir, "alertmanager.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	am.start()
	t.Cleanup(am.stop)
	return am
}

func (am *alertmanager) url() *url.URL { return &url.URL{Scheme: "http", Host: am.addr} }

// start runs the Alertmanager and waits until it is ready. A restart keeps
// the port and the storage directory.
func (am *alertmanager) start() {
	t := am.t
	t.Helper()
	log, err := os.OpenFile(filepath.Join(am.dir, "log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	am.cmd = exec.Command(am.bin,
		"--config.file="+filepath.Join(am.dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(am.dir, "data"),
		"--web.listen-address="+am.addr,
		"--cluster.listen-address=",
		"--log.level=warn")
	am.cmd.Stdout, am.cmd.Stderr = log, log
	if err := am.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log.Close()
	am.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(am.cmd, am.done)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-am.done:
			b, _ := os.ReadFile(filepath.Join(am.dir, "log"))
			t.Fatalf("alertmanager exited:\n%s", b)
		default:
		}
		if r, err := http.Get("http://" + am.addr + "/-/ready"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("alertmanager not ready after 30s")
}

// kill stops the Alertmanager hard, as a crash would.
func (am *alertmanager) kill() {
	if am.cmd == nil {
		return
	}
	_ = am.cmd.Process.Signal(syscall.SIGKILL)
	<-am.done
	am.cmd = nil
}

func (am *alertmanager) stop() {
	if am.cmd == nil {
		return
	}
	_ = am.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-am.done:
	case <-time.After(10 * time.Second):
		am.kill()
	}
	am.cmd = nil
}

// testConfig is a configuration with short timings for tests.
func testConfig(urls ...*url.URL) *Config {
	return &Config{
		URLs:           urls,
		Timeout:        2 * time.Second,
		QueueCapacity:  100,
		FoldWindow:     500 * time.Millisecond,
		ResolveTimeout: 5 * time.Minute,
		ResendDelay:    2 * time.Second,
		ExternalLabels: map[string]string{"job": "breakwater", "instance": "node1:9760"},
		MinBackoff:     50 * time.Millisecond,
		MaxBackoff:     400 * time.Millisecond,
	}
}

// startPusher runs a Pusher until the test ends and checks Run returns.
func startPusher(t *testing.T, cfg *Config) *Pusher {
	t.Helper()
	p, err := New(slog.New(slog.NewTextHandler(testWriter{t}, nil)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return p
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// count reads breakwater_alertmanager_notifications_total{result}.
func (p *Pusher) count(result string) float64 {
	m := &dto.Metric{}
	_ = p.notifications.WithLabelValues(result).Write(m)
	return m.GetCounter().GetValue()
}

func (p *Pusher) latencyCount() uint64 {
	m := &dto.Metric{}
	_ = p.latency.Write(m)
	return m.GetHistogram().GetSampleCount()
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
