package main

import (
	"context"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/testenv"
)

// TestAlertLatency runs the alert-latency bench with 100 attempts and holds
// it to the target of the Alertmanager push: p99 under one second.
func TestAlertLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test: loads BPF, runs a container and Alertmanager")
	}
	testenv.Docker(t)
	testenv.Tool(t, "alertmanager")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p50, p99, err := measureAlertLatency(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("syscall to Alertmanager API accepted, 100 attempts: p50 %s, p99 %s", p50, p99)
	if p50 <= 0 || p50 > p99 {
		t.Errorf("implausible quantiles: p50 %s, p99 %s", p50, p99)
	}
	if p99 > time.Second {
		t.Errorf("p99 %s above the 1s target", p99)
	}
}
