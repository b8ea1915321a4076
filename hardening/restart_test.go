package hardening

import (
	"github.com/breakwater/breakwater/bpf"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/testenv"
)

// TestRestartAtOnce stops the exporter with SIGTERM and starts a second one
// on the same address straight away: the second binds, attaches every
// program and serves, and nothing of the first stays loaded or pinned.
// (cmd/breakwater's TestServesAndDetaches proves the detach on its own.)
func TestRestartAtOnce(t *testing.T) {
	testenv.RequireRoot(t)
	addr := testenv.FreeAddr(t)
	first := startOn(t, addr, nil)
	attachedAll(t, first.metrics())
	progs := testenv.LinkedPrograms(t, first.pid())
	if len(progs) != len(bpf.Hooks) {
		t.Fatalf("first exporter holds %d BPF links, want %d", len(progs), len(bpf.Hooks))
	}

	stopAt := time.Now()
	if err := first.stop(); err != nil {
		t.Fatalf("first exporter after SIGTERM: %v\n%s", err, first.logText())
	}
	exited := time.Since(stopAt)
	second := startOn(t, addr, nil)
	f := second.metrics()
	serving := time.Since(stopAt)
	attachedAll(t, f)
	again := testenv.LinkedPrograms(t, second.pid())
	t.Logf("SIGTERM to exit: %s; SIGTERM to the second exporter serving on %s with every program attached: %s",
		exited.Round(time.Millisecond), addr, serving.Round(time.Millisecond))
	if len(again) != len(bpf.Hooks) {
		t.Errorf("second exporter holds %d BPF links, want %d", len(again), len(bpf.Hooks))
	}
	for id := range again {
		if progs[id] {
			t.Errorf("second exporter runs program %d of the first", id)
		}
	}
	if !strings.Contains(first.logText(), "BPF programs detached") {
		t.Errorf("first exporter did not log the detach:\n%s", tail(first.logText(), 20))
	}
	// The kernel frees programs after an RCU grace period, not at exit.
	var left []int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		left = testenv.StillLoaded(t, progs)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("programs %v of the first exporter still loaded", left)
	}
	if pins, _ := filepath.Glob("/sys/fs/bpf/*breakwater*"); len(pins) > 0 {
		t.Errorf("pinned objects left: %v", pins)
	}
}

func attachedAll(t *testing.T, f families) {
	t.Helper()
	if v, n := f.sum("breakwater_bpf_program_attached", nil); v != float64(len(bpf.Hooks)) || n != len(bpf.Hooks) {
		t.Errorf("breakwater_bpf_program_attached: %v of %d attached", v, n)
	}
	if v := f.value(t, "breakwater_scrape_collector_success", map[string]string{"collector": "security"}); v != 1 {
		t.Errorf(`breakwater_scrape_collector_success{collector="security"} = %v`, v)
	}
}
