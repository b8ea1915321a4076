package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/breakwater/breakwater/collectors"
	"github.com/breakwater/breakwater/collectors/security"
	"github.com/breakwater/breakwater/exporter/alertpush"
	"github.com/breakwater/breakwater/exporter/escape"
	"github.com/breakwater/breakwater/exporter/identity"
)

// alertBenchContainer makes the escape attempts of measureAlertLatency.
const alertBenchContainer = "bw-bench-alert"

// measureAlertLatency measures the page's first leg: from an escape attempt's
// syscall to a real Alertmanager's API accepting the alert it raised.
//
// What is measured, and why it is the honest figure:
//   - Start: the event's own time, which the BPF program stamps in the
//     kernel at the syscall (bpf_ktime_get_ns, dated with the boot time), as
//     escape.Event.Time carries it. Ring-buffer wake-up, identity lookup,
//     folding, queueing and the HTTP POST all count.
//   - End: the moment Alertmanager answers 200 to the POST of
//     /api/v2/alerts, observed by a loopback proxy in front of it (the
//     pusher's own client cannot be instrumented from outside). The proxy's
//     hop costs tens of microseconds and is counted against us.
//   - One container makes all attempts (~50ms apart, mount, blocked), so all
//     fall on one fold key (container, technique). The fold window is set to
//     1ms so that each attempt opens a new alert that is sent at once: with
//     the default 30s window only the first attempt pages immediately and
//     the others are counted into it, which is folding, not latency. If the
//     pusher replaces a still-pending alert by a newer one, the attempt is
//     charged until the newer alert is accepted, so no attempt is dropped
//     from the sample.
//
// Real security collector (BPF), real pusher, real Alertmanager (the pinned
// binary), real container; only the breakwater HTTP server is left out.
func measureAlertLatency(ctx context.Context, attempts int) (p50, p99 time.Duration, err error) {
	if attempts < 1 {
		return 0, 0, errors.New("alert latency: attempts must be positive")
	}
	root, err := repoRoot()
	if err != nil {
		return 0, 0, err
	}
	dir, err := os.MkdirTemp("", "bw-bench-alert")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	attempt := filepath.Join(dir, "attempt")
	if out, err := exec.CommandContext(ctx, "gcc", "-static", "-O2", "-o", attempt,
		filepath.Join(root, "collectors", "security", "testdata", "attempt.c")).CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("gcc attempt.c: %v\n%s", err, out)
	}

	amURL, stopAM, err := startAlertmanager(ctx, root, dir)
	if err != nil {
		return 0, 0, err
	}
	defer stopAM()

	proxy := &acceptProxy{upstream: amURL, name: alertBenchContainer}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	proxyURL := &url.URL{Scheme: "http", Host: l.Addr().String()}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	pusher, err := alertpush.New(logger, &alertpush.Config{
		URLs:           []*url.URL{proxyURL},
		Timeout:        10 * time.Second,
		QueueCapacity:  10000,
		FoldWindow:     time.Millisecond,
		ResolveTimeout: 2 * time.Hour,
		ResendDelay:    time.Hour, // no re-sends during the run
		ExternalLabels: map[string]string{"job": "breakwater"},
		MinBackoff:     100 * time.Millisecond,
		MaxBackoff:     time.Second,
	})
	if err != nil {
		return 0, 0, err
	}
	go pusher.Run(ctx)

	// Other containers on the host make attempts too; only this run's go
	// to the pusher, and their event times are kept to match acceptances.
	events := &eventTimes{}
	sink := sinkFunc(func(e escape.Event) {
		if e.Identity.Name != alertBenchContainer {
			return
		}
		events.add(e.Time)
		pusher.Push(e)
	})
	health := &collectors.Health{}
	sec, err := security.New(collectors.Deps{Logger: logger, Identity: identity.NewResolver(logger, identity.Options{}),
		Escapes: sink, Health: health}, security.Config{Expiry: 5 * time.Minute, MaxContainers: 1024})
	if err != nil {
		return 0, 0, err
	}
	defer sec.Close()
	if p := health.Problems(); p[security.Name] != "" {
		return 0, 0, fmt.Errorf("security collector did not load: %s", p[security.Name])
	}

	_ = exec.Command("docker", "rm", "-f", alertBenchContainer).Run()
	defer exec.Command("docker", "rm", "-f", alertBenchContainer).Run()
	// The attempts start once the collector's rescan (every 15s) has seen
	// the container for sure: should the ring-buffer record of its cgroup be
	// lost on a busy host, attempts before that would not be counted at all.
	script := fmt.Sprintf(`while [ ! -e /tmp/go ]; do sleep 0.2; done
i=0; while [ $i -lt %d ]; do /attempt mount >/dev/null; sleep 0.05; i=$((i+1)); done`, attempts)
	if out, err := exec.CommandContext(ctx, "docker", "run", "-d", "--name", alertBenchContainer, "--pull", "never", "--network", "none",
		"-v", attempt+":/attempt:ro", image, "sh", "-c", script).CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("docker run: %v\n%s", err, out)
	}
	select {
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	case <-time.After(16 * time.Second):
	}
	for _, args := range [][]string{{"exec", alertBenchContainer, "touch", "/tmp/go"}, {"wait", alertBenchContainer}} {
		if out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	// Wait until every attempt's event is in and an accepted alert covers it.
	deadline := time.Now().Add(30 * time.Second)
	var lat []time.Duration
	for {
		times := events.get()
		lat = proxy.latencies(times)
		if len(times) == attempts && len(lat) == attempts {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			// Missing events were lost in the ring buffer: another container
			// flooding it with attempts, on a shared host.
			return 0, 0, fmt.Errorf("alert latency: %d of %d attempts seen as events, %d accepted by Alertmanager (%d POSTs failed)",
				len(times), attempts, len(lat), proxy.failures())
		}
		time.Sleep(100 * time.Millisecond)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return quantileOf(lat, 0.5), quantileOf(lat, 0.99), nil
}

// quantileOf is the nearest-rank quantile of sorted durations.
func quantileOf(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

type sinkFunc func(escape.Event)

func (f sinkFunc) Push(e escape.Event) { f(e) }

type eventTimes struct {
	mu sync.Mutex
	t  []time.Time
}

func (e *eventTimes) add(t time.Time) {
	e.mu.Lock()
	e.t = append(e.t, t)
	e.mu.Unlock()
}

func (e *eventTimes) get() []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Time(nil), e.t...)
}

