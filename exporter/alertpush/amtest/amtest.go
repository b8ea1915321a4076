// Package amtest runs real, pinned Alertmanagers and an HTTP webhook
// receiver for tests: the Alertmanager under test is never a mock.
package amtest

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/breakwater/breakwater/internal/testenv"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

// Alert is one alert of a webhook notification.
type Alert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// Webhook is an HTTP receiver on 127.0.0.1 that records every notified
// alert per request path, so each receiver or Alertmanager gets a path.
type Webhook struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string][]Alert
}

// NewWebhook starts a receiver that stops when the test ends.
func NewWebhook(t testing.TB) *Webhook {
	t.Helper()
	w := &Webhook{got: map[string][]Alert{}}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			// A request cut off by an Alertmanager killed mid-send.
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		var msg struct {
			Alerts []Alert `json:"alerts"`
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

// URL is the address of path on the receiver.
func (w *Webhook) URL(path string) string { return w.srv.URL + path }

// Alerts returns every alert notified on path, in arrival order.
func (w *Webhook) Alerts(path string) []Alert {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Alert(nil), w.got[path]...)
}

// Firing returns the distinct firing alerts notified on path, by LabelsKey.
func (w *Webhook) Firing(path string) map[string]Alert {
	out := map[string]Alert{}
	for _, a := range w.Alerts(path) {
		if a.Status == "firing" {
			out[LabelsKey(a.Labels)] = a
		}
	}
	return out
}

// LabelsKey identifies a label set, as Alertmanager's fingerprint does.
func LabelsKey(l map[string]string) string {
	return toLabelSet(l).Fingerprint().String()
}

func toLabelSet(l map[string]string) model.LabelSet {
	s := make(model.LabelSet, len(l))
	for k, v := range l {
		s[model.LabelName(k)] = model.LabelValue(v)
	}
	return s
}

// PerAlertConfig routes every alert, as its own group, to the webhook at
// hookURL after a short group_wait, so each alert is notified once.
func PerAlertConfig(hookURL string) string {
	return fmt.Sprintf(`route:
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
}

// Alertmanager is a real, pinned Alertmanager on a random 127.0.0.1 port
// with gossip off. A restart keeps its port and storage directory.
type Alertmanager struct {
	t      testing.TB
	bin    string
	dir    string
	addr   string
	scheme string
	args   []string
	cmd    *exec.Cmd
	done   chan struct{}
}

// Start writes config and runs an Alertmanager on it until the test ends.
func Start(t testing.TB, config string) *Alertmanager {
	t.Helper()
	return StartWeb(t, config, "")
}

// StartWeb is Start with an exporter-toolkit web configuration (TLS, basic
// auth) for the Alertmanager's API; with tls_server_config it serves https.
func StartWeb(t testing.TB, config, webConfig string) *Alertmanager {
	t.Helper()
	am := &Alertmanager{t: t, bin: testenv.Tool(t, "alertmanager"), dir: t.TempDir(), addr: testenv.FreeAddr(t), scheme: "http"}
	if err := os.WriteFile(filepath.Join(am.dir, "alertmanager.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if webConfig != "" {
		web := filepath.Join(am.dir, "web.yml")
		if err := os.WriteFile(web, []byte(webConfig), 0o644); err != nil {
			t.Fatal(err)
		}
		am.args = append(am.args, "--web.config.file="+web)
		if strings.Contains(webConfig, "tls_server_config") {
			am.scheme = "https"
		}
	}
	am.Start()
	t.Cleanup(am.Stop)
	return am
}

// URL is the Alertmanager's base URL.
func (am *Alertmanager) URL() *url.URL { return &url.URL{Scheme: am.scheme, Host: am.addr} }

// Start (re)starts the Alertmanager and waits until it is ready.
func (am *Alertmanager) Start() {
	t := am.t
	t.Helper()
	logPath := filepath.Join(am.dir, "log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	am.cmd = exec.Command(am.bin,
		"--config.file="+filepath.Join(am.dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(am.dir, "data"),
		"--web.listen-address="+am.addr,
		"--cluster.listen-address=",
		"--log.level=warn")
	am.cmd.Args = append(am.cmd.Args, am.args...)
	am.cmd.Stdout, am.cmd.Stderr = log, log
	err = am.cmd.Start()
	log.Close()
	if err != nil {
		t.Fatal(err)
	}
	am.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(am.cmd, am.done)
	// The test's own TLS certificate is not checked here, and behind basic
	// auth a 401 is as much a sign of life as the readiness answer.
	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-am.done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("alertmanager exited:\n%s", b)
		default:
		}
		if r, err := probe.Get(am.URL().String() + "/-/ready"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK || r.StatusCode == http.StatusUnauthorized {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("alertmanager not ready after 30s")
}

// Kill stops the Alertmanager hard, as a crash would.
func (am *Alertmanager) Kill() {
	if am.cmd == nil {
		return
	}
	_ = am.cmd.Process.Signal(syscall.SIGKILL)
	<-am.done
	am.cmd = nil
}

// Stop stops the Alertmanager cleanly.
func (am *Alertmanager) Stop() {
	if am.cmd == nil {
		return
	}
	_ = am.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-am.done:
	case <-time.After(10 * time.Second):
		am.Kill()
	}
	am.cmd = nil
}

// Eventually polls cond until it holds, failing the test after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ExampleConfig is the Alertmanager configuration at path (the shipped
// deploy/alertmanager/alertmanager.yml) with its route tree and inhibit
// rules untouched and every receiver replaced by a webhook at
// receiverURL(name), so tests run the real routing against a receiver they
// own. The global SMTP, Slack and WeChat settings and the templates go.
func ExampleConfig(t testing.TB, path string, receiverURL func(name string) string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	delete(cfg, "global")
	delete(cfg, "templates")
	var receivers []any
	for _, r := range cfg["receivers"].([]any) {
		name := r.(map[string]any)["name"].(string)
		receivers = append(receivers, map[string]any{
			"name":            name,
			"webhook_configs": []any{map[string]any{"url": receiverURL(name), "send_resolved": true}},
		})
	}
	cfg["receivers"] = receivers
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
