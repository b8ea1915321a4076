package alertpush

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

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