// acceptProxy forwards the pusher's requests to Alertmanager and notes when
// Alertmanager accepted each alert of the named container.
type acceptProxy struct {
	upstream *url.URL
	name     string

	mu       sync.Mutex
	accepted []acceptance
	failed   int
}

type acceptance struct {
	startsAt time.Time // the fold's first attempt, millisecond precision on the wire
	at       time.Time
}

func (p *acceptProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u := *p.upstream
	u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.mu.Lock()
		p.failed++
		p.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	now := time.Now()
	defer resp.Body.Close()
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/api/v2/alerts") {
		p.record(resp.StatusCode, body, now)
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (p *acceptProxy) record(status int, body []byte, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if status != http.StatusOK {
		p.failed++
		return
	}
	var alerts []struct {
		Labels   map[string]string `json:"labels"`
		StartsAt time.Time         `json:"startsAt"`
	}
	if err := json.Unmarshal(body, &alerts); err != nil {
		p.failed++
		return
	}
	for _, a := range alerts {
		if a.Labels["name"] == p.name {
			p.accepted = append(p.accepted, acceptance{startsAt: a.StartsAt, at: at})
		}
	}
}

func (p *acceptProxy) failures() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// latencies returns, for every event time, the time until the first
// accepted alert that covers it: one whose fold started at or after the
// event (the wire format keeps milliseconds, hence the truncation).
func (p *acceptProxy) latencies(events []time.Time) []time.Duration {
	p.mu.Lock()
	acc := append([]acceptance(nil), p.accepted...)
	p.mu.Unlock()
	var out []time.Duration
	for _, e := range events {
		from := e.Truncate(time.Millisecond)
		var best *acceptance
		for i := range acc {
			a := &acc[i]
			if !a.startsAt.Before(from) && a.at.After(e) && (best == nil || a.at.Before(best.at)) {
				best = a
			}
		}
		if best != nil {
			out = append(out, best.at.Sub(e))
		}
	}
	return out
}

// startAlertmanager runs the pinned Alertmanager on 127.0.0.1 with a
// receiver that notifies nobody: the API accepting the alert is the end of
// what is measured.
func startAlertmanager(ctx context.Context, root, dir string) (*url.URL, func(), error) {
	bin := filepath.Join(root, ".tools", "bin", "alertmanager")
	if d := os.Getenv("BREAKWATER_TOOLS_BIN"); d != "" {
		bin = filepath.Join(d, "alertmanager")
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, nil, fmt.Errorf("alertmanager not found (run `make tools`): %w", err)
	}
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte("route:\n  receiver: nobody\nreceivers:\n- name: nobody\n"), 0o644); err != nil {
		return nil, nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	addr := l.Addr().String()
	l.Close()
	logf, err := os.Create(filepath.Join(dir, "alertmanager.log"))
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "am-data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
	}
	u := &url.URL{Scheme: "http", Host: addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			return nil, nil, fmt.Errorf("alertmanager exited:\n%s", b)
		default:
		}
		if r, err := http.Get(u.String() + "/-/ready"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return u, stop, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, nil, errors.New("alertmanager not ready after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// repoRoot is the directory of the main go.mod, above the working directory
// (the repository root under `go run ./bench`, bench/ under `go test`).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/breakwater/breakwater\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found above the working directory")
		}
		dir = parent
	}
}
